//! Runners on demand on the real LXD test daemon, against the simulator's scale-set
//! service: the unit's runner manager keeps a warm pool, adds one runner per job GitHub
//! assigns to its scale set, never holds more than the maximum, and survives being
//! killed, a dropped session and failing acquires without losing or doubling a job.

mod firewall_support;
mod harness;
mod lab;

use std::time::{Duration, Instant};

use lab::faults::assert_no_leaks;
use lab::{each_once, Sim};
use lab::{Lab, Unit};
use serde_json::{json, Value};

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(180);

/// A unit on demand: `warm` idle runners, at most `max`.
fn on_demand(lab: &Lab, app: &str, warm: u32, max: u32) -> Unit {
    // Short long polls and session timeouts: a test waits seconds, not minutes.
    lab.sim
        .post("/_sim/scalesets/long-poll", json!({"secs": 2}));
    lab.sim
        .post("/_sim/scalesets/session-timeout", json!({"secs": 10}));
    let unit = lab.unit(
        app,
        json!({"path": REPO, "virtual-machines": warm, "max-total-virtual-machines": max,
               "labels": "big"}),
    );
    unit.run("hooks/config-changed");
    unit.wait_pool(&lab.sim, warm as usize, SETTLE);
    unit
}

/// Queues `n` jobs, each `secs` long, every other one for `runs-on: labels` and the
/// rest for the first label alone.
fn burst_of(sim: &Sim, labels: &[&str], n: usize, secs: u32) -> Vec<u64> {
    let step = format!("sleep {secs}");
    (0..n)
        .map(|i| {
            let runs_on = if i % 2 == 0 { &labels[..1] } else { labels };
            sim.queue_job(REPO, runs_on, &[step.as_str()])
        })
        .collect()
}

/// Queues `n` jobs for `label`, each a second long.
fn burst(sim: &Sim, label: &str, n: usize) -> Vec<u64> {
    burst_of(sim, &[label], n, 1)
}

/// Waits for every job to complete, calling `watch` on the way; the jobs at the end.
fn served(sim: &Sim, jobs: &[u64], mut watch: impl FnMut()) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        watch();
        let all: Vec<Value> = jobs.iter().map(|id| sim.job(*id)).collect();
        if all.iter().all(|j| j["state"] == "completed") {
            return all;
        }
        assert!(Instant::now() < deadline, "jobs not served: {all:#?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The unit's runners that are alive: an instance that powered off after its job is on
/// its way out (LXD deletes it) and is no longer a runner.
fn live(unit: &Unit) -> usize {
    let out = unit.lxd.lxc(&["list", "--format", "json"]).unwrap();
    let list: Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"].as_str().unwrap_or("").starts_with(&unit.prefix))
        .filter(|i| !matches!(i["status"].as_str(), Some("Stopped" | "Stopping")))
        .count()
}

#[test]
fn a_burst_is_served_within_the_maximum_and_the_pool_returns_to_warm() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = on_demand(&lab, "ghr-od", 2, 6);
    let sets = sim.get("/_sim/scalesets");
    let set = &sets.as_array().unwrap()[0];
    assert_eq!(set["name"], "ghr-od-0", "{sets}");
    assert_eq!(set["session"]["owner"], "ghr-od/0", "{sets}");

    // Jobs long enough for the new runners to come up while the first ones run.
    // Half of them as a workflow may also say it: `runs-on: [self-hosted, app, label]`.
    let jobs = burst_of(sim, &["ghr-od", "self-hosted", "big"], 10, 5);
    let mut most = 0;
    let done = served(sim, &jobs, || most = most.max(live(&unit)));
    each_once(&done, &[&unit.prefix]);
    assert!(most <= 6, "{most} runners at once, the maximum is 6");
    assert!(
        most >= 5,
        "the pool grows to the maximum (6), not only to {most}"
    );

    // Back to the warm pool.
    unit.wait_pool(sim, 2, SETTLE);
    poll_until(SETTLE, "the pool back to 2", || unit.instances().len() == 2);
    assert_no_leaks(&unit, sim);
    unit.run("actions/check-runners");
    let results = unit.h.action_results();
    assert_eq!(
        results.get("mode").map(String::as_str),
        Some("on-demand"),
        "{results:?}"
    );
    assert_eq!(results.get("max-runners").map(String::as_str), Some("6"));
    assert_eq!(
        results.get("scale-set-assigned-jobs").map(String::as_str),
        Some("0")
    );

    // Both actions work on demand: a reconcile keeps the warm pool, a flush replaces it.
    let warm = unit.instances();
    unit.run("reconcile-runners");
    assert_eq!(unit.instances(), warm);
    unit.run("actions/flush-runners");
    poll_until(SETTLE, "a fresh warm pool", || {
        let now = unit.instances();
        now.len() == 2 && now.iter().all(|n| !warm.contains(n))
    });
    unit.wait_pool(sim, 2, SETTLE);
}

