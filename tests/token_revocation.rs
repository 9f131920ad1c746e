//! End to end on the real LXD test daemon: a runner's one-time policy token dies with
//! the runner. The charm flushes its runners (a reconcile's removal path), and the
//! tokens baked into the removed runners' pre-job scripts are refused by the real
//! policy service afterwards, while a runner made since holds a token that works.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use lab::{Lab, Unit, BRIDGE_IP};
use serde_json::json;

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);

/// The one-time token baked into `runner`'s pre-job script.
fn baked_token(unit: &Unit, runner: &str) -> String {
    let script = unit
        .lxd
        .lxc(&["exec", runner, "--", "cat", "/opt/github-runner/pre-job.sh"])
        .unwrap();
    let line = script
        .lines()
        .find(|l| l.starts_with("ONE_TIME_TOKEN="))
        .expect("the script sets its token");
    line.trim_start_matches("ONE_TIME_TOKEN=")
        .trim_matches('\'')
        .to_string()
}

/// A push check-run with `token`, as runner `runner`'s pre-job script sends it.
fn check_run(token: &str, runner: &str) -> u16 {
    // The runners' routes answer on the bridge, where runners reach the service.
    let response = ureq::post(&format!(
        "{}/push/check-run",
        policy_service::url(BRIDGE_IP, policy_service::POLICY_PORT)
    ))
    .set("Authorization", &format!("Bearer {token}"))
    .set("X-Runner-Name", runner)
    .set("Content-Type", "application/json")
    .send_string(&format!(r#"{{"repository_name": "{REPO}"}}"#));
    match response {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_flushed_runners_token_is_refused() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.unit("ghr-revoke", json!({"path": REPO, "virtual-machines": 2}));
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 2, SETTLE);
    let flushed = unit.instances();
    let tokens: Vec<String> = flushed.iter().map(|r| baked_token(&unit, r)).collect();

    unit.h.set_action_params(json!({"flush-busy": false}));
    unit.run("actions/flush-runners");
    let log = lab.policy.log_text();
    for (runner, token) in flushed.iter().zip(&tokens) {
        assert!(
            !unit.instances().contains(runner),
            "{runner} was flushed: {:?}",
            unit.instances()
        );
        assert_eq!(
            check_run(token, runner),
            401,
            "{runner}'s token after its removal"
        );
        assert!(
            log.contains(&format!("revoked the one-time token of runner {runner}")),
            "the charm revoked {runner}'s token: {log}"
        );
    }

    // The runners made after the flush hold tokens the service accepts.
    unit.wait_pool(sim, 2, SETTLE);
    let fresh = unit.instances()[0].clone();
    assert!(!flushed.contains(&fresh));
    assert_eq!(check_run(&baked_token(&unit, &fresh), &fresh), 204);
}
