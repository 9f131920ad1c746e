//! The runners' lifecycle as the manager's looks see it: from one reconcile's report
//! to the next, which runners were created, came online, took a job, finished it or
//! were removed. Pure: the caller hands in the report and the time of the look.

use std::collections::HashMap;

use ghr_metrics::events::Event;
use ghr_types::RunnerName;
use reconcile::execute::Report;
use reconcile::plan::{LiveState, Reason};

/// What changed since the last look.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub events: Vec<Event>,
    /// Create-to-online times of the runners first seen online.
    pub spawned: Vec<f64>,
    pub jobs_started: u64,
    pub jobs_completed: u64,
    /// Idle runners times the seconds since the last look (they were idle then).
    pub idle_runner_seconds: f64,
}

#[derive(Default)]
pub struct Lifecycle {
    known: HashMap<RunnerName, LiveState>,
    /// When the last look was, in seconds on the caller's monotonic clock, and how
    /// many runners were idle then.
    last: Option<(f64, u32)>,
}

impl Lifecycle {
    /// The changes `report` shows, seen at `now` (seconds, monotonic). `result_of`
    /// gives a finished runner's job result when GitHub told it (on demand).
    pub fn look(
        &mut self,
        report: &Report,
        now: f64,
        mut result_of: impl FnMut(&RunnerName) -> Option<String>,
    ) -> Changes {
        let mut out = Changes::default();
        if let Some((then, idle)) = self.last {
            out.idle_runner_seconds = f64::from(idle) * (now - then).max(0.0);
        }
        self.last = Some((now, report.idle));
        for name in &report.created {
            out.events.push(Event::Created {
                runner: name.to_string(),
            });
        }
        for runner in &report.live {
            let before = self.known.get(&runner.name).copied();
            let up = matches!(runner.state, LiveState::Idle | LiveState::Busy);
            if up && matches!(before, None | Some(LiveState::Starting)) && runner.age_secs > 0 {
                let spawn = runner.age_secs as f64;
                out.spawned.push(spawn);
                out.events.push(Event::Online {
                    runner: runner.name.to_string(),
                    spawn_seconds: spawn,
                });
            }
            if runner.state == LiveState::Busy && before != Some(LiveState::Busy) {
                out.job_started(&runner.name);
            }
        }
        for (name, reason) in &report.removed_runners {
            let before = self.known.remove(name);
            // An ephemeral runner's instance stops only after its one job: one that
            // was up and ended ran a job, perhaps wholly between two looks.
            if *reason == Reason::Ended && matches!(before, Some(LiveState::Idle | LiveState::Busy))
            {
                if before == Some(LiveState::Idle) {
                    out.job_started(name);
                }
                out.jobs_completed += 1;
                out.events.push(Event::JobCompleted {
                    runner: name.to_string(),
                    result: result_of(name).unwrap_or_else(|| "unknown".into()),
                    duration_seconds: None,
                });
            }
            out.events.push(Event::Removed {
                runner: name.to_string(),
                reason: reason.as_str().to_string(),
            });
        }
        self.known = report
            .live
            .iter()
            .map(|r| (r.name.clone(), r.state))
            .collect();
        out
    }
}

impl Changes {
    fn job_started(&mut self, name: &RunnerName) {
        self.jobs_started += 1;
        self.events.push(Event::JobStarted {
            runner: name.to_string(),
            pickup_seconds: None,
        });
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
