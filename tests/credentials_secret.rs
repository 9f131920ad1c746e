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
/// A revision GitHub never issued: the operator's mistake, put right afterwards.
const WRONG: &str = "ghp_wrongSecretToken0123456789abcdef00";

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
    wrong_then_put_back(&lab, &unit, &uri);
    unrelated_secret_changed(&unit);
    revoke(&lab, &unit, &uri);
    assert_nowhere(&unit, &[PAT, ROTATED, WRONG], &lab.policy.log_text());

    // Revoked before the unit goes: `stop` still takes its runners away, with the token
    // its last hook handed the manager.
    unit.h.revoke_secret(&uri);
    unit.run("hooks/stop");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "maintenance", "{message}");
    assert!(unit.instances().is_empty(), "{:?}", unit.instances());
    assert!(sim.runners(&unit.prefix).is_empty());
    // And `remove` finishes on the same last settings, or Juju would retry it forever.
    unit.h.clear_calls();
    let run = unit.run("hooks/remove");
    let logs = unit.h.logs();
    assert!(run.success(), "{}\n{logs:#?}", run.stderr());
    assert!(
        logs.iter()
            .any(|(_, m)| m.contains("leaving with the one last handed to the runner manager")),
        "{logs:#?}"
    );
    let statuses = unit.h.statuses();
    assert!(
        !statuses.iter().any(|(s, _)| s == "blocked"),
        "{statuses:?}"
    );
}

/// A new revision is used at once: the old token is refused by GitHub from then on, and
/// the next reconcile succeeds on the new one. Only the policy service restarts.
fn rotate(lab: &Lab, unit: &lab::Unit, uri: &str) {
    let sim = &lab.sim;
    sim.post("/_sim/tokens", json!({"token": ROTATED}));
    unit.h.update_secret(uri, &[("token", ROTATED)]);
    let manager = unit.h.service_pids();
    let runners = unit.instances();
    unit.h.clear_calls();
    let run = unit.h.secret_changed(uri);
    assert!(run.success(), "{}\n{:#?}", run.stderr(), unit.h.logs());
    assert_eq!(unit.h.tracked_revision(uri), Some(2));
    assert_eq!(
        unit.instances(),
        runners,
        "a rotation flushes no idle runner"
    );
    let restarts = restarts_of(unit);
    assert!(
        restarts.iter().any(|r| r.contains(&unit.policy_unit())),
        "the policy service restarts on the new token: {restarts:?}"
    );
    assert!(
        !restarts.iter().any(|r| r.contains(&unit.manager_unit())),
        "the manager takes it with its next request: {restarts:?}"
    );
    assert_eq!(unit.h.service_pids(), manager, "the manager kept running");
    assert_policy_token(unit, ROTATED);
    sim.delete(&format!("/_sim/tokens/{PAT}"));
    unit.run("reconcile-runners");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(
        status, "active",
        "the reconcile ran on the new token: {message}"
    );
    unit.wait_pool(sim, 1, SETTLE);
}

fn assert_policy_token(unit: &lab::Unit, token: &str) {
    let env = std::fs::read_to_string(unit.state().join("policy-server.env")).unwrap();
    assert!(
        env.contains(&format!("GITHUB_TOKEN={token}\n")),
        "the policy service runs on the secret's latest revision"
    );
}

fn restarts_of(unit: &lab::Unit) -> Vec<String> {
    unit.h
        .calls_of("systemctl")
        .filter(|c| c.args.first().is_some_and(|a| a == "restart"))
        .map(|c| c.args.join(" "))
        .collect()
}

/// A revision GitHub refuses blocks, keeping the pool; putting the good one back
/// makes everything run on it again, the policy service included (the failed
/// change never became the unit's remembered one).
fn wrong_then_put_back(lab: &Lab, unit: &lab::Unit, uri: &str) {
    let runners = unit.instances();
    unit.h.update_secret(uri, &[("token", WRONG)]);
    unit.h.secret_changed(uri);
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(message.contains("token rejected by GitHub"), "{message}");
    assert_eq!(unit.instances(), runners);
    assert_policy_token(unit, WRONG);

    unit.h.update_secret(uri, &[("token", ROTATED)]);
    unit.h.clear_calls();
    let run = unit.h.secret_changed(uri);
    assert!(run.success(), "{}", run.stderr());
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");
    assert_policy_token(unit, ROTATED);
    assert!(
        restarts_of(unit)
            .iter()
            .any(|r| r.contains(&unit.policy_unit())),
        "the policy service left the wrong token"
    );
    assert_eq!(unit.instances(), runners);
    assert_eq!(lab.sim.online_idle(&unit.prefix), 1);
}

/// `secret-changed` for a secret the config does not name (one the unit once read
/// through an option since changed, say): nothing restarts, nothing is flushed.
fn unrelated_secret_changed(unit: &lab::Unit) {
    let other = unit
        .h
        .add_secret(&[("token", "ghp_notThisUnitsToken000000000000000000")]);
    unit.h.grant_secret(&other);
    let runners = unit.instances();
    unit.h.clear_calls();
    let run = unit.h.secret_changed(&other);
    assert!(run.success(), "{}", run.stderr());
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");
    assert_eq!(restarts_of(unit), Vec::<String>::new());
    assert_eq!(unit.instances(), runners);
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
