//! The charm's unit state (`state-get`/`state-set`) as the real binary keeps it, read
//! through the harness's state view: config-changed stores the path and a token
//! fingerprint, never the token, and notices a new token or path; a downloaded runner
//! application's version is remembered.

mod firewall_support;
mod harness;
mod lab;

use harness::{Harness, HOST_COMMANDS};
use lab::{serial, Sim, Unit};
use serde_json::{json, Value};

const REPO: &str = "acme/widgets";
const NEW_TOKEN: &str = "ghp_labSecondTokenForStateTest02";

/// Every `state-set` body the charm sent, after checking none holds a token.
fn state_sets_without(h: &Harness, tokens: &[&str]) -> Vec<String> {
    let bodies: Vec<String> = h.calls_of("state-set").filter_map(|c| c.stdin).collect();
    for body in &bodies {
        for token in tokens {
            assert!(!body.contains(token), "state-set got the token: {body}");
        }
    }
    bodies
}

fn text(state: &Value, key: &str) -> String {
    state[key].as_str().unwrap_or_default().to_string()
}

/// No LXD: the action's reconcile fails after the download, which is the point. The
/// application is on the host by then, so its version must already be remembered.
#[test]
fn a_downloaded_runner_app_is_remembered_before_the_reconcile() {
    let mut config = github_sim::SimConfig::new(lab::PAT);
    config.orgs = vec!["acme".into()];
    let server = github_sim::SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut h = Harness::new();
    h.shadow(HOST_COMMANDS);
    h.relocate_root();
    let no_lxd = tempfile::tempdir().unwrap();
    h.extra_env
        .insert("LXD_DIR".into(), no_lxd.path().display().to_string());
    // The simulator speaks http://, which only a test deployment accepts.
    h.set_config(json!({
        "path": "acme", "token": lab::PAT, "github-url": server.url, "test-mode": "insecure"
    }));

    h.run("actions/update-dependencies");
    let want = server.sim.tarball.filename("x64");
    assert_eq!(
        text(&h.state(), "runner-app-version"),
        want,
        "logs: {:?}",
        h.logs()
    );
    assert_eq!(state_sets_without(&h, &[lab::PAT]).len(), 1);
}

#[test]
fn config_changed_keeps_path_and_token_fingerprint_and_notices_both_changing() {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let sim = Sim::start(&["acme"], &[REPO]);
    let unit = Unit::new(
        &lxd,
        "ghr-state",
        0,
        &sim,
        json!({"path": REPO, "virtual-machines": 0}),
    );

    // A reconcile, even to no runner, wants the runner application on the host.
    unit.run("actions/update-dependencies");
    assert!(text(&unit.h.state(), "runner-app-version").ends_with(".tar.gz"));
    unit.run("hooks/config-changed");
    let first = unit.h.state();
    assert_eq!(
        text(&first, "previous-path"),
        REPO,
        "status {:?}, logs {:?}",
        unit.h.last_status(),
        unit.h.logs()
    );
    let fingerprint = text(&first, "token-fingerprint");
    assert!(fingerprint.len() >= 8, "{first}");
    assert!(!first.to_string().contains(lab::PAT), "{first}");
    assert!(!state_sets_without(&unit.h, &[lab::PAT]).is_empty());

    sim.post("/_sim/tokens", json!({"token": NEW_TOKEN}));
    unit.configure(
        &sim,
        json!({"path": "acme", "virtual-machines": 0, "token": NEW_TOKEN}),
    );
    unit.h.clear_calls();
    unit.run("hooks/config-changed");
    let logs: Vec<String> = unit.h.logs().into_iter().map(|(_, m)| m).collect();
    for want in [
        "the policy service's settings changed",
        "path changed from acme/widgets to acme",
    ] {
        assert!(logs.iter().any(|m| m.contains(want)), "{want}: {logs:?}");
    }
    let restarted = unit
        .h
        .calls_of("systemctl")
        .any(|c| c.args == ["restart", unit.policy_unit().as_str()]);
    assert!(restarted, "the policy service gets the new token");
    let second = unit.h.state();
    assert_eq!(text(&second, "previous-path"), "acme");
    let new_fingerprint = text(&second, "token-fingerprint");
    assert!(new_fingerprint.len() >= 8 && new_fingerprint != fingerprint);
    state_sets_without(&unit.h, &[lab::PAT, NEW_TOKEN]);

    // The same config again: nothing changed, nothing flushed.
    unit.h.clear_calls();
    unit.run("hooks/config-changed");
    let logs: Vec<String> = unit.h.logs().into_iter().map(|(_, m)| m).collect();
    assert!(!logs.iter().any(|m| m.contains("changed")), "{logs:?}");
    assert_eq!(unit.h.state(), second);
}
