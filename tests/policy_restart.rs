//! End to end on the real LXD test daemon: the policy service killed under a running
//! pool. The next reconcile sees it down, asks systemd to restart it (the stand-in
//! `systemctl`), keeps the pool, and says in the status when the service stays down;
//! when the restart brings it back, the runner that was already there runs a job
//! through the restarted service's pre-job check.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use harness::Reply;
use lab::{Lab, Unit};
use serde_json::json;

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);
fn restarts(unit: &Unit) -> usize {
    let restart = format!("restart {}", unit.policy_unit());
    unit.h
        .calls_of("systemctl")
        .filter(|c| c.args.join(" ") == restart)
        .count()
}

fn health_status() -> Option<u16> {
    match ureq::get(&format!(
        "{}/health",
        policy_service::local_url(policy_service::POLICY_PORT)
    ))
    .timeout(Duration::from_secs(5))
    .call()
    {
        Ok(r) => Some(r.status()),
        Err(ureq::Error::Status(code, _)) => Some(code),
        Err(_) => None,
    }
}

#[test]
fn a_killed_policy_service_is_restarted_before_the_reconcile() {
    let Some(mut lab) = Lab::new(&[REPO]) else {
        return;
    };
    let sim = &lab.sim;
    let unit = lab.unit("ghr-health", json!({"path": REPO, "virtual-machines": 1}));
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 1, SETTLE);
    // The first config-changed installed the service's files; from then on a healthy
    // service whose settings did not change is left alone.
    unit.h.clear_calls();
    unit.run("hooks/config-changed");
    unit.run("reconcile-runners");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");
    assert!(!message.contains("policy"), "{message}");
    assert_eq!(restarts(&unit), 0, "a healthy service is left alone");
    let pool = unit.instances();

    // Killed, and the restart does not bring it back (the stand-in only records it):
    // the pool stays, the status says why.
    lab.policy.kill();
    assert_eq!(health_status(), None);
    unit.h.clear_calls();
    unit.run("reconcile-runners");
    assert_eq!(
        restarts(&unit),
        1,
        "{:?}",
        unit.h.calls_of("systemctl").collect::<Vec<_>>()
    );
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");
    assert!(
        message.starts_with("policy service unhealthy: ") && message.contains("1 idle"),
        "{message}"
    );
    assert_eq!(unit.instances(), pool, "the pool is kept");
    assert_eq!(sim.runners(&unit.prefix).len(), 1);

    // A restart that starts the service again, as systemd would.
    let command = lab.policy.restart_command();
    let argv: Vec<&str> = command.iter().map(String::as_str).collect();
    unit.h.script(
        "systemctl",
        &["restart", &unit.policy_unit()],
        Reply::ok("").spawn(&argv),
    );
    unit.h.clear_calls();
    unit.run("reconcile-runners");
    assert_eq!(restarts(&unit), 1);
    // The stand-in started the policy service once (beside the runner manager).
    let services = unit.h.service_pids().len();
    assert_eq!(unit.h.spawned().len() - services, 1);
    assert_eq!(health_status(), Some(204), "the service answers again");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");
    assert!(!message.contains("policy"), "{message}");
    assert!(
        unit.h
            .logs()
            .iter()
            .any(|(_, m)| m.contains("healthy again after the restart")),
        "{:?}",
        unit.h.logs()
    );

    // The runner made before the restart holds a one-time token of the old process;
    // the restarted service still honours it, so the job runs.
    let job = sim.queue_job(REPO, &["ghr-health"], &["true"]);
    let done = sim.wait_job(job, "completed", SETTLE);
    assert_eq!(
        done["conclusion"],
        json!("success"),
        "{done}\npolicy: {}",
        lab.policy.log_text()
    );

    // Healthy again: the next reconcile restarts nothing.
    unit.h.clear_calls();
    unit.run("reconcile-runners");
    assert_eq!(restarts(&unit), 0);
}
