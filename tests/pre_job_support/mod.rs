//! What the pre-job script tests share: the real policy service's in-memory GitHub
//! (canonical/app with fork pull requests #3, unapproved, and #4, approved), a scratch
//! instance whose `sudo` and `pkill` are recording stand-ins, and event payloads.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use policy_service::fake::{collaborator, comment, pull, FakeRepo, FakeRepoApi};
use policy_service::github::Permission;
use policy_service::prejob::render_pre_job;

use crate::policy_support::{Service, RUNNER};

pub const SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// Whether bash, curl and jq are here; without them the test is skipped, except in CI.
pub fn tools_present() -> bool {
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

pub fn github() -> Arc<FakeRepoApi> {
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
pub struct Instance {
    pub dir: tempfile::TempDir,
}

impl Instance {
    pub fn new() -> Self {
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

    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn event_file(&self, head_repo: &str) -> PathBuf {
        self.write_event(&serde_json::json!({"pull_request": pull_request(head_repo)}))
    }

    /// A payload that carries no pull request (a push, an issue comment on an issue).
    pub fn repository_event(&self) -> PathBuf {
        self.write_event(&serde_json::json!({"ref": "refs/heads/main", "issue": {"number": 1}}))
    }

    pub fn write_event(&self, event: &serde_json::Value) -> PathBuf {
        let path = self.dir.path().join("event.json");
        std::fs::write(&path, event.to_string()).unwrap();
        path
    }

    /// Runs the script as the runner would; returns (exit code, stderr).
    pub fn run(&self, script: &str, env: &[(&str, &str)]) -> (i32, String) {
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
pub fn pull_request(head_repo: &str) -> serde_json::Value {
    let number = if head_repo == "bob/app" { 4 } else { 3 };
    serde_json::json!({
        "number": number,
        "head": {"ref": "fix", "sha": SHA, "repo": {"full_name": head_repo}},
        "base": {"ref": "main", "sha": "0".repeat(40), "repo": {"full_name": "canonical/app"}}
    })
}

/// The payload of `event` about the pull request from `head_repo`, as GitHub shapes it.
pub fn pull_request_event(event: &str, head_repo: &str) -> serde_json::Value {
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
pub fn fresh_script(s: &Service) -> String {
    render_pre_job(s.url(), &s.one_time_token(), RUNNER)
}

pub fn refused(instance: &Instance) -> bool {
    let calls = instance.calls();
    calls.iter().any(|c| c == "pkill -INT -f Runner.Listener")
        && calls.iter().any(|c| c.contains("poweroff"))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
