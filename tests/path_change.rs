//! A path change moves the pool without cutting a job short: the old path's busy runner
//! keeps its instance through every later reconcile until its job is done, and then
//! nothing of this unit is left registered there.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use lab::{serial, Policy, Sim, Unit, PAT};
use serde_json::json;

const OLD: &str = "acme/widgets";
const NEW: &str = "acme/gadgets";
const SETTLE: Duration = Duration::from_secs(120);

/// A step that holds its runner busy until the org `release` exists in the simulator.
fn held_step(sim: &Sim, release: &str) -> String {
    format!(
        "until curl -fsS --noproxy '*' -H 'Authorization: Bearer {PAT}' \
         {}/orgs/{release}/actions/runner-groups >/dev/null; do sleep 0.2; done",
        sim.url
    )
}

#[test]
fn the_old_paths_busy_runner_finishes_its_job_then_leaves_nothing_there() {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let sim = Sim::start(&["acme"], &[OLD, NEW]);
    let _policy = Policy::start(&sim, lab::permissive_policy());
    let mut unit = Unit::new(
        &lxd,
        "ghr-move",
        0,
        &sim,
        json!({"path": OLD, "virtual-machines": 1}),
    );
    // Every instance is past its grace at once: a busy runner left out of the plan
    // would be judged dead (no registration on the new path) at the next reconcile.
    unit.h
        .extra_env
        .insert("GITHUB_RUNNER_TEST_GRACE".into(), "0".into());
    unit.run("hooks/config-changed");
    unit.wait_pool(&sim, 1, SETTLE);
    let job = sim.queue_job(OLD, &["ghr-move"], &[&held_step(&sim, "release")]);
    let busy = sim.wait_job(job, "in_progress", SETTLE)["runner_name"]
        .as_str()
        .unwrap()
        .to_string();

    unit.configure(&sim, json!({"path": NEW, "virtual-machines": 1}));
    unit.run("hooks/config-changed");
    unit.wait_pool(&sim, 1, SETTLE);
    for _ in 0..2 {
        unit.run("reconcile-runners");
        assert!(unit.instances().contains(&busy), "{:?}", unit.instances());
        assert_eq!(sim.job(job)["state"], json!("in_progress"));
    }

    sim.post("/_sim/orgs", json!({"name": "release"}));
    let done = sim.wait_job(job, "completed", SETTLE);
    assert_eq!(done["conclusion"], json!("success"), "{done}");
    firewall_support::poll(SETTLE, "the finished runner's instance gone", || {
        (!unit.instances().contains(&busy)).then_some(())
    });
    unit.run("reconcile-runners");
    let left: Vec<_> = sim
        .runners(&unit.prefix)
        .into_iter()
        .filter(|r| r["scope"]["name"] != json!(NEW))
        .collect();
    assert!(left.is_empty(), "left on {OLD}: {left:?}");
    let draining = unit.state().join("draining-path");
    assert!(!draining.exists(), "still leaving {OLD}");

    unit.configure(&sim, json!({"path": NEW, "virtual-machines": 0}));
    unit.run("hooks/config-changed");
    firewall_support::poll(SETTLE, "no instance left", || {
        unit.instances().is_empty().then_some(())
    });
}
