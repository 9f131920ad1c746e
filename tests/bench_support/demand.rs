//! The burst benchmark of runners on demand: the same burst of short jobs served by a
//! static pool and by a unit on demand (a warm pool plus one runner per assigned job,
//! up to a maximum), measured in the same run: pickup times from the simulator's
//! timestamps, and the runner-seconds each mode spent, idle and in total.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::pool_watch::{between, percentile, usage, watch_burst, Usage};
use crate::firewall_support::Lxd;
use crate::lab::{each_once, Sim, Unit};
use crate::REPO;

const SETTLE: Duration = Duration::from_secs(300);
/// The static pool's timer at its best: a reconcile this often (the charm's shortest
/// `reconcile-interval` is a minute).
const STATIC_TICK: Duration = Duration::from_secs(2);

/// The burst's sizes.
#[derive(Clone, Copy)]
pub struct Burst {
    pub jobs: usize,
    /// Each job's one step: `sleep` this long.
    pub job_secs: u32,
    /// On demand: the warm pool.
    pub warm: u32,
    /// On demand: the maximum; the static pool has as many runners.
    pub max: u32,
}

impl Burst {
    pub const FULL: Burst = Burst {
        jobs: 12,
        job_secs: 5,
        warm: 2,
        max: 8,
    };
    /// CI's quick mode: every step of the full one, small.
    pub const QUICK: Burst = Burst {
        jobs: 3,
        job_secs: 2,
        warm: 1,
        max: 2,
    };
}

/// What one mode did with the burst.
struct Served {
    mode: String,
    /// Queued to started, per job, in seconds.
    pickups: Vec<f64>,
    usage: Usage,
    /// Runners the pool held at rest, all online and waiting, before and after.
    rest: usize,
}

impl Served {
    /// Idle runner-seconds of an hour that holds this one burst: the burst's window as
    /// measured, the rest of the hour at rest (every resting runner waiting).
    fn hour_idle(&self) -> f64 {
        let rest_secs = (3600.0 - self.usage.window.as_secs_f64()).max(0.0);
        self.usage.idle() + rest_secs * self.rest as f64
    }
}

/// A unit whose pool is at rest with `rest` idle runners after config-changed.
fn settled(lxd: &Lxd, sim: &Sim, app: &str, config: Value, rest: usize) -> Unit {
    let unit = Unit::new(lxd, app, 0, sim, config);
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, rest, SETTLE);
    crate::firewall_support::poll(SETTLE, "the pool at rest", || {
        (unit.instances().len() == rest).then_some(())
    });
    unit
}

/// Queues the burst for `app`'s runners, watches it to the end, checks each job ran
/// once and succeeded.
fn serve(
    lxd: &Lxd,
    sim: &Sim,
    unit: &Unit,
    app: &str,
    b: Burst,
    rest: usize,
    tick: impl FnMut(),
) -> (Vec<f64>, Usage) {
    let step = format!("sleep {}", b.job_secs);
    let jobs: Vec<u64> = (0..b.jobs)
        .map(|_| sim.queue_job(REPO, &[app], &[&step]))
        .collect();
    let samples = watch_burst(lxd, sim, &unit.prefix, &jobs, rest, tick);
    let done: Vec<Value> = jobs.iter().map(|id| sim.job(*id)).collect();
    each_once(&done, &[&unit.prefix]);
    let pickups = done
        .iter()
        .map(|j| between(j, "queued_at", "started_at"))
        .collect();
    (pickups, usage(&samples))
}

/// The static pool of `max` runners, its timer's reconcile every [`STATIC_TICK`]
/// (started without waiting, one at a time).
fn static_pool(lxd: &Lxd, sim: &Sim, b: Burst) -> Served {
    let app = "ghr-bstatic";
    let n = b.max as usize;
    let unit = settled(
        lxd,
        sim,
        app,
        json!({"path": REPO, "virtual-machines": b.max}),
        n,
    );
    let mut timer: Option<std::process::Child> = None;
    let mut last = Instant::now();
    let tick = || {
        let running = timer
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none());
        if !running && last.elapsed() >= STATIC_TICK {
            timer = Some(unit.h.spawn("reconcile-runners"));
            last = Instant::now();
        }
    };
    let (pickups, usage) = serve(lxd, sim, &unit, app, b, n, tick);
    if let Some(mut child) = timer {
        child.wait().unwrap();
    }
    Served {
        mode: format!("static pool of {}", b.max),
        pickups,
        usage,
        rest: n,
    }
}

/// The unit on demand: `warm` idle runners, at most `max`.
fn on_demand(lxd: &Lxd, sim: &Sim, b: Burst) -> Served {
    let app = "ghr-bdemand";
    let config =
        json!({"path": REPO, "virtual-machines": b.warm, "max-total-virtual-machines": b.max});
    let unit = settled(lxd, sim, app, config, b.warm as usize);
    let (pickups, usage) = serve(lxd, sim, &unit, app, b, b.warm as usize, || {});
    assert!(
        usage.peak <= b.max as usize,
        "{} runners, the maximum is {}",
        usage.peak,
        b.max
    );
    Served {
        mode: format!("on demand, warm {}, max {}", b.warm, b.max),
        pickups,
        usage,
        rest: b.warm as usize,
    }
}

