//! What happens to scale-set jobs and sessions, and the job messages each step puts on
//! the sessions' queues: a session opens and hears of the jobs waiting; a queued job
//! is offered to every fitting scale set with a session; the first to acquire it gets
//! it; its runner starts and completes it; a session that ends (closed, dropped by the
//! admin API, timed out) gives its unstarted jobs back to be offered again.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::messages::{self, MAX_BATCH};
use super::world::Session;
use crate::jobs::JobState;
use crate::runner_tokens::random_token;
use crate::state::World;

/// A random id in the text layout of GitHub's session ids (a UUID).
fn session_id() -> String {
    let hex = random_token(32).to_lowercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl World {
    /// Queues a job message for scale set `set_id`'s session; lost without a session,
    /// as a listener that is not there hears nothing.
    fn push(&mut self, set_id: u64, message: Value) {
        if let Some(session) = self
            .scalesets
            .sets
            .get_mut(&set_id)
            .and_then(|s| s.session.as_mut())
        {
            session.pending.push(message);
        }
    }

    /// Opens a session on scale set `set_id` (the caller checked there is none) and
    /// tells it of the queued jobs that fit.
    pub fn open_session(
        &mut self,
        set_id: u64,
        owner: String,
        service_url: String,
        now: Instant,
    ) -> Option<&Session> {
        let set = self.scalesets.sets.get_mut(&set_id)?;
        set.session = Some(Session {
            id: session_id(),
            owner,
            queue_token: random_token(40),
            token_valid: true,
            service_url: service_url.clone(),
            max_capacity: None,
            polls: 0,
            last_contact: now,
            pending: Vec::new(),
            unacked: Default::default(),
            offered: Default::default(),
        });
        self.refill(set_id);
        self.scalesets.sets.get(&set_id)?.session.as_ref()
    }

    /// Offers a queued job to every fitting scale set with a session (as far as each
    /// session's capacity allows; the others hear of it when theirs frees).
    pub fn offer_job(&mut self, job_id: u64) {
        let Some(job) = self
            .jobs
            .get(&job_id)
            .filter(|j| j.state == JobState::Queued)
        else {
            return;
        };
        let fitting: Vec<u64> = self
            .scalesets
            .sets
            .values()
            .filter(|s| s.session.is_some() && s.fits(job))
            .map(|s| s.id)
            .collect();
        fitting.into_iter().for_each(|id| self.refill(id));
    }

    /// Tells scale set `set_id`'s session of the queued jobs that fit it and that it was
    /// not told of yet, oldest first, as many as its last `X-ScaleSetMaxCapacity` leaves
    /// room for beside the jobs assigned to it and the offers it has not taken up.
    pub fn refill(&mut self, set_id: u64) {
        let Some(set) = self.scalesets.sets.get(&set_id) else {
            return;
        };
        let Some(session) = set.session.as_ref() else {
            return;
        };
        let queued = |id: &u64| {
            self.jobs
                .get(id)
                .is_some_and(|j| j.state == JobState::Queued)
        };
        let held = self
            .jobs
            .values()
            .filter(|j| j.scale_set_id == Some(set_id))
            .filter(|j| matches!(j.state, JobState::Assigned | JobState::InProgress))
            .count()
            + session.offered.iter().filter(|id| queued(id)).count();
        let room = session
            .max_capacity
            .map_or(usize::MAX, |c| c as usize)
            .saturating_sub(held);
        let new: Vec<Value> = self
            .jobs
            .values()
            .filter(|j| j.state == JobState::Queued && set.fits(j))
            .filter(|j| !session.offered.contains(&j.id))
            .take(room)
            .map(|j| messages::job_available(j, set_id, &session.service_url))
            .collect();
        let ids: Vec<u64> = new
            .iter()
            .filter_map(|m| m["runnerRequestId"].as_u64())
            .collect();
        if let Some(session) = self
            .scalesets
            .sets
            .get_mut(&set_id)
            .and_then(|s| s.session.as_mut())
        {
            session.offered.extend(ids);
            session.pending.extend(new);
        }
    }

    /// Scale set `set_id` acquires the jobs it names: a queued job that fits it is
    /// assigned to it (a JobAssigned message follows); one already assigned to it is
    /// acquired again harmlessly; any other is left out of the answer.
    pub fn acquire(
        &mut self,
        set_id: u64,
        ids: &[u64],
        owner: &str,
        now: DateTime<Utc>,
    ) -> Vec<u64> {
        let Some(set) = self.scalesets.sets.get(&set_id) else {
            return Vec::new();
        };
        let mut acquired = Vec::new();
        let mut assigned = Vec::new();
        for id in ids {
            let Some(job) = self.jobs.get_mut(id) else {
                continue;
            };
            let ours = job.scale_set_id == Some(set_id);
            match job.state {
                JobState::Queued if set.fits(job) => {
                    job.state = JobState::Assigned;
                    job.scale_set_id = Some(set_id);
                    job.acquired_by = Some(owner.to_string());
                    job.assigned_at = Some(now);
                    assigned.push(messages::job_assigned(job));
                    acquired.push(*id);
                }
                JobState::Assigned | JobState::InProgress if ours => acquired.push(*id),
                _ => {}
            }
        }
        for message in assigned {
            self.push(set_id, message);
        }
        acquired
    }

    /// A runner took job `job_id`: its scale set hears JobStarted.
    pub(crate) fn job_started(&mut self, job_id: u64) {
        let Some(job) = self.jobs.get(&job_id) else {
            return;
        };
        let Some(set_id) = job.scale_set_id else {
            return;
        };
        let runner = job.runner_id.unwrap_or_default();
        let message = messages::job_started(job, runner, job.runner_name.as_deref().unwrap_or(""));
        self.push(set_id, message);
    }

    /// Job `job_id` finished on a runner: its scale set hears JobCompleted.
    pub(crate) fn job_completed(&mut self, job_id: u64, runner_id: u64, runner_name: &str) {
        let Some(job) = self.jobs.get(&job_id) else {
            return;
        };
        let Some(set_id) = job.scale_set_id else {
            return;
        };
        let message = messages::job_completed(job, runner_id, runner_name);
        self.push(set_id, message);
        // A runner's worth of capacity is free again.
        self.refill(set_id);
    }

    /// Ends scale set `set_id`'s session: its assigned jobs that no runner started go
    /// back to the queue and are offered again. Whether there was a session.
    pub fn end_session(&mut self, set_id: u64) -> bool {
        let ended = self
            .scalesets
            .sets
            .get_mut(&set_id)
            .and_then(|s| s.session.take())
            .is_some();
        if !ended {
            return false;
        }
        let returned: Vec<u64> = self
            .jobs
            .values_mut()
            .filter(|j| j.state == JobState::Assigned && j.scale_set_id == Some(set_id))
            .map(|j| {
                j.state = JobState::Queued;
                j.scale_set_id = None;
                j.acquired_by = None;
                j.assigned_at = None;
                j.id
            })
            .collect();
        // Given back: every session may be told of them again.
        for set in self.scalesets.sets.values_mut() {
            if let Some(session) = set.session.as_mut() {
                for id in &returned {
                    session.offered.remove(id);
                }
            }
        }
        returned.into_iter().for_each(|id| self.offer_job(id));
        true
    }

    /// Ends the sessions that went without a poll for the session timeout. Whether any.
    pub fn expire_sessions(&mut self, now: Instant) -> bool {
        let timeout = self.scalesets.settings.session_timeout;
        let dead: Vec<u64> = self
            .scalesets
            .sets
            .values()
            .filter(|s| s.session.as_ref().is_some_and(|x| !x.alive(now, timeout)))
            .map(|s| s.id)
            .collect();
        dead.iter().for_each(|id| {
            self.end_session(*id);
        });
        !dead.is_empty()
    }

    /// When the next session would time out, if none polls before: a waiting poll
    /// wakes then, so other sessions hear of the jobs it gives back.
    pub fn next_session_expiry(&self) -> Option<Instant> {
        let timeout = self.scalesets.settings.session_timeout;
        self.scalesets
            .sets
            .values()
            .filter_map(|s| s.session.as_ref())
            .filter(|s| s.polls == 0)
            .map(|s| s.last_contact + timeout)
            .min()
    }

    /// What a poll after message `last` gets: the oldest unacknowledged message newer
    /// than it, else a new message of up to 50 pending job messages, else nothing.
    pub fn next_message(&mut self, set_id: u64, last: u64) -> Option<(u64, Vec<Value>)> {
        // The poll may have brought a new capacity.
        self.refill(set_id);
        let scalesets = &mut self.scalesets;
        let session = scalesets.sets.get_mut(&set_id)?.session.as_mut()?;
        if let Some((id, jobs)) = session.unacked.range(last + 1..).next() {
            return Some((*id, jobs.clone()));
        }
        if session.pending.is_empty() {
            return None;
        }
        let take = session.pending.len().min(MAX_BATCH);
        let jobs: Vec<Value> = session.pending.drain(..take).collect();
        scalesets.next_message_id += 1;
        let id = scalesets.next_message_id;
        session.unacked.insert(id, jobs.clone());
        Some((id, jobs))
    }

    /// Removes scale set `set_id`, its session (jobs given back) and its runners; a
    /// job running on one of them fails, as its runner is gone.
    pub fn remove_scale_set(&mut self, set_id: u64, now: DateTime<Utc>) -> bool {
        self.end_session(set_id);
        if self.scalesets.sets.remove(&set_id).is_none() {
            return false;
        }
        let runners: Vec<u64> = self
            .runners
            .values()
            .filter(|r| r.scale_set_id == Some(set_id))
            .map(|r| r.id)
            .collect();
        for id in runners {
            let job = self.runners.remove(&id).and_then(|r| r.job_id);
            if let Some(job) = job.and_then(|j| self.jobs.get_mut(&j)) {
                job.finish("failure", now);
                job.lost = true;
            }
        }
        true
    }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
