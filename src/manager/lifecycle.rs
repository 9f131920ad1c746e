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

/// What the looks so far saw of one runner.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// Listed online (idle or busy) at some look.
    up: bool,
    busy: bool,
    /// Its job is counted as completed.
    finished: bool,
}

#[derive(Default)]
pub struct Lifecycle {
    known: HashMap<RunnerName, Seen>,
    /// When the last look was, in seconds on the caller's monotonic clock, and how
    /// many runners were idle then.
    last: Option<(f64, u32)>,
}

impl Lifecycle {
    /// The changes `report` shows, seen at `now` (seconds, monotonic). `result_of`
    /// gives a finished runner's job result when GitHub told it (on demand).
    ///
    /// An ephemeral runner that was online has run its job once its registration is
    /// gone (GitHub drops it after the job: the runner reads as starting again, and may
    /// be removed as surplus while it does), its instance stopped, or the instance
    /// deleted itself: each counts the job completed once, and started too if no look
    /// caught it busy.
    pub fn look(
        &mut self,
        report: &Report,
        now: f64,
        mut result_of: impl FnMut(&RunnerName) -> Option<String>,
    ) -> Changes {
        let mut out = Changes::default();
        let Some((then, idle)) = self.last.replace((now, report.idle)) else {
            return self.baseline(report);
        };
        out.idle_runner_seconds = f64::from(idle) * (now - then).max(0.0);
        for name in &report.created {
            out.events.push(Event::Created {
                runner: name.to_string(),
            });
        }
        let mut known = HashMap::new();
        for runner in &report.live {
            let mut seen = self.known.remove(&runner.name).unwrap_or_default();
            let up = matches!(runner.state, LiveState::Idle | LiveState::Busy);
            if up && !seen.up && runner.age_secs > 0 {
                let spawn = runner.age_secs as f64;
                out.spawned.push(spawn);
                out.events.push(Event::Online {
                    runner: runner.name.to_string(),
                    spawn_seconds: spawn,
                });
            }
            seen.up |= up;
            if runner.state == LiveState::Busy && !seen.busy {
                seen.busy = true;
                out.job_started(&runner.name);
            }
            // Its registration gone, not merely offline for a moment.
            if runner.state == LiveState::Starting && !runner.registered {
                out.finish(&runner.name, &mut seen, &mut result_of);
            }
            known.insert(runner.name.clone(), seen);
        }
        for (name, reason) in &report.removed_runners {
            let mut seen = self.known.remove(name).or_else(|| known.remove(name));
            let done = *reason == Reason::Ended || report.removed_starting.contains(name);
            if let Some(seen) = seen.as_mut().filter(|_| done) {
                out.finish(name, seen, &mut result_of);
            }
            out.events.push(Event::Removed {
                runner: name.to_string(),
                reason: reason.as_str().to_string(),
            });
        }
        // Still there after a removal that failed: as the last look saw it.
        for name in &report.remove_failed {
            if let Some(seen) = self.known.remove(name) {
                known.insert(name.clone(), seen);
            }
        }
        // Neither live nor removed: the instance deleted itself.
        for (name, mut seen) in std::mem::take(&mut self.known) {
            out.finish(&name, &mut seen, &mut result_of);
        }
        self.known = known;
        out
    }
}

impl Lifecycle {
    /// The first look (the manager just started): runners already up are taken as
    /// they are, without events or spawn times, which their whole age would distort.
    fn baseline(&mut self, report: &Report) -> Changes {
        self.known = report
            .live
            .iter()
            .map(|r| {
                let busy = r.state == LiveState::Busy;
                let seen = Seen {
                    up: busy || r.state == LiveState::Idle,
                    busy,
                    finished: false,
                };
                (r.name.clone(), seen)
            })
            .collect();
        let created = report.created.iter().map(|name| Event::Created {
            runner: name.to_string(),
        });
        let removed = report
            .removed_runners
            .iter()
            .map(|(name, reason)| Event::Removed {
                runner: name.to_string(),
                reason: reason.as_str().to_string(),
            });
        Changes {
            events: created.chain(removed).collect(),
            ..Changes::default()
        }
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

    /// Counts the job of a runner that was online and is now done with it, once.
    fn finish(
        &mut self,
        name: &RunnerName,
        seen: &mut Seen,
        result_of: &mut impl FnMut(&RunnerName) -> Option<String>,
    ) {
        if !seen.up || seen.finished {
            return;
        }
        if !seen.busy {
            seen.busy = true;
            self.job_started(name);
        }
        seen.finished = true;
        self.jobs_completed += 1;
        self.events.push(Event::JobCompleted {
            runner: name.to_string(),
            result: result_of(name).unwrap_or_else(|| "unknown".into()),
            duration_seconds: None,
        });
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
