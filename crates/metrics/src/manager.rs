//! The runner manager's families: the pool, its changes and their timings, GitHub's and
//! LXD's calls, GitHub's rate limit and the scale set's statistics.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::labels::{Cause, Outcome, Reason, Route, RouteError, State, Word};
use crate::PREFIX;

/// A live runner's state as the last reconcile saw it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum RunnerState {
    Idle,
    Busy,
    Starting,
    /// Registered, but GitHub lists it offline.
    Offline,
}

impl RunnerState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerState::Idle => "idle",
            RunnerState::Busy => "busy",
            RunnerState::Starting => "starting",
            RunnerState::Offline => "offline",
        }
    }
}

/// Why a runner is removed: the engine's reasons (`reconcile::plan::Reason::as_str`).
pub const REMOVAL_REASONS: [&str; 7] = [
    "ended",
    "no-instance",
    "no-registration",
    "offline",
    "surplus",
    "aged",
    "flushed",
];

/// Which step of a runner's creation failed (`reconcile::execute::Report`).
pub const CREATION_FAILURE_CAUSES: [&str; 2] = ["registration", "instance"];

/// The scale set's statistics as GitHub last reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScaleSetFigures {
    pub available_jobs: u64,
    pub acquired_jobs: u64,
    pub assigned_jobs: u64,
    pub running_jobs: u64,
    pub idle_runners: u64,
    pub busy_runners: u64,
    pub registered_runners: u64,
}

pub struct ManagerMetrics {
    registry: Registry,
    runners: Family<State, Gauge>,
    max_runners: Family<Word, Gauge>,
    created: Counter,
    removed: Family<Reason, Counter>,
    creation_failures: Family<Cause, Counter>,
    spawn: Histogram,
    pickup: Histogram,
    job_duration: Histogram,
    reconcile: Histogram,
    reconciles: Family<Outcome, Counter>,
    jobs_started: Counter,
    jobs_completed: Counter,
    idle_seconds: Counter<f64, AtomicU64>,
    pub(crate) github_calls: Family<Route, Counter>,
    pub(crate) github_errors: Family<RouteError, Counter>,
    pub(crate) rate_limit: Family<Word, Gauge>,
    pub(crate) rate_limit_reset: Gauge,
    pub(crate) lxd_calls: Family<Route, Counter>,
    pub(crate) lxd_errors: Family<RouteError, Counter>,
    scale_set_jobs: Family<State, Gauge>,
    scale_set_runners: Family<State, Gauge>,
    messages: Counter,
}

fn buckets(bounds: &[f64]) -> Histogram {
    Histogram::new(bounds.iter().copied())
}

const SPAWN: [f64; 10] = [2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 90.0, 120.0, 300.0, 600.0];
const PICKUP: [f64; 12] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0,
];
const JOB: [f64; 10] = [
    10.0, 30.0, 60.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 21600.0,
];
const RECONCILE: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