/// Measures the burst on both modes, the static pool first, and writes the section.
pub fn burst(out: &mut String, lxd: &Lxd, sim: &Sim, b: Burst) {
    let fixed = static_pool(lxd, sim, b);
    let demand = on_demand(lxd, sim, b);
    writeln!(out, "## Runners on demand: a burst of {} jobs\n", b.jobs).unwrap();
    writeln!(
        out,
        "{} jobs of one step (`sleep {}`) queued at once, served by a static pool of {} \
         runners and by a unit on demand (warm pool {}, maximum {}), one after the other, \
         each from rest. Pickup is queued to started from the simulator's timestamps \
         (the runner took the job; p95 by nearest rank). The static pool's timer is at \
         its best: a reconcile every {} s (the charm's shortest interval is a minute).\n",
        b.jobs,
        b.job_secs,
        b.max,
        b.warm,
        b.max,
        STATIC_TICK.as_secs()
    )
    .unwrap();
    writeln!(
        out,
        "Runner-seconds: from the burst's queueing until the pool is back at rest (all \
         jobs done, the resting number of instances, all online and idle), the unit's \
         LXD instances (any state: a stopped one holds its RAM disk until deleted) and \
         its busy runners on the simulator are sampled about every 0.2-0.3 s, each \
         sample held until the next. Total = instance-seconds; idle = total minus \
         runner-seconds running a job, split into booting (created, not yet online), \
         waiting (online, no job) and stopped (done with its job, not yet deleted). \
         Each mode's own window: the static pool's idle seconds would keep growing at \
         its size after it.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| mode | pickup p50 | pickup p95 | idle runner-s | booting | waiting | stopped | total runner-s | busy runner-s | peak runners | window | samples |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    .unwrap();
    for s in [&fixed, &demand] {
        let u = &s.usage;
        writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.1} s | {} |",
            s.mode,
            seconds(percentile(&s.pickups, 50.0)),
            seconds(percentile(&s.pickups, 95.0)),
            u.idle(),
            u.booting(),
            u.waiting,
            u.stopped,
            u.total,
            u.busy,
            u.peak,
            u.window.as_secs_f64(),
            u.samples
        )
        .unwrap();
    }
    verdict(out, &fixed, &demand);
}

/// Seconds as a reader takes them in: milliseconds below one.
fn seconds(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    }
}

/// The goal, and whether this run met it, on each reading of "idle".
fn verdict(out: &mut String, fixed: &Served, demand: &Served) {
    let ratio = |f: &dyn Fn(&Served) -> f64| f(demand) / f(fixed);
    let idle = ratio(&|s| s.usage.idle());
    let waiting = ratio(&|s| s.usage.waiting);
    let hour = ratio(&|s| s.hour_idle());
    let p95 = ratio(&|s| percentile(&s.pickups, 95.0));
    let overhead = |s: &Served| s.usage.booting() + s.usage.stopped;
    let holds = |r: f64, goal: f64| if r <= goal { "met" } else { "not met" };
    writeln!(
        out,
        "\nGoal (the on-demand issue): on demand spends at most half the static pool's idle \
         runner-seconds, with a p95 pickup within 1.5x of the static pool's \
         ({p95:.2}x here: {}). Idle, read three ways:\n\n\
         - every instance-second not running a job, within each burst's own window: \
         {idle:.2}x ({}). Both modes boot and stop one runner per job (ephemeral): \
         booting and stopped add up to {:.0} runner-s on the static pool and {:.0} on \
         demand;\n\
         - runner-seconds online and waiting for a job (GitHub's idle runners), same \
         windows: {waiting:.2}x ({});\n\
         - modelled, not measured: an hour holding this one burst (the window as \
         measured, the rest of the hour at rest with {} waiting runners against {}), \
         which the resting pools' sizes decide: {hour:.2}x ({}).\n",
        holds(p95, 1.5),
        holds(idle, 0.5),
        overhead(fixed),
        overhead(demand),
        holds(waiting, 0.5),
        fixed.rest,
        demand.rest,
        holds(hour, 0.5),
    )
    .unwrap();
}

/// Every on-demand measurement, in one run: the burst on both modes, a job at a warm
/// runner, the idle cost. Quick mode: each small, every step still taken. Each section
/// is printed as soon as it is measured, so a later failure keeps the figures.
pub fn all(out: &mut String, lxd: &Lxd, sim: &Sim, quick: bool) {
    let mut printed = out.len();
    let mut show = |out: &String| {
        print!("{}", &out[printed..]);
        printed = out.len();
    };
    // GitHub's long poll; quick mode's idle window is short, so is its poll.
    let long_poll = if quick { 4 } else { 50 };
    sim.post("/_sim/scalesets/long-poll", json!({"secs": long_poll}));
    burst(
        out,
        lxd,
        sim,
        if quick { Burst::QUICK } else { Burst::FULL },
    );
    show(out);
    let unit = super::demand_idle::warm_unit(lxd, sim);
    super::demand_idle::warm_pickup(out, &unit, sim, if quick { 1 } else { 7 });
    show(out);
    let window = Duration::from_secs(if quick { 10 } else { 120 });
    super::demand_idle::idle_cost(out, lxd, &unit, sim, window, long_poll);
    show(out);
}
