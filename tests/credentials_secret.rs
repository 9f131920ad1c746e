//! A token kept in a Juju secret, end to end on the real LXD test daemon: the charm
//! binary reads it with the stand-in `secret-get` as Juju would hand it, registers
//! runners that take a job, uses a new revision at once on `secret-changed` (restarting
//! only the policy service, which holds it), and blocks naming the option when the grant
//! is revoked, losing nothing. The token is nowhere it must not be.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use lab::leaks::assert_nowhere;
use lab::{Lab, PAT};
use serde_json::json;

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);
const ROTATED: &str = "ghp_rotatedSecretToken0123456789abcdef";

#[test]
fn a_token_in_a_secret_runs_jobs_rotates_at_once_and_blocks_when_revoked() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.unit("ghr-secret", json!({"path": REPO, "virtual-machines": 1}));
    let uri = unit.h.add_secret(&[("token", PAT)]);
    unit.configure(
        sim,
        json!({"path": REPO, "virtual-machines": 1, "token": uri}),
    );

    // Not granted yet: blocked, naming the option and what to do; nothing is made.
    unit.run("hooks/config-changed");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(
        message.contains(&format!("token {uri:?}")) && message.contains("juju grant-secret"),
        "{message}"
    );
    assert!(unit.instances().is_empty());

    unit.h.grant_secret(&uri);
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 1, SETTLE);
    let job = sim.queue_job(REPO, &["ghr-secret"], &["true"]);
    let done = sim.wait_job(job, "completed", SETTLE);
    assert_eq!(done["conclusion"], json!("success"), "{done}");
    unit.run("reconcile-runners");
    unit.wait_pool(sim, 1, SETTLE);

    rotate(&lab, &unit, &uri);
    revoke(&lab, &unit, &uri);
    assert_nowhere(&unit, &[PAT, ROTATED], &lab.policy.log_text());

    // Revoked before the unit goes: `stop` still takes its runners away, with the token
    // its last hook handed the manager.
    unit.h.revoke_secret(&uri);
    unit.run("hooks/stop");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "maintenance", "{message}");
    assert!(unit.instances().is_empty(), "{:?}", unit.instances());
    assert!(sim.runners(&unit.prefix).is_empty());
}

/// A new revision is used at once: the old token is refused by GitHub from then on, and
/// the next reconcile succeeds on the new one. Only the policy service restarts.
fn rotate(lab: &Lab, unit: &lab::Unit, uri: &str) {
    let sim = &lab.sim;
    sim.post("/_sim/tokens", json!({"token": ROTATED}));
    unit.h.update_secret(uri, &[("token", ROTATED)]);
    let manager = unit.h.service_pids();
    unit.h.clear_calls();
    let run = unit.h.secret_changed(uri);
    assert!(run.success(), "{}\n{:#?}", run.stderr(), unit.h.logs());
    assert_eq!(unit.h.tracked_revision(uri), Some(2));
    let restarts: Vec<String> = unit
        .h
        .calls_of("systemctl")
        .filter(|c| c.args.first().is_some_and(|a| a == "restart"))
        .map(|c| c.args.join(" "))
        .collect();
    assert!(
        restarts.iter().any(|r| r.contains(&unit.policy_unit())),
        "the policy service restarts on the new token: {restarts:?}"
    );
    assert!(
        !restarts.iter().any(|r| r.contains(&unit.manager_unit())),
        "the manager takes it with its next request: {restarts:?}"
    );
    assert_eq!(unit.h.service_pids(), manager, "the manager kept running");
    let env = std::fs::read_to_string(unit.state().join("policy-server.env")).unwrap();
    assert!(env.contains(&format!("GITHUB_TOKEN={ROTATED}\n")));
    sim.delete(&format!("/_sim/tokens/{PAT}"));
    unit.run("reconcile-runners");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(
        status, "active",
        "the reconcile ran on the new token: {message}"
    );
    unit.wait_pool(sim, 1, SETTLE);
}

/// A revoked grant blocks at the next hook (update-status), naming the option; the pool
/// and its registrations stay.
fn revoke(lab: &Lab, unit: &lab::Unit, uri: &str) {
    let runners = unit.instances();
    unit.h.revoke_secret(uri);
    unit.run("hooks/update-status");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(
        message.contains(&format!(
            "token {uri:?}: the application may not read this secret"
        )),
        "{message}"
    );
    assert_eq!(unit.instances(), runners);
    assert_eq!(lab.sim.online_idle(&unit.prefix), 1);
    unit.h.grant_secret(uri);
    unit.run("hooks/update-status");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");
}
