//! What the manager tells operators about its pool: the Prometheus families
//! (`ghr_metrics::ManagerMetrics`), the lifecycle log, and the last hour's pickup and
//! idle figures that check-runners returns. Fed by the worker's reconciles and the
//! listener's messages; it never asks GitHub or LXD anything itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ghr_metrics::events::EventLog;
use ghr_metrics::{ManagerMetrics, RunnerState, ScaleSetFigures};
use github_client::scaleset::{JobEvent, Message, Statistics};
use reconcile::execute::Report;

use super::lifecycle::Lifecycle;

/// How far back check-runners' figures reach.
const WINDOW: Duration = Duration::from_secs(3600);
/// Lifecycle log size before it turns over, and how many old ones stay.
const LOG_BYTES: u64 = 10 << 20;
const LOG_KEEP: usize = 3;

pub struct Observatory {
    pub metrics: Arc<ManagerMetrics>,
    events: EventLog,
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    lifecycle: Lifecycle,
    pickups: VecDeque<(Instant, f64)>,
    idle: VecDeque<(Instant, f64)>,
    /// Job results GitHub reported, by runner name, until the runner's removal.
    results: HashMap<String, String>,
}

impl Observatory {
    pub fn new(metrics: Arc<ManagerMetrics>, log: std::path::PathBuf, unit: &str) -> Self {
        Observatory {
            metrics,
            events: EventLog::new(log, unit, LOG_BYTES, LOG_KEEP),
            started: Instant::now(),
            inner: Mutex::default(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reconcile's report (`ok`: the reconcile then succeeded), and the most runners
    /// the config and the host allow.
    pub fn reconciled(&self, report: &Report, ok: bool, configured: u32, effective: u32) {
        let m = &self.metrics;
        m.reconciled(ok, report.duration.as_secs_f64());
        // A failed reconcile never learnt what the host holds.
        if ok {
            m.set_max_runners(configured.into(), effective.into());
        }
        m.set_runners(&[
            (RunnerState::Idle, report.idle.into()),
            (RunnerState::Busy, report.busy.into()),
            (RunnerState::Starting, report.starting.into()),
            (RunnerState::Offline, report.offline.into()),
        ]);
        m.created(report.created.len() as u64);
        for (reason, n) in &report.removed {
            m.removed(reason.as_str(), (*n).into());
        }
        for (stage, n) in &report.creation_failures {
            m.creation_failed(stage, (*n).into());
        }
        let now = Instant::now();
        let mut inner = self.inner();
        let inner = &mut *inner;
        let at = now.duration_since(self.started).as_secs_f64();
        let results = &mut inner.results;
        let changes = inner
            .lifecycle
            .look(report, at, |name| results.remove(name.as_str()));
        for spawn in &changes.spawned {
            m.spawned(*spawn);
        }
        (0..changes.jobs_started).for_each(|_| m.job_started());
        (0..changes.jobs_completed).for_each(|_| m.job_completed());
        m.idle_for(changes.idle_runner_seconds);
        // A result whose runner went without a look catching its end is no use.
        inner
            .results
            .retain(|name, _| report.live.iter().any(|r| r.name.as_str() == name));
        push(&mut inner.idle, now, changes.idle_runner_seconds);
        for event in &changes.events {
            self.events.record(event);
        }
    }

    /// A fixed pool has no scale set: its last figures must not linger (and alert).
    pub fn no_scale_set(&self) {
        self.metrics.clear_scale_set();
    }

    pub fn reconcile_failed(&self, seconds: f64) {
        self.metrics.reconciled(false, seconds);
    }

    /// A message from the scale set's queue: its statistics and GitHub's timestamps.
    pub fn message(&self, message: &Message) {
        self.metrics.message_received();
        if let Some(s) = &message.statistics {
            self.metrics.set_scale_set(&figures(s));
        }
        let now = Instant::now();
        let mut inner = self.inner();
        for (job, times) in message.jobs.iter().zip(&message.times) {
            match job {
                JobEvent::Started { .. } => {
                    if let Some(pickup) = times.pickup_seconds() {
                        self.metrics.picked_up(pickup);
                        push(&mut inner.pickups, now, pickup);
                    }
                }
                JobEvent::Completed {
                    runner_name,
                    result,
                    ..
                } => {
                    if let Some(run) = times.run_seconds() {
                        self.metrics.job_ran(run);
                    }
                    inner.results.insert(runner_name.clone(), result.clone());
                }
                _ => {}
            }
        }
    }

    /// check-runners' figures over the last hour.
    pub fn figures(&self) -> Vec<(String, String)> {
        let mut inner = self.inner();
        let now = Instant::now();
        trim(&mut inner.pickups, now);
        trim(&mut inner.idle, now);
        let mut pickups: Vec<f64> = inner.pickups.iter().map(|(_, s)| *s).collect();
        pickups.sort_by(f64::total_cmp);
        let idle: f64 = inner.idle.iter().map(|(_, s)| s).sum();
        let mut out = vec![(
            "pickup-samples-last-hour".to_string(),
            pickups.len().to_string(),
        )];
        for (key, q) in [("p50", 0.5), ("p95", 0.95)] {
            let value = quantile(&pickups, q).map_or_else(|| "none".into(), |s| format!("{s:.2}"));
            out.push((format!("pickup-{key}-seconds-last-hour"), value));
        }
        out.push((
            "idle-runner-seconds-last-hour".to_string(),
            format!("{idle:.0}"),
        ));
        out
    }
}

fn figures(s: &Statistics) -> ScaleSetFigures {
    ScaleSetFigures {
        available_jobs: s.available,
        acquired_jobs: s.acquired,
        assigned_jobs: s.assigned,
        running_jobs: s.running,
        idle_runners: s.idle_runners,
        busy_runners: s.busy_runners,
        registered_runners: s.registered_runners,
    }
}

fn push(window: &mut VecDeque<(Instant, f64)>, now: Instant, value: f64) {
    window.push_back((now, value));
    trim(window, now);
}

fn trim(window: &mut VecDeque<(Instant, f64)>, now: Instant) {
    while window
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
    {
        window.pop_front();
    }
}

/// The nearest-rank quantile of sorted `values`.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics' fixed label sets name every reason and step the engine reports.
    #[test]
    fn every_removal_reason_and_failed_step_has_its_series() {
        use reconcile::plan::Reason::*;
        for reason in [
            Ended,
            NoInstance,
            NoRegistration,
            Offline,
            Surplus,
            Aged,
            Flushed,
        ] {
            // A new variant fails to compile here until it is listed.
            match reason {
                Ended | NoInstance | NoRegistration | Offline | Surplus | Aged | Flushed => {}
            }
            assert!(
                ghr_metrics::REMOVAL_REASONS.contains(&reason.as_str()),
                "{reason:?}"
            );
        }
        assert_eq!(ghr_metrics::REMOVAL_REASONS.len(), 7);
        assert_eq!(
            ghr_metrics::CREATION_FAILURE_CAUSES,
            ["registration", "instance"],
            "the stages reconcile::execute names"
        );
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(10.0));
        assert_eq!(quantile(&v, 0.95), Some(19.0));
        assert_eq!(quantile(&[3.0], 0.95), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
