//! End to end on the real LXD test daemon: a fork's pull request reaches a runner on
//! every event that carries it (a review, a review comment, `pull_request_target`, a
//! comment on the pull request), not only on `pull_request`. The real pre-job script,
//! run by the simulator's runner app in a runner the charm made, must send each to the
//! pull-request check: without an approval comment no step runs; with one it does.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use lab::forks::{
    fork_pull_requests, marker_exists, queue_fork_event_job, APPROVED_SHA, UNAPPROVED_SHA,
};
use lab::{serial, Policy, Sim, Unit};
use serde_json::{json, Value};

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);
const LABEL: &str = "ghr-events";

/// The events GitHub runs a pull request's workflows on besides `pull_request`.
const EVENTS: [&str; 4] = [
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_target",
    "issue_comment",
];

/// Runs one job of `event` about the fork's `head` at `sha` and waits for its end.
fn run_job(sim: &Sim, event: &str, head: &str, sha: &str, marker: &str) -> Value {
    let id = queue_fork_event_job(sim, REPO, &[LABEL], event, head, sha, marker);
    sim.wait_job(id, "completed", SETTLE)
}

#[test]
fn a_fork_pull_request_never_runs_unapproved_on_any_event_that_carries_it() {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let sim = Sim::start(&["acme"], &[REPO]);
    fork_pull_requests(&sim, REPO);
    // The default policy with disallow_fork off: only execute_job (the approval
    // comment) stands between a fork's pull request and the runner.
    let policy = Policy::start(
        &sim,
        json!({"pull_request": {"disallow_fork": {"enabled": false}}}),
    );
    let unit = Unit::new(
        &lxd,
        LABEL,
        0,
        &sim,
        json!({"path": REPO, "virtual-machines": 2}),
    );
    unit.run("hooks/config-changed");
    unit.wait_pool(&sim, 2, SETTLE);

    let mut refused = 0;
    for event in EVENTS {
        let marker = format!("marker-{}", event.replace('_', "-"));
        let done = run_job(&sim, event, "feature", UNAPPROVED_SHA, &marker);
        let log = policy.log_text();
        assert_eq!(
            done["conclusion"],
            json!("failure"),
            "{event}: {done}\n{log}"
        );
        let mut used = vec![done["runner_name"].as_str().unwrap().to_string()];
        assert!(
            !marker_exists(&sim, &marker),
            "{event}: a step of the fork's unapproved job ran"
        );
        // One more refusal by the approval rule, of this fork's unapproved commit.
        let refusals = log
            .lines()
            .filter(|l| l.contains("fail: execute_job:") && l.contains(UNAPPROVED_SHA))
            .count();
        assert_eq!(
            refusals,
            refused + 1,
            "{event}: not refused by the pull request's approval rule: {log}"
        );
        refused = refusals;
        // The approved commit of the same fork runs on the same event: the refusal
        // above is the approval rule's, not a blanket refusal of the event.
        let marker = format!("{marker}-approved");
        let done = run_job(&sim, event, "approved", APPROVED_SHA, &marker);
        assert_eq!(
            done["conclusion"],
            json!("success"),
            "{event}: {done}\n{}",
            policy.log_text()
        );
        assert!(
            marker_exists(&sim, &marker),
            "{event}: the approved job's step did not run"
        );
        used.push(done["runner_name"].as_str().unwrap().to_string());
        // Two runners used (their instances go once their runner ends): the pool is
        // made whole again for the next event.
        firewall_support::poll(SETTLE, "the used runners' instances to go", || {
            let left = unit.instances();
            (!used.iter().any(|u| left.contains(u))).then_some(())
        });
        unit.run("reconcile-runners");
        unit.wait_pool(&sim, 2, SETTLE);
    }
}
