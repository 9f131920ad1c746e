//! The real binary under the hook-tool harness: invalid configuration blocks, names the
//! option, and touches nothing.

mod harness;

use std::path::PathBuf;

use harness::{files_under, Harness, HOST_COMMANDS};
use serde_json::json;

/// Calls that only read, or report: anything else would change the unit or host.
const READ_OR_REPORT: &[&str] = &[
    "config-get",
    "status-set",
    "juju-log",
    "state-get",
    "is-leader",
    "action-get",
];

/// A harness under which no real program can run (each is a recording stand-in) and
/// whose host files live in an empty folder, returned to check it stays empty.
fn sealed() -> (Harness, PathBuf) {
    let mut h = Harness::new();
    h.isolate();
    let root = h.relocate_root();
    (h, root)
}

fn assert_blocked_and_untouched(h: &Harness, want_message: &str) {
    let (status, message) = h.last_status().expect("a status was set");
    assert_eq!(status, "blocked");
    assert!(
        message.contains(want_message),
        "{message:?} should contain {want_message:?}"
    );
    for call in h.calls() {
        assert!(
            READ_OR_REPORT.contains(&call.tool.as_str()),
            "unexpected call {call:?}"
        );
    }
}

#[test]
fn empty_token_and_path_block_with_the_missing_names() {
    let (h, root) = sealed();
    let run = h.run("hooks/config-changed");
    assert!(run.success(), "{}", run.stderr());
    assert_blocked_and_untouched(
        &h,
        "Missing required charm configuration: token or a GitHub App (github-app-client-id or \
         github-app-id, github-app-installation-id, github-app-private-key), path",
    );
    assert_eq!(files_under(&root), Vec::<String>::new());
}

#[test]
fn each_invalid_option_blocks_naming_it_and_changes_nothing() {
    let cases = [
        ("path", json!("a/b/c"), "invalid config: path \"a/b/c\""),
        ("group", json!(""), "invalid config: group"),
        (
            "token",
            json!("ghp_has space"),
            "invalid config: token \"<redacted>\"",
        ),
        (
            "virtual-machines",
            json!(-3),
            "invalid config: virtual-machines \"-3\"",
        ),
        ("vm-cpu", json!(0), "invalid config: vm-cpu \"0\""),
        (
            "vm-memory",
            json!("7XB"),
            "invalid config: vm-memory \"7XB\": unknown unit",
        ),
        ("vm-disk", json!("lots"), "invalid config: vm-disk \"lots\""),
        (
            "reconcile-interval",
            json!(0),
            "invalid config: reconcile-interval \"0\"",
        ),
        ("denylist", json!("10.0.0.0/99"), "invalid config: denylist"),
        (
            "dockerhub-mirror",
            json!("http://mirror"),
            "invalid config: dockerhub-mirror",
        ),
        ("test-mode", json!("sometimes"), "invalid config: test-mode"),
        ("labels", json!("a b"), "invalid config: labels"),
        (
            "github-url",
            json!("gopher://x"),
            "invalid config: github-url",
        ),
        (
            "runner-instance-type",
            json!("vm"),
            "invalid config: runner-instance-type",
        ),
        (
            "runner-image",
            json!("no spaces allowed"),
            "invalid config: runner-image",
        ),
        ("experimental-use-aproxy", json!("maybe"), "invalid config"),
    ];
    for (option, value, want) in cases {
        let (h, root) = sealed();
        let mut config = json!({"path": "acme", "token": "ghp_abcdef123456"});
        config[option] = value;
        h.set_config(config);
        let run = h.run("hooks/config-changed");
        assert!(run.success(), "{option}: {}", run.stderr());
        assert_blocked_and_untouched(&h, want);
        let token = h_token(&h);
        let everything = format!("{:?}{}{}", h.calls(), run.stdout(), run.stderr());
        assert!(!everything.contains(&token), "{option}: token leaked");
        let written = files_under(&root);
        assert!(written.is_empty(), "{option}: wrote {written:?}");
    }
}

