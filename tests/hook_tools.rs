//! The real hook-tool layer (`juju::Cli`) against the recording stand-ins: every
//! method sends exactly the command line ../shared/TESTBED.md gives for Juju's tools
//! (what the Python `ops` framework sends), reads their answers, and turns a failing
//! tool into an error carrying its stderr.

mod harness;

use github_runner::juju::{Cli, HookTools, LogLevel, Status};
use harness::Harness;
use serde_json::{json, Map, Value};

/// `(argv, stdin)` of every recorded call, the tool's name first.
fn lines(h: &Harness) -> Vec<(Vec<String>, Option<String>)> {
    h.calls()
        .into_iter()
        .map(|c| {
            let mut argv = vec![c.tool];
            argv.extend(c.args);
            (argv, c.stdin)
        })
        .collect()
}

fn line(argv: &[&str]) -> (Vec<String>, Option<String>) {
    (argv.iter().map(|a| a.to_string()).collect(), None)
}

/// One test only: the tools are found through this process's PATH.
#[test]
fn every_tool_gets_the_testbed_command_line() {
    let h = Harness::new();
    let bin = h.path().join("bin");
    std::env::set_var("PATH", &bin);
    std::env::set_var("HOOK_HARNESS_DIR", h.path());
    h.set_config(json!({"path": "acme"}));
    h.set_action_params(json!({"flush-busy": false}));
    h.set_leader(false);
    let juju = Cli;

    assert_eq!(juju.config_get().unwrap()["path"], "acme");
    juju.status_set(Status::Blocked, "invalid config: vm-cpu \"0\"")
        .unwrap();
    assert_eq!(juju.action_get().unwrap(), json!({"flush-busy": false}));
    let results = [("online", "2"), ("removed-by-reason.idle", "1")];
    let results: Vec<(String, String)> = results
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    juju.action_set(&results).unwrap();
    juju.action_fail("GitHub said no").unwrap();
    juju.action_log("flushing 2 runners").unwrap();
    juju.juju_log(LogLevel::Warning, "a warning with spaces")
        .unwrap();
    assert!(!juju.is_leader().unwrap());
    let mut state = Map::new();
    state.insert("previous-path".into(), json!("acme"));
    juju.state_set(&state).unwrap();
    assert_eq!(
        juju.state_get(None).unwrap(),
        json!({"previous-path": "acme"})
    );
    assert_eq!(juju.state_get(Some("previous-path")).unwrap(), "acme");
    juju.state_delete("previous-path").unwrap();
    assert_eq!(juju.state_get(Some("previous-path")).unwrap(), Value::Null);
    juju.reboot(false).unwrap();
    juju.reboot(true).unwrap();
    juju.application_version_set("1.2.3").unwrap();

    let state_set = (
        vec!["state-set".into(), "--file".into(), "-".into()],
        Some(r#"{"previous-path":"acme"}"#.to_string()),
    );
    let want = vec![
        line(&["config-get", "--format=json"]),
        line(&[
            "status-set",
            "--application=False",
            "blocked",
            "invalid config: vm-cpu \"0\"",
        ]),
        line(&["action-get", "--format=json"]),
        line(&["action-set", "online=2", "removed-by-reason.idle=1"]),
        line(&["action-fail", "GitHub said no"]),
        line(&["action-log", "flushing 2 runners"]),
        line(&[
            "juju-log",
            "--log-level",
            "WARNING",
            "a warning with spaces",
        ]),
        line(&["is-leader", "--format=json"]),
        state_set,
        line(&["state-get", "--format=json"]),
        line(&["state-get", "--format=json", "previous-path"]),
        line(&["state-delete", "previous-path"]),
        line(&["state-get", "--format=json", "previous-path"]),
        line(&["juju-reboot"]),
        line(&["juju-reboot", "--now"]),
        line(&["application-version-set", "1.2.3"]),
    ];
    assert_eq!(lines(&h), want);

    // A failing tool is an error that carries what the tool printed.
    h.fail_tool("status-set", "ERROR permission denied");
    let err = juju.status_set(Status::Active, "ok").unwrap_err();
    assert!(err.to_string().contains("ERROR permission denied"), "{err}");
}

/// Starts the stand-in's `state-set` with `stdin` written and closed.
fn spawn_state_set(h: &Harness, stdin: &str) -> std::process::Child {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(h.path().join("bin/state-set"))
        .args(["--file", "-"])
        .env("HOOK_HARNESS_DIR", h.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.as_bytes()).unwrap();
    drop(pipe);
    child
}

/// A broken `state-set` call exits 2 saying what was wrong, and the stored state stays.
#[test]
fn state_set_refuses_what_is_not_an_object_and_keeps_the_state() {
    let h = Harness::new();
    let state_set = |stdin: &str| spawn_state_set(&h, stdin).wait_with_output().unwrap();
    assert!(state_set(r#"{"kept": "yes"}"#).status.success());
    let refused = state_set("[1, 2]");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("state-set: stdin is not a JSON object: "),
        "{stderr}"
    );
    let state = std::fs::read_to_string(h.path().join("state.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&state).unwrap(),
        json!({"kept": "yes"})
    );
}

/// Calls racing on the state file each replace it whole: none fails on another's
/// temporary file, and what is left is always one call's complete JSON.
#[test]
fn racing_state_set_calls_all_succeed_and_leave_whole_json() {
    let h = Harness::new();
    let big = "x".repeat(64 * 1024);
    let children: Vec<_> = (0..16)
        .map(|i| spawn_state_set(&h, &format!(r#"{{"key{i}": "{big}"}}"#)))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
    }
    let state = std::fs::read_to_string(h.path().join("state.json")).unwrap();
    let state: Value = serde_json::from_str(&state).expect("state.json is whole JSON");
    assert!(state.as_object().is_some_and(|o| !o.is_empty()));
}