#[test]
fn a_killed_manager_a_dropped_session_and_failing_acquires_lose_no_job() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = on_demand(&lab, "ghr-odk", 1, 4);
    // More failures than one call's retries: the listener itself must try again.
    let acquire = "POST /_services/:tenant/_apis/runtime/runnerscalesets/:id/acquirejobs";
    sim.post(
        "/_sim/faults",
        json!({"route": acquire, "count": 6, "status": 503}),
    );
    // Jobs of 3 s: the listener has time to open a session again after the drop.
    let jobs = burst_of(sim, &["ghr-odk"], 8, 3);
    let (mut crashed, mut dropped, mut forgotten) = (false, false, false);
    let done = served(sim, &jobs, || {
        let started = jobs
            .iter()
            .filter(|id| !matches!(sim.job(**id)["state"].as_str(), Some("queued" | "assigned")))
            .count();
        if started >= 1 && !crashed {
            // Killed: the restarted manager takes its session back.
            crashed = true;
            unit.crash_manager();
        }
        if started >= 3 && !dropped {
            dropped = true;
            let set = sim.get("/_sim/scalesets")[0]["id"].as_u64().unwrap();
            sim.post(&format!("/_sim/scalesets/{set}/drop-session"), json!({}));
        }
        let reopened = || scale_set(sim, "ghr-odk-0").is_some_and(|s| !s["session"].is_null());
        if started >= 4 && dropped && !forgotten && reopened() {
            // Killed with its state lost: GitHub holds the old session until it times
            // out (409), and its jobs then go back to the queue.
            forgotten = true;
            let _ = std::fs::remove_file(unit.state().join("listener.json"));
            unit.crash_manager();
        }
    });
    assert!(crashed && dropped && forgotten);
    each_once(&done, &[&unit.prefix]);
    let logs = unit.h.logs();
    for want in ["acquiring jobs", "took session", "still open"] {
        assert!(
            logs.iter().any(|(_, m)| m.contains(want)),
            "{want}: {logs:#?}"
        );
    }
    unit.wait_pool(sim, 1, SETTLE);
    poll_until(SETTLE, "the pool back to 1", || unit.instances().len() == 1);
    assert_no_leaks(&unit, sim);
}

#[test]
fn two_units_share_a_burst_and_no_job_runs_twice() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let first = on_demand(&lab, "ghr-odt", 1, 3);
    let second = Unit::new(
        &lab.lxd,
        "ghr-odt",
        1,
        sim,
        json!({"path": REPO, "virtual-machines": 1, "max-total-virtual-machines": 3}),
    );
    second.run("hooks/config-changed");
    second.wait_pool(sim, 1, SETTLE);
    let jobs = burst(sim, "ghr-odt", 8);
    // The second unit stops (as before its removal) in the middle of the burst, once a
    // job of its own started: no job is lost, none runs twice.
    let mut stopped = false;
    let done = served(sim, &jobs, || {
        let its_own = jobs.iter().any(|id| {
            let job = sim.job(*id);
            job["state"] == "in_progress"
                && job["runner_name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(&second.prefix)
        });
        if its_own && !stopped {
            stopped = true;
            second.run("hooks/stop");
            // Closed by the stop, not left to time out: its unstarted jobs return now.
            assert_session_closed(sim, "ghr-odt-1");
        }
    });
    assert!(stopped);
    each_once(&done, &[&first.prefix, &second.prefix]);
    for unit in [&first, &second] {
        let here = done
            .iter()
            .filter(|j| j["runner_name"].as_str().unwrap().starts_with(&unit.prefix))
            .count();
        assert!(here > 0, "{} served none of the burst", unit.prefix);
    }
    // Its busy runner finished its job; then remove takes the unit's things away.
    poll_until(SETTLE, "the stopped unit's runners gone", || {
        second.instances().is_empty()
    });
    // Still closed after the burst: nothing opened it again.
    assert_session_closed(sim, "ghr-odt-1");
    second.run("hooks/remove");
    assert_eq!(scale_set(sim, "ghr-odt-1"), None, "removed with the unit");
    first.wait_pool(sim, 1, SETTLE);
    poll_until(SETTLE, "the first pool back to 1", || {
        first.instances().len() == 1
    });
    assert_no_leaks(&first, sim);
}

