//! The rendered pre-job script, run by bash exactly as the runner runs hooks
//! (`bash -e`), against the real policy service on loopback. `sudo` and `pkill` are
//! stand-ins on PATH that record their arguments, so a refusal can be seen stopping
//! the listener and powering off without touching this machine.

mod policy_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use github_runner::policy::fake::{collaborator, comment, pull, FakeRepo, FakeRepoApi};
use github_runner::policy::github::Permission;
use github_runner::policy::prejob::render_pre_job;
use policy_support::{Service, RUNNER};

const SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// Whether bash, curl and jq are here; without them the test is skipped, except in CI.
fn tools_present() -> bool {
    let missing: Vec<&str> = ["bash", "curl", "jq"]
        .into_iter()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and {missing:?} missing"
    );
    eprintln!("skipped: {missing:?} not installed");
    false
}

fn github() -> Arc<FakeRepoApi> {
    let mut app = FakeRepo::compliant("main");
    app.pulls
        .push(pull(3, "alice/app", "fix", SHA, "canonical/app", "main"));
    app.pulls
        .push(pull(4, "bob/app", "fix", SHA, "canonical/app", "main"));
    app.comments.insert(
        4,
        vec![comment(
            "maint",
            &format!("/canonical/self-hosted-runners/run-workflows {SHA}"),
        )],
    );
    app.permissions.insert("maint".into(), Permission::Admin);
    let mut leaky = FakeRepo::compliant("main");
    leaky.outside_collaborators = vec![collaborator("mallory", "admin")];
    Arc::new(
        FakeRepoApi::new()
            .with_repo("canonical/app", app)
            .with_repo("canonical/leaky", leaky),
    )
}

/// A scratch directory with the stand-ins and where they record calls.
struct Instance {
    dir: tempfile::TempDir,
}