#[test]
fn a_clear_text_github_url_blocks_every_event_and_runs_nothing() {
    for event in [
        "hooks/install",
        "hooks/config-changed",
        "hooks/start",
        "reconcile-runners",
    ] {
        let (h, root) = sealed();
        h.set_config(json!({
            "path": "acme", "token": "ghp_abcdef123456", "github-url": "http://ghes.example.com"
        }));
        let run = h.run(event);
        assert!(run.success(), "{event}: {}", run.stderr());
        assert_blocked_and_untouched(
            &h,
            "invalid config: github-url \"http://ghes.example.com\": must be an https:// URL",
        );
        assert_eq!(files_under(&root), Vec::<String>::new(), "{event}");
    }
}

#[test]
fn test_mode_insecure_accepts_http_and_marks_every_status() {
    let insecure = json!({
        "path": "acme", "token": "ghp_abcdef123456",
        "github-url": "http://127.0.0.1:9", "test-mode": "insecure", "virtual-machines": 0
    });
    let (h, _root) = sealed();
    h.set_config(insecure.clone());
    let run = h.run("hooks/update-status");
    assert!(run.success(), "{}", run.stderr());
    assert_eq!(
        h.last_status(),
        Some((
            "active".into(),
            "0 runners wanted [test-mode=insecure]".into()
        ))
    );
    // A config invalid otherwise still shows the mark on its blocked status.
    let (h, _root) = sealed();
    let mut bad = insecure.clone();
    bad["vm-cpu"] = json!(0);
    h.set_config(bad);
    h.run("hooks/config-changed");
    let (status, message) = h.last_status().unwrap();
    assert_eq!(status, "blocked");
    assert!(
        message.starts_with("invalid config: vm-cpu") && message.ends_with(" [test-mode=insecure]"),
        "{message}"
    );
    // Without test-mode the same status carries no mark.
    let (h, _root) = sealed();
    let mut normal = insecure;
    normal["test-mode"] = json!("");
    normal["github-url"] = json!("https://127.0.0.1:9");
    h.set_config(normal);
    h.run("hooks/update-status");
    assert_eq!(
        h.last_status(),
        Some(("active".into(), "0 runners wanted".into()))
    );
}

fn h_token(h: &Harness) -> String {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.path().join("config.json")).unwrap())
            .unwrap();
    config["token"].as_str().unwrap().to_string()
}

#[test]
fn unknown_events_are_logged_and_exit_zero() {
    let h = Harness::new();
    h.shadow(HOST_COMMANDS);
    let run = h.run("hooks/leader-elected");
    assert!(run.success(), "{}", run.stderr());
    assert!(h.statuses().is_empty());
    assert!(
        h.logs().iter().any(|(_, m)| m.contains("leader-elected")),
        "{:?}",
        h.logs()
    );
}

#[test]
fn an_action_with_bad_config_fails_with_the_reason() {
    let h = Harness::new();
    h.shadow(HOST_COMMANDS);
    h.set_config(json!({"path": "acme", "token": "t", "vm-cpu": 0}));
    let run = h.run("actions/check-runners");
    assert!(run.success(), "{}", run.stderr());
    let failure = h.action_failure().expect("action-fail called");
    assert!(failure.contains("vm-cpu"), "{failure}");
}

#[test]
fn a_failing_hook_tool_makes_juju_retry() {
    let h = Harness::new();
    h.shadow(HOST_COMMANDS);
    h.fail_tool("config-get", "ERROR connection to the agent lost");
    let run = h.run("hooks/config-changed");
    assert!(!run.success(), "a hook tool failure must exit non-zero");
    assert!(
        run.stderr().contains("connection to the agent lost")
            || h.logs()
                .iter()
                .any(|(_, m)| m.contains("connection to the agent lost"))
    );
}
