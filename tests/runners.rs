//! End to end on the real LXD test daemon: the charm binary, driven as Juju would,
//! keeps a pool of container runners registered on the simulator; jobs run on them and
//! their instances go away; the reconcile repairs what happens behind its back.

#[allow(dead_code)]
mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use lab::{serial, Policy, Sim, Unit};
use serde_json::json;

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);

#[test]
fn pool_runs_jobs_and_is_refilled() {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let sim = Sim::start(&["acme"], &[REPO]);
    let policy = Policy::start(&sim, lab::permissive_policy());
    let unit = Unit::new(
        &lxd,
        "ghr-pool",
        0,
        &sim,
        json!({"path": REPO, "virtual-machines": 3}),
    );

    unit.run("hooks/config-changed");
    unit.wait_pool(&sim, 3, SETTLE);
    assert_eq!(unit.instances().len(), 3);
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");

    unit.h.clear_calls();
    unit.run("actions/check-runners");
    let results = unit.h.action_results();
    assert_eq!(
        results.get("online").map(String::as_str),
        Some("3"),
        "{results:?}"
    );
    assert_eq!(
        results.get("busy").map(String::as_str),
        Some("0"),
        "{results:?}"
    );

    let job = sim.queue_job(
        REPO,
        &["ghr-pool"],
        &["echo ran > /tmp/step-ran", "test -f /tmp/step-ran"],
    );
    let done = sim.wait_job(job, "completed", SETTLE);
    assert_eq!(
        done["conclusion"],
        json!("success"),
        "{done}\npolicy: {}",
        policy.log_text()
    );
    let ran_on = done["runner_name"].as_str().unwrap().to_string();
    assert!(ran_on.starts_with(&unit.prefix), "{ran_on}");
    let log = policy.log_text();
    assert!(
        log.contains(REPO) && log.contains(": pass"),
        "the pre-job hook asked the policy service: {log}"
    );
    firewall_support::poll(SETTLE, "the used runner's instance to go", || {
        (!unit.instances().contains(&ran_on)).then_some(())
    });

    unit.run("reconcile-runners");
    unit.wait_pool(&sim, 3, SETTLE);
    assert!(!unit.instances().contains(&ran_on));
}
