//! Runners on demand between bursts: how fast a job reaches a warm runner, and what a
//! unit on demand costs while nothing happens (GitHub requests by route, LXD writes).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::json;

use super::median;
use super::pool_watch::{between, lxd_writes};
use crate::firewall_support::{poll, Lxd};
use crate::lab::forks::{marker_exists, marker_step};
use crate::lab::{Sim, Unit};
use crate::REPO;

/// Generous: a slow machine measures a slow return to rest rather than failing.
const SETTLE: Duration = Duration::from_secs(420);

/// A unit on demand with a warm pool of 2 (at most 4), at rest.
pub fn warm_unit(lxd: &Lxd, sim: &Sim) -> Unit {
    let config = json!({"path": REPO, "virtual-machines": 2, "max-total-virtual-machines": 4});
    let unit = Unit::new(lxd, "ghr-bwarm", 0, sim, config);
    unit.run("hooks/config-changed");
    at_rest(&unit, sim);
    unit
}

/// 2 runners online and idle, and no other instance (a used one is deleted).
fn at_rest(unit: &Unit, sim: &Sim) {
    unit.wait_pool(sim, 2, SETTLE);
    poll(SETTLE, "the pool at rest", || {
        (unit.instances().len() == 2).then_some(())
    });
}

/// `rounds` jobs, one at a time, each to a warm runner of `unit`.
pub fn warm_pickup(out: &mut String, unit: &Unit, sim: &Sim, rounds: usize) {
    writeln!(out, "## Runners on demand: a job at a warm runner\n").unwrap();
    writeln!(
        out,
        "A unit on demand with a warm pool of 2, one job at a time. Queued to started is \
         the simulator's timestamps (GitHub offered the job to the scale set's session, \
         the manager acquired it, the warm runner took it); queued to the step running \
         adds the pre-job policy check (the static pool's figure under \"Job pickup\"). \
         Rest: from the job's end until the pool is 2 idle runners and no other instance \
         (the manager starts the replacement as soon as the job is assigned).\n"
    )
    .unwrap();
    writeln!(
        out,
        "| round | queued -> started | queued -> step running | job end -> at rest |\n|---|---|---|---|"
    )
    .unwrap();
    let mut pickups = Vec::new();
    for round in 1..=rounds {
        let marker = format!("demand-pickup-{round}");
        let step = marker_step(sim, &marker);
        let queued = Instant::now();
        let id = sim.queue_job(REPO, &["ghr-bwarm"], &[&step]);
        let step_at = poll(Duration::from_secs(120), "the step to start", || {
            marker_exists(sim, &marker).then(|| queued.elapsed())
        });
        let job = sim.wait_job(id, "completed", Duration::from_secs(120));
        assert_eq!(job["conclusion"], "success", "{job}");
        let ended = Instant::now();
        at_rest(unit, sim);
        let started = between(&job, "queued_at", "started_at");
        pickups.push(started);
        writeln!(
            out,
            "| {round} | {:.0} ms | {:.0} ms | {:.2} s |",
            started * 1000.0,
            step_at.as_secs_f64() * 1000.0,
            ended.elapsed().as_secs_f64()
        )
        .unwrap();
    }
    let p50 = median(pickups);
    let verdict = if p50 < 1.0 { "met" } else { "NOT met" };
    writeln!(
        out,
        "\nMedian queued to started: {:.0} ms. Goal (the on-demand issue): under 1 s: {verdict}.\n",
        p50 * 1000.0
    )
    .unwrap();
}

/// Requests per route outside the simulator's own `/_sim/` API (the runner app's
/// traffic is under it).
fn github_routes(sim: &Sim) -> Vec<(String, u64)> {
    let counters = sim.get("/_sim/counters");
    counters
        .as_object()
        .unwrap()
        .iter()
        .filter(|(route, _)| !route.contains("/_sim/"))
        .map(|(route, n)| (route.clone(), n.as_u64().unwrap()))
        .collect()
}

/// Waits (at most a minute) until 4 s pass with no request but the long poll: the
/// last job's follow-up reconcile may run just after the pool looks at rest, and is
/// that job's cost, not the idle one's. Whether it got quiet.
fn quiet(sim: &Sim) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        reset_counters(sim);
        std::thread::sleep(Duration::from_secs(4));
        if github_routes(sim)
            .iter()
            .all(|(route, _)| route.contains("/_queue/"))
        {
            return true;
        }
    }
    false
}

fn reset_counters(sim: &Sim) {
    ureq::delete(&format!("{}/_sim/counters", sim.url))
        .call()
        .unwrap();
}

/// `unit` at rest for `window` (the simulator's long poll set to `long_poll` before the
/// unit started): GitHub requests by route and LXD writes; then one reconcile of the
/// manager's own timer.
pub fn idle_cost(
    out: &mut String,
    lxd: &Lxd,
    unit: &Unit,
    sim: &Sim,
    window: Duration,
    long_poll: u64,
) {
    at_rest(unit, sim);
    let quiet = if quiet(sim) {
        "the manager quiet: no request but the long poll for 4 s"
    } else {
        "the manager NOT quiet after a minute of waiting"
    };
    reset_counters(sim);
    let t = Instant::now();
    let writes = lxd_writes(lxd, &|| std::thread::sleep(window));
    let idle = github_routes(sim);
    let minutes = t.elapsed().as_secs_f64() / 60.0;
    reset_counters(sim);
    unit.run("reconcile-runners");
    let tick: u64 = github_routes(sim).iter().map(|(_, n)| n).sum();
    writeln!(out, "## Runners on demand: idle cost\n").unwrap();
    writeln!(
        out,
        "The unit on demand at rest (2 warm runners, no job, {quiet}) for {:.0} s, the \
         scale-set queue's long poll at {long_poll} s (GitHub's is about 50 s). Requests to GitHub \
         by route (the simulator's counters; the runner app's own traffic excluded); LXD \
         requests other than GET from the daemon's debug log.\n",
        t.elapsed().as_secs_f64()
    )
    .unwrap();
    writeln!(out, "| route | requests | per minute |\n|---|---|---|").unwrap();
    for (route, n) in &idle {
        writeln!(out, "| `{route}` | {n} | {:.2} |", *n as f64 / minutes).unwrap();
    }
    if idle.is_empty() {
        writeln!(out, "| (none) | 0 | 0 |").unwrap();
    }
    let only_poll = idle.iter().all(|(route, _)| route.contains("/_queue/"));
    writeln!(
        out,
        "\nOnly the long poll: {}. LXD writes: {writes} (target 0). Besides, the manager \
         reconciles every `reconcile-interval` (default 10 minutes) on its own: {tick} \
         GitHub requests each (one `reconcile-runners`, measured just after).\n",
        if only_poll { "yes" } else { "no" }
    )
    .unwrap();
}
