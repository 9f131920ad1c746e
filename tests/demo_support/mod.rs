//! The demo's second part, runners on demand: a unit keeps a warm pool and registers a
//! runner scale set; a burst of jobs makes its pool grow to the maximum and shrink back
//! to the warm pool, printed as a timeline of its runners; then what its manager's
//! metrics endpoint says about it ([`metrics`]).

mod metrics;
#[path = "../bench_support/pool_watch.rs"]
mod pool_watch;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::firewall_support::Lxd;
use crate::lab::{each_once, Sim, Unit};

const REPO: &str = "acme/widgets";
const APP: &str = "github-runner-burst";
const WARM: usize = 2;
const MAX: usize = 5;
const JOBS: usize = 8;

/// One line of the timeline: what changed is printed, with the time since the burst.
#[derive(PartialEq)]
struct Moment {
    runners: usize,
    busy: usize,
    waiting: usize,
    jobs: [usize; 3],
}

impl Moment {
    fn print(&self, t: f64) {
        let [queued, running, done] = self.jobs;
        println!(
            "   {t:>6.1}s  {:<width$}  {:>2} runners ({} busy, {} idle)   jobs: {queued} waiting, {running} running, {done} done",
            "#".repeat(self.runners),
            self.runners,
            self.busy,
            self.waiting,
            width = MAX + 1,
        );
    }
}

/// Jobs waiting (queued or assigned), running, completed.
fn job_counts(sim: &Sim, jobs: &[u64]) -> [usize; 3] {
    let mut counts = [0; 3];
    for id in jobs {
        match sim.job(*id)["state"].as_str() {
            Some("in_progress") => counts[1] += 1,
            Some("completed") => counts[2] += 1,
            _ => counts[0] += 1,
        }
    }
    counts
}

/// The on-demand part; `charm_token` is the machine's, which the policy service that
/// checks every job before it runs holds.
pub fn on_demand(lxd: &Lxd, sim: &Sim, charm_token: &[u8]) {
    println!(
        "\n== on demand: max-total-virtual-machines={MAX}, virtual-machines={WARM} (kept warm)"
    );
    let config = json!({"path": REPO, "virtual-machines": WARM, "max-total-virtual-machines": MAX});
    let unit = Unit::new(lxd, APP, 0, sim, config);
    std::fs::write(unit.state().join("charm-token"), charm_token).unwrap();
    let t = Instant::now();
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, WARM, Duration::from_secs(180));
    let sets = sim.get("/_sim/scalesets");
    let set = sets
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == format!("{APP}-0"));
    let set = set.unwrap_or_else(|| panic!("no scale set {APP}-0: {sets}"));
    println!(
        "   scale set {} (labels {}) listening; {WARM} warm runners online after {:.1}s",
        set["name"],
        set["labels"],
        t.elapsed().as_secs_f64()
    );
    println!("== queueing {JOBS} jobs with runs-on: {APP}\n");
    let jobs: Vec<u64> = (0..JOBS)
        .map(|i| {
            sim.queue_job(
                REPO,
                &[APP],
                &[&format!("echo job {i} on $(hostname)"), "sleep 4"],
            )
        })
        .collect();
    let peak = timeline(lxd, sim, &unit, &jobs);
    println!("\n   at most {peak} runners at once (maximum {MAX}); back to {WARM} warm runners");
    check(sim, &unit, &jobs, peak);
    metrics::show(&unit, JOBS);
}

/// Prints the pool whenever it changes, until every job is done and the pool is back
/// to the warm runners alone; the most runners alive at once.
fn timeline(lxd: &Lxd, sim: &Sim, unit: &Unit, jobs: &[u64]) -> usize {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(900);
    let mut last: Option<Moment> = None;
    let mut peak = 0;
    loop {
        let s = pool_watch::sample(lxd, sim, &unit.prefix);
        let now = Moment {
            runners: s.live,
            busy: s.busy,
            waiting: s.waiting,
            jobs: job_counts(sim, jobs),
        };
        peak = peak.max(s.live);
        if last.as_ref() != Some(&now) {
            now.print(start.elapsed().as_secs_f64());
        }
        let rested = now.jobs[2] == jobs.len() && s.instances == WARM && s.waiting == WARM;
        if rested {
            return peak;
        }
        last = Some(now);
        assert!(
            Instant::now() < deadline,
            "the burst did not end within 900 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every job succeeded on a runner of its own, the pool grew but within the maximum.
fn check(sim: &Sim, unit: &Unit, jobs: &[u64], peak: usize) {
    let done: Vec<Value> = jobs.iter().map(|id| sim.job(*id)).collect();
    each_once(&done, &[&unit.prefix]);
    assert!(peak <= MAX, "{peak} runners, the maximum is {MAX}");
    assert!(peak > WARM, "the pool never grew");
    let pickups: Vec<f64> = done
        .iter()
        .map(|j| pool_watch::between(j, "queued_at", "started_at"))
        .collect();
    // The status as the next update-status shows it (the last hook's is from before).
    unit.run("hooks/update-status");
    println!(
        "   queued to started: median {:.1}s, slowest {:.1}s; status: {:?}",
        pool_watch::percentile(&pickups, 50.0),
        pool_watch::percentile(&pickups, 100.0),
        unit.h.last_status().unwrap()
    );
}