impl Instance {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let calls = dir.path().join("calls");
        for (name, extra) in [
            ("pkill", ""),
            // `NO_SYSTEMCTL=1` makes `sudo systemctl` fail, to see the fallback used.
            (
                "sudo",
                "[ \"${NO_SYSTEMCTL:-}\" = 1 ] && [ \"$2\" = systemctl ] && exit 1\n",
            ),
        ] {
            let path = bin.join(name);
            let script = format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{}'\n{extra}exit 0\n",
                calls.display()
            );
            std::fs::write(&path, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Instance { dir }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn event_file(&self, head_repo: &str) -> PathBuf {
        self.write_event(&serde_json::json!({"pull_request": pull_request(head_repo)}))
    }

    /// A payload that carries no pull request (a push, an issue comment on an issue).
    fn repository_event(&self) -> PathBuf {
        self.write_event(&serde_json::json!({"ref": "refs/heads/main", "issue": {"number": 1}}))
    }

    fn write_event(&self, event: &serde_json::Value) -> PathBuf {
        let path = self.dir.path().join("event.json");
        std::fs::write(&path, event.to_string()).unwrap();
        path
    }

    /// Runs the script as the runner would; returns (exit code, stderr).
    fn run(&self, script: &str, env: &[(&str, &str)]) -> (i32, String) {
        let path = self.dir.path().join("pre-job.sh");
        std::fs::write(&path, script).unwrap();
        let bin = self.dir.path().join("bin");
        let output = Command::new("bash")
            .arg("-e")
            .arg(&path)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
            )
            .env("TMPDIR", self.dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// Pull request #3 (from alice's fork) or #4 (from bob's, approved) as an event carries it.
fn pull_request(head_repo: &str) -> serde_json::Value {
    let number = if head_repo == "bob/app" { 4 } else { 3 };
    serde_json::json!({
        "number": number,
        "head": {"ref": "fix", "sha": SHA, "repo": {"full_name": head_repo}},
        "base": {"ref": "main", "sha": "0".repeat(40), "repo": {"full_name": "canonical/app"}}
    })
}

/// The payload of `event` about the pull request from `head_repo`, as GitHub shapes it.
fn pull_request_event(event: &str, head_repo: &str) -> serde_json::Value {
    let pr = pull_request(head_repo);
    match event {
        "issue_comment" => serde_json::json!({
            "issue": {"number": pr["number"], "pull_request": {"url": "https://api.github.com/x"}},
            "comment": {"body": "hello"}}),
        "pull_request_review" => {
            serde_json::json!({"pull_request": pr, "review": {"state": "commented"}})
        }
        "pull_request_review_comment" => {
            serde_json::json!({"pull_request": pr, "comment": {"body": "nit"}})
        }
        _ => serde_json::json!({"pull_request": pr}),
    }
}

/// The pre-job script of runner [`RUNNER`], with a fresh token issued for it.
fn fresh_script(s: &Service) -> String {
    render_pre_job(s.url(), &s.one_time_token(), RUNNER)
}

fn refused(instance: &Instance) -> bool {
    let calls = instance.calls();
    calls.iter().any(|c| c == "pkill -INT -f Runner.Listener")
        && calls.iter().any(|c| c.contains("poweroff"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn repository_events_pass_or_stop_the_instance() {
    if !tools_present() {
        return;
    }
    let s = Service::start(github(), None);
    for event in ["push", "workflow_dispatch", "schedule", "issue_comment"] {
        let i = Instance::new();
        let script = fresh_script(&s);
        let event_path = i.repository_event();
        let (code, stderr) = i.run(
            &script,
            &[
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_REPOSITORY", "canonical/app"),
                ("GITHUB_EVENT_PATH", path_str(&event_path)),
            ],
        );
        assert_eq!(code, 0, "{event}: {stderr}");
        assert!(i.calls().is_empty(), "{event}: {:?}", i.calls());

        let i = Instance::new();
        let script = fresh_script(&s);
        let event_path = i.repository_event();
        let (code, stderr) = i.run(
            &script,
            &[
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_REPOSITORY", "canonical/leaky"),
                ("GITHUB_EVENT_PATH", path_str(&event_path)),
            ],
        );
        assert_ne!(code, 0, "{event}");
        assert!(
            stderr.contains("HTTP 403") && stderr.contains("mallory (admin)"),
            "{event}: {stderr}"
        );
        assert!(refused(&i), "{event}: {:?}", i.calls());
        assert_eq!(i.calls()[1], "sudo -n systemctl poweroff");
    }
}

#[test]
fn pull_requests_use_the_event_file() {
    if !tools_present() {
        return;
    }
    let s = Service::start(github(), None);
    let cases = [
        ("pull_request", "canonical/app", true),
        ("pull_request_target", "canonical/app", true),
        ("pull_request", "alice/app", false),
        ("pull_request", "bob/app", true),
    ];
    for (event, head, passes) in cases {
        let i = Instance::new();
        let event_path = i.event_file(head);
        let script = fresh_script(&s);
        let env = [
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_REPOSITORY", "canonical/app"),
            ("GITHUB_EVENT_PATH", path_str(&event_path)),
        ];
        let (code, stderr) = i.run(&script, &env);
        assert_eq!(code == 0, passes, "{event} from {head}: {stderr}");
        assert_eq!(refused(&i), !passes, "{event} from {head}: {:?}", i.calls());
        if !passes {
            assert!(stderr.contains("execute_job"), "{stderr}");
        }
    }
}

/// Every event whose payload carries a pull request (its own name or not) goes to the
/// pull-request check with that pull request: a fork's unapproved commit is refused
/// by the approval rule, the approved fork and a branch of the repository pass.
#[test]
fn every_event_carrying_a_pull_request_gets_the_pull_request_check() {
    if !tools_present() {
        return;
    }
    let s = Service::start(github(), None);
    let events = [
        "pull_request",
        "pull_request_target",
        "pull_request_review",
        "pull_request_review_comment",
        "issue_comment",
        // An event GitHub may add later: what it carries counts, not its name.
        "pull_request_something_new",
    ];
    for event in events {
        for (head, passes) in [
            ("alice/app", false),
            ("bob/app", true),
            ("canonical/app", true),
        ] {
            // A comment names the pull request by number: only the open ones count.
            if event == "issue_comment" && head == "canonical/app" {
                continue;
            }
            let i = Instance::new();
            let event_path = i.write_event(&pull_request_event(event, head));
            let script = fresh_script(&s);
            let env = [
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_REPOSITORY", "canonical/app"),
                ("GITHUB_EVENT_PATH", path_str(&event_path)),
            ];
            let (code, stderr) = i.run(&script, &env);
            assert_eq!(code == 0, passes, "{event} from {head}: {stderr}");
            assert_eq!(refused(&i), !passes, "{event} from {head}: {:?}", i.calls());
            if passes {
                assert!(
                    stderr.contains("pull_request check passed"),
                    "{event}: {stderr}"
                );
            } else {
                assert!(stderr.contains("execute_job"), "{event}: {stderr}");
            }
        }
    }
}

/// A pull-request event whose payload has no pull request is refused, never checked
/// as a repository event; so is an issue comment naming a pull request that is not open.
#[test]
fn a_pull_request_event_without_its_pull_request_is_refused() {
    if !tools_present() {
        return;
    }
    let s = Service::start(github(), None);
    for event in [
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_target",
    ] {
        let i = Instance::new();
        let event_path = i.write_event(&serde_json::json!({"review": {}}));
        let env = [
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_REPOSITORY", "canonical/app"),
            ("GITHUB_EVENT_PATH", path_str(&event_path)),
        ];
        let (code, stderr) = i.run(&fresh_script(&s), &env);
        assert!(code != 0 && refused(&i), "{event}: {stderr}");
    }
    let i = Instance::new();
    let closed = serde_json::json!({"issue": {"number": 99, "pull_request": {"url": "u"}}});
    let event_path = i.write_event(&closed);
    let env = [
        ("GITHUB_EVENT_NAME", "issue_comment"),
        ("GITHUB_REPOSITORY", "canonical/app"),
        ("GITHUB_EVENT_PATH", path_str(&event_path)),
    ];
    let (code, stderr) = i.run(&fresh_script(&s), &env);
    assert!(
        code != 0 && refused(&i) && stderr.contains("#99"),
        "{stderr}"
    );
}

#[test]
fn every_failure_refuses_the_job() {
    if !tools_present() {
        return;
    }
    let s = Service::start(github(), None);
    let events = tempfile::tempdir().unwrap();
    let push_event = events.path().join("push.json");
    std::fs::write(&push_event, r#"{"ref": "refs/heads/main"}"#).unwrap();
    let push = [
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REPOSITORY", "canonical/app"),
        ("GITHUB_EVENT_PATH", path_str(&push_event)),
    ];

    // A second job with the same token: the service no longer knows it.
    let script = fresh_script(&s);
    assert_eq!(Instance::new().run(&script, &push).0, 0);
    let i = Instance::new();
    let (code, stderr) = i.run(&script, &push);
    assert!(
        code != 0 && stderr.contains("HTTP 401") && refused(&i),
        "{stderr}"
    );

    // The service unreachable: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let i = Instance::new();
    let (code, stderr) = i.run(
        &render_pre_job(&format!("http://{closed}"), &"0".repeat(64), RUNNER),
        &push,
    );
    assert!(
        code != 0 && stderr.contains("curl exit 7") && refused(&i),
        "{stderr}"
    );

    // A token presented by another runner than the one it was issued for.
    let i = Instance::new();
    let token = s.one_time_token();
    let other = render_pre_job(s.url(), &token, "test-runner-0-00000002");
    let (code, stderr) = i.run(&other, &push);
    assert!(
        code != 0 && stderr.contains("HTTP 401") && refused(&i),
        "{stderr}"
    );

    // Without the event file nobody can tell whether the job runs a pull request's code.
    for event in ["pull_request", "push", "release"] {
        let i = Instance::new();
        let env = [
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_REPOSITORY", "canonical/app"),
        ];
        let (code, stderr) = i.run(&fresh_script(&s), &env);
        assert!(
            code != 0 && stderr.contains("cannot read the event file") && refused(&i),
            "{event}: {stderr}"
        );
    }

    // A pull request whose fork was deleted (head.repo null): refused, never sent as "null".
    let i = Instance::new();
    let event = i.dir.path().join("deleted-fork.json");
    let body = serde_json::json!({"pull_request": {"head": {"ref": "fix", "sha": SHA, "repo": null}, "base": {"ref": "main"}}});
    std::fs::write(&event, body.to_string()).unwrap();
    let env = [
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_REPOSITORY", "canonical/app"),
        ("GITHUB_EVENT_PATH", path_str(&event)),
    ];
    let (code, stderr) = i.run(&fresh_script(&s), &env);
    assert!(
        code != 0 && stderr.contains("no pull request head or base") && refused(&i),
        "{stderr}"
    );

    // No repository name: the service answers 400, still a refusal.
    let i = Instance::new();
    let (code, stderr) = i.run(
        &fresh_script(&s),
        &[
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", path_str(&push_event)),
        ],
    );
    assert!(
        code != 0 && stderr.contains("HTTP 400") && refused(&i),
        "{stderr}"
    );

    // systemctl unavailable: the plain poweroff is tried next.
    let i = Instance::new();
    let leaky = [
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REPOSITORY", "canonical/leaky"),
        ("GITHUB_EVENT_PATH", path_str(&push_event)),
        ("NO_SYSTEMCTL", "1"),
    ];
    let (code, _) = i.run(&fresh_script(&s), &leaky);
    assert_ne!(code, 0);
    assert_eq!(
        i.calls()[1..],
        [
            "sudo -n systemctl poweroff".to_string(),
            "sudo -n poweroff".to_string()
        ]
    );
}
