//! The rendered pre-job script, run by bash exactly as the runner runs hooks
//! (`bash -e`), against the real policy service on loopback. `sudo` and `pkill` are
//! stand-ins on PATH that record their arguments, so a refusal can be seen stopping
//! the listener and powering off without touching this machine.

mod policy_support;
mod pre_job_support;

use policy_service::prejob::render_pre_job;
use policy_support::{Service, RUNNER};
use pre_job_support::*;

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