impl Default for ManagerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ManagerMetrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix(PREFIX);
        let m = ManagerMetrics {
            runners: Family::default(),
            max_runners: Family::default(),
            created: Counter::default(),
            removed: Family::default(),
            creation_failures: Family::default(),
            spawn: buckets(&SPAWN),
            pickup: buckets(&PICKUP),
            job_duration: buckets(&JOB),
            reconcile: buckets(&RECONCILE),
            reconciles: Family::default(),
            jobs_started: Counter::default(),
            jobs_completed: Counter::default(),
            idle_seconds: Counter::default(),
            github_calls: Family::default(),
            github_errors: Family::default(),
            rate_limit: Family::default(),
            rate_limit_reset: Gauge::default(),
            lxd_calls: Family::default(),
            lxd_errors: Family::default(),
            scale_set_jobs: Family::default(),
            scale_set_runners: Family::default(),
            messages: Counter::default(),
            registry: Registry::default(),
        };
        m.register(&mut r);
        m.zero();
        ManagerMetrics { registry: r, ..m }
    }

    /// Every series of a fixed label set at zero from the start: one that appears only
    /// at its first count hides that count from `increase()` (and the alerts on it).
    fn zero(&self) {
        for reason in REMOVAL_REASONS {
            self.removed.get_or_create(&Reason { reason }).inc_by(0);
        }
        for cause in CREATION_FAILURE_CAUSES {
            self.creation_failures
                .get_or_create(&Cause { cause })
                .inc_by(0);
        }
        for outcome in ["ok", "failed"] {
            self.reconciles
                .get_or_create(&Outcome { outcome })
                .inc_by(0);
        }
        self.set_runners(&[]);
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "runners",
            "Live runners by state, as the last reconcile saw them",
            self.runners.clone(),
        );
        r.register(
            "max_runners",
            "Most runners wanted: kind=configured (config) or effective (after host capacity)",
            self.max_runners.clone(),
        );
        r.register("runners_created", "Runners created", self.created.clone());
        r.register(
            "runners_removed",
            "Runners removed, by reason",
            self.removed.clone(),
        );
        r.register(
            "runner_creation_failures",
            "Runner creations that failed, by cause",
            self.creation_failures.clone(),
        );
        let seconds = |r: &mut Registry, name: &str, help: &str, h: &Histogram| {
            r.register_with_unit(name, help, Unit::Seconds, h.clone())
        };
        seconds(
            r,
            "runner_spawn",
            "From a runner's creation to GitHub listing it online",
            &self.spawn,
        );
        seconds(
            r,
            "job_pickup",
            "From a job queued to a runner assigned, by GitHub's timestamps",
            &self.pickup,
        );
        seconds(
            r,
            "job_duration",
            "From a job's runner assigned to the job finished",
            &self.job_duration,
        );
        seconds(
            r,
            "reconcile_duration",
            "One reconcile of the pool",
            &self.reconcile,
        );
        r.register(
            "reconciles",
            "Reconciles, by outcome (ok, failed)",
            self.reconciles.clone(),
        );
        r.register(
            "jobs_started",
            "Jobs a runner of this unit started",
            self.jobs_started.clone(),
        );
        r.register(
            "jobs_completed",
            "Jobs this unit's runners finished",
            self.jobs_completed.clone(),
        );
        r.register_with_unit(
            "idle_runner",
            "Time runners spent online waiting for a job",
            Unit::Seconds,
            self.idle_seconds.clone(),
        );
        r.register(
            "github_requests",
            "GitHub API requests, by method and route template",
            self.github_calls.clone(),
        );
        r.register(
            "github_request_errors",
            "GitHub API requests that failed, by class",
            self.github_errors.clone(),
        );
        r.register(
            "github_rate_limit",
            "GitHub's rate limit at the last answer: kind=limit or remaining",
            self.rate_limit.clone(),
        );
        r.register(
            "github_rate_limit_reset_timestamp_seconds",
            "When GitHub's rate-limit window resets (Unix time)",
            self.rate_limit_reset.clone(),
        );
        r.register(
            "lxd_requests",
            "LXD API requests, by method and route template",
            self.lxd_calls.clone(),
        );
        r.register(
            "lxd_request_errors",
            "LXD API requests that failed, by class",
            self.lxd_errors.clone(),
        );
        r.register(
            "scale_set_jobs",
            "The scale set's jobs by state, as GitHub last reported",
            self.scale_set_jobs.clone(),
        );
        r.register(
            "scale_set_runners",
            "The scale set's runners by state, as GitHub last reported",
            self.scale_set_runners.clone(),
        );
        r.register(
            "scale_set_messages",
            "Messages received from the scale set's queue",
            self.messages.clone(),
        );
    }

    pub fn exposition(&self) -> String {
        crate::exposition(&self.registry)
    }

    /// The pool as a reconcile left it: every state is set, zero included, so a state
    /// that emptied does not keep its old value.
    pub fn set_runners(&self, counts: &[(RunnerState, u64)]) {
        for state in [
            RunnerState::Idle,
            RunnerState::Busy,
            RunnerState::Starting,
            RunnerState::Offline,
        ] {
            let n = counts
                .iter()
                .filter(|(s, _)| *s == state)
                .map(|(_, n)| n)
                .sum::<u64>();
            self.runners
                .get_or_create(&State {
                    state: state.as_str(),
                })
                .set(n as i64);
        }
    }

    pub fn set_max_runners(&self, configured: u64, effective: u64) {
        self.max_runners
            .get_or_create(&Word { kind: "configured" })
            .set(configured as i64);
        self.max_runners
            .get_or_create(&Word { kind: "effective" })
            .set(effective as i64);
    }

    pub fn created(&self, n: u64) {
        self.created.inc_by(n);
    }

    pub fn removed(&self, reason: &'static str, n: u64) {
        self.removed.get_or_create(&Reason { reason }).inc_by(n);
    }

    pub fn creation_failed(&self, cause: &'static str, n: u64) {
        self.creation_failures
            .get_or_create(&Cause { cause })
            .inc_by(n);
    }

    pub fn spawned(&self, seconds: f64) {
        self.spawn.observe(seconds);
    }

    pub fn picked_up(&self, seconds: f64) {
        self.pickup.observe(seconds);
    }

    pub fn job_started(&self) {
        self.jobs_started.inc();
    }

    pub fn job_completed(&self) {
        self.jobs_completed.inc();
    }

    /// A job's run time, from GitHub's timestamps.
    pub fn job_ran(&self, seconds: f64) {
        self.job_duration.observe(seconds);
    }

    pub fn reconciled(&self, ok: bool, seconds: f64) {
        let outcome = if ok { "ok" } else { "failed" };
        self.reconciles.get_or_create(&Outcome { outcome }).inc();
        self.reconcile.observe(seconds);
    }

    pub fn idle_for(&self, runner_seconds: f64) {
        if runner_seconds > 0.0 {
            self.idle_seconds.inc_by(runner_seconds);
        }
    }

    pub fn message_received(&self) {
        self.messages.inc();
    }

    pub fn clear_scale_set(&self) {
        self.scale_set_jobs.clear();
        self.scale_set_runners.clear();
    }

    pub fn set_scale_set(&self, f: &ScaleSetFigures) {
        let jobs = [
            ("available", f.available_jobs),
            ("acquired", f.acquired_jobs),
            ("assigned", f.assigned_jobs),
            ("running", f.running_jobs),
        ];
        for (state, n) in jobs {
            self.scale_set_jobs
                .get_or_create(&State { state })
                .set(n as i64);
        }
        let runners = [
            ("idle", f.idle_runners),
            ("busy", f.busy_runners),
            ("registered", f.registered_runners),
        ];
        for (state, n) in runners {
            self.scale_set_runners
                .get_or_create(&State { state })
                .set(n as i64);
        }
    }
}