#[test]
fn a_maximum_above_what_memory_holds_is_capped_and_said() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.unit("ghr-odc", json!({"path": REPO}));
    // 6 GiB: after the 1 GiB reserve, five runners of 1 GiB memory + 1 GiB disk hold 2.
    lab::write_meminfo(unit.root(), 6 << 30);
    lab.sim
        .post("/_sim/scalesets/long-poll", json!({"secs": 2}));
    unit.configure(
        sim,
        json!({"path": REPO, "virtual-machines": 1, "max-total-virtual-machines": 5}),
    );
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 1, SETTLE);
    let jobs = burst(sim, "ghr-odc", 4);
    let mut most = 0;
    let done = served(sim, &jobs, || most = most.max(live(&unit)));
    each_once(&done, &[&unit.prefix]);
    assert!(most <= 2, "{most} runners beside a memory that holds 2");
    // GitHub is told so: the polls' X-ScaleSetMaxCapacity is what memory holds.
    let sets = sim.get("/_sim/scalesets");
    assert_eq!(sets[0]["session"]["max_capacity"], json!(2), "{sets}");
    let (_, status) = unit.h.last_status().unwrap();
    assert!(
        status.contains("at most 2 runners (host capacity"),
        "{status}"
    );
    unit.run("actions/check-runners");
    let results = unit.h.action_results();
    assert_eq!(
        results.get("effective-max-runners").map(String::as_str),
        Some("2"),
        "{results:?}"
    );
    assert_eq!(
        results.get("limited-by").map(String::as_str),
        Some("host-capacity")
    );
}

#[test]
fn a_unit_that_goes_back_to_a_fixed_pool_deletes_its_scale_set() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    lab.sim
        .post("/_sim/scalesets/long-poll", json!({"secs": 2}));
    let mut unit = lab.unit(
        "ghr-ods",
        json!({"path": REPO, "virtual-machines": 1, "max-total-virtual-machines": 3}),
    );
    // The set's runners lose their registration with it; an instance without one is
    // replaced once a new runner's grace has passed (shortened here).
    unit.h
        .extra_env
        .insert("GITHUB_RUNNER_TEST_GRACE".into(), "20".into());
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 1, SETTLE);
    let sets = || sim.get("/_sim/scalesets").as_array().unwrap().len();
    assert_eq!(sets(), 1);
    // A job runs on a runner of the set when the unit leaves it (the manager is told by
    // config-changed): the set stays until the job is done, and a manager restarted in
    // between still deletes it then.
    let busy = burst_of(sim, &["ghr-ods"], 1, 45)[0];
    poll_until(SETTLE, "the job running", || {
        sim.job(busy)["state"] == "in_progress"
    });
    unit.configure(sim, json!({"path": REPO, "virtual-machines": 2}));
    unit.run("hooks/config-changed");
    assert_eq!(sets(), 1, "kept while one of its runners is busy");
    unit.crash_manager();
    // Restarted, it still knows the set and keeps it while the job runs; a reconcile
    // wakes its worker, which looks again once the set's pause since the last try is
    // over.
    unit.run("reconcile-runners");
    assert_eq!(
        sim.job(busy)["state"],
        "in_progress",
        "the job outlasts the check"
    );
    assert_eq!(sets(), 1, "kept after the restart while its runner is busy");
    poll_until(SETTLE, "the scale set deleted", || {
        unit.run("reconcile-runners");
        sets() == 0
    });
    assert_eq!(
        sim.job(busy)["state"],
        "completed",
        "deleted once its job was done"
    );
    let done = sim.wait_job(busy, "completed", SETTLE);
    each_once(&[done], &[&unit.prefix]);
    // Its jobs go to the fixed pool's runners now (the timer's reconciles refill it).
    let refilled = || {
        poll_until(SETTLE, "a fixed pool of 2", || {
            unit.run("reconcile-runners");
            sim.online_idle(&unit.prefix) == 2 && unit.instances().len() == 2
        })
    };
    refilled();
    let job = burst(sim, "ghr-ods", 1)[0];
    let done = sim.wait_job(job, "completed", SETTLE);
    each_once(&[done], &[&unit.prefix]);
    refilled();
    assert_no_leaks(&unit, sim);
}

#[test]
fn a_github_without_scale_sets_blocks_naming_the_option_and_a_fixed_pool_still_works() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    // An older GitHub Enterprise Server: the Actions service has no scale sets.
    let route = "GET /_services/:tenant/_apis/runtime/runnergroups/";
    sim.post(
        "/_sim/faults",
        json!({"route": route, "count": 1000, "status": 404}),
    );
    let unit = lab.unit(
        "ghr-odg",
        json!({"path": REPO, "virtual-machines": 1, "max-total-virtual-machines": 3}),
    );
    unit.run("hooks/config-changed");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(
        message.contains("max-total-virtual-machines") && message.contains("scale-set API"),
        "{message}"
    );
    assert!(unit.instances().is_empty());

    unit.configure(sim, json!({"path": REPO, "virtual-machines": 1}));
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 1, SETTLE);
    assert_eq!(unit.h.last_status().unwrap().0, "active");
}

/// The simulator's view of the scale set named `name`, if there is one.
fn scale_set(sim: &Sim, name: &str) -> Option<Value> {
    let sets = sim.get("/_sim/scalesets");
    sets.as_array()?.iter().find(|s| s["name"] == name).cloned()
}

/// Scale set `name` is there, with no session open.
fn assert_session_closed(sim: &Sim, name: &str) {
    let set = scale_set(sim, name).unwrap_or_else(|| panic!("no scale set {name}"));
    assert_eq!(set["session"], Value::Null, "{set}");
}

fn poll_until(timeout: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
