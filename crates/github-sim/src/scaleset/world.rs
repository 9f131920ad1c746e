//! The runner scale sets' part of the world and its pure rules: which job fits which
//! scale set, whether a session is still alive, and the statistics a scale set's
//! messages carry, always computed from the jobs and runners of the world.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::jobs::{Job, JobState};
use crate::state::{Scope, World};

/// Timings of the actions service; admin calls change them so tests run fast.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long a poll of the message queue waits for news before answering 202.
    pub long_poll: Duration,
    /// A session without a poll for this long is gone, as on GitHub, so the successor
    /// of a crashed listener gets in after waiting out the 409s.
    pub session_timeout: Duration,
    /// Lifetime of an admin token from `runner-registration`.
    pub admin_token_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            long_poll: Duration::from_secs(50),
            session_timeout: Duration::from_secs(120),
            admin_token_ttl: Duration::from_secs(3600),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ScaleSet {
    pub id: u64,
    pub name: String,
    pub scope: Scope,
    pub group_id: u64,
    /// Labels as created or patched (the name alone when none were given).
    pub labels: Vec<String>,
    pub ephemeral: bool,
    pub disable_update: bool,
    pub created_at: DateTime<Utc>,
    pub session: Option<Session>,
}

/// A message session: its queue of job messages and its liveness.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub owner: String,
    pub queue_token: String,
    /// Cleared when the admin API expires tokens: the next call gets 401 until a refresh.
    pub token_valid: bool,
    /// The actions service URL the session was made under, for the URLs messages carry.
    pub service_url: String,
    /// The last `X-ScaleSetMaxCapacity` a poll sent.
    pub max_capacity: Option<u32>,
    /// Polls in flight: a session that is waiting on a poll is alive however long.
    pub polls: u32,
    pub last_contact: Instant,
    /// Job messages not yet put into a message.
    pub pending: Vec<Value>,
    /// Delivered messages not acknowledged yet, by message id: delivered again.
    pub unacked: BTreeMap<u64, Vec<Value>>,
    /// Jobs this session was told of (JobAvailable): each is offered once, and those
    /// still queued count against its capacity.
    pub offered: std::collections::BTreeSet<u64>,
}

impl Session {
    pub fn alive(&self, now: Instant, timeout: Duration) -> bool {
        self.polls > 0 || now.duration_since(self.last_contact) < timeout
    }
}

#[derive(Clone, Debug)]
pub struct AdminToken {
    pub scope: Scope,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct ScaleSets {
    pub sets: BTreeMap<u64, ScaleSet>,
    pub admin_tokens: HashMap<String, AdminToken>,
    pub settings: Settings,
    /// Message ids grow across all sessions, so an old `lastMessageId` never hides a
    /// new session's messages.
    pub next_message_id: u64,
}

/// A scale set's statistics, with the wire's field names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    /// Queued jobs that fit the scale set and no scale set acquired yet.
    pub total_available_jobs: u32,
    /// Jobs the scale set acquired that have not finished (acquiring assigns at once).
    pub total_acquired_jobs: u32,
    /// Jobs assigned to the scale set and not finished, started or not: the number of
    /// runners a scaler wants.
    pub total_assigned_jobs: u32,
    pub total_running_jobs: u32,
    pub total_registered_runners: u32,
    pub total_busy_runners: u32,
    pub total_idle_runners: u32,
}

impl ScaleSet {
    /// Whether a job may go to this scale set: of its scope, and every label is its
    /// name, one of its labels, or `self-hosted` (case-insensitive), with at least one
    /// that is not `self-hosted` (a bare `self-hosted` job is for any runner).
    pub fn fits(&self, job: &Job) -> bool {
        let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let generic = |l: &String| is(l, "self-hosted");
        let own = |l: &String| is(l, &self.name) || self.labels.iter().any(|s| is(s, l));
        self.scope.serves(&job.repository)
            && job.labels.iter().any(|l| !generic(l))
            && job.labels.iter().all(|l| generic(l) || own(l))
    }
}

impl ScaleSets {
    /// Whether some scale set may take the job: then no other runner gets it.
    pub fn claims(&self, job: &Job) -> bool {
        self.sets.values().any(|s| s.fits(job))
    }

    pub fn next_message_id(&mut self) -> u64 {
        self.next_message_id += 1;
        self.next_message_id
    }
}

impl World {
    /// The statistics of scale set `id` as the world stands now.
    pub fn statistics(&self, id: u64) -> Statistics {
        let mut stats = Statistics::default();
        let Some(set) = self.scalesets.sets.get(&id) else {
            return stats;
        };
        for job in self.jobs.values() {
            let ours = job.scale_set_id == Some(id);
            match job.state {
                JobState::Queued if set.fits(job) => stats.total_available_jobs += 1,
                JobState::Assigned | JobState::InProgress if ours => {
                    stats.total_acquired_jobs += 1;
                    stats.total_assigned_jobs += 1;
                    if job.state == JobState::InProgress {
                        stats.total_running_jobs += 1;
                    }
                }
                _ => {}
            }
        }
        for runner in self.runners.values() {
            if runner.scale_set_id == Some(id) {
                stats.total_registered_runners += 1;
                if runner.busy {
                    stats.total_busy_runners += 1;
                } else {
                    stats.total_idle_runners += 1;
                }
            }
        }
        stats
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jobs::JobSpec;

    pub(crate) fn set(id: u64, scope: Scope, name: &str, labels: &[&str]) -> ScaleSet {
        ScaleSet {
            id,
            name: name.into(),
            scope,
            group_id: 1,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ephemeral: true,
            disable_update: false,
            created_at: Utc::now(),
            session: None,
        }
    }

    fn job(repository: &str, labels: &[&str]) -> Job {
        let spec = JobSpec {
            repository: repository.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            ..Default::default()
        };
        Job::new(1, spec, Utc::now())
    }

    #[test]
    fn a_job_fits_by_scope_name_and_labels() {
        let org = set(1, Scope::Org("acme".into()), "big", &["gpu", "x64"]);
        assert!(org.fits(&job("acme/web", &["big"])));
        assert!(org.fits(&job("acme/web", &["self-hosted", "GPU", "x64"])));
        assert!(!org.fits(&job("other/web", &["big"])), "another org");
        assert!(
            !org.fits(&job("acme/web", &["big", "arm64"])),
            "a foreign label"
        );
        assert!(
            !org.fits(&job("acme/web", &["self-hosted"])),
            "only generic"
        );
        assert!(!org.fits(&job("acme/web", &[])));
        let repo = set(2, Scope::Repo("acme/web".into()), "web", &["web"]);
        assert!(repo.fits(&job("acme/web", &["web"])));
        assert!(!repo.fits(&job("acme/api", &["web"])), "another repository");
    }

    #[test]
    fn statistics_count_jobs_and_runners_of_the_set() {
        let mut w = World::for_tests(10);
        let acme = Scope::Org("acme".into());
        w.scalesets.sets.insert(7, set(7, acme.clone(), "big", &[]));
        w.scalesets.sets.insert(8, set(8, acme, "small", &[]));
        let mut add = |id: u64, labels: &[&str], state: JobState, set: Option<u64>| {
            let mut j = job("acme/web", labels);
            j.id = id;
            j.state = state;
            j.scale_set_id = set;
            w.jobs.insert(id, j);
        };
        add(1, &["big"], JobState::Queued, None);
        add(2, &["big"], JobState::Assigned, Some(7));
        add(3, &["big"], JobState::InProgress, Some(7));
        add(4, &["big"], JobState::Completed, Some(7));
        add(5, &["small"], JobState::Queued, None);
        add(6, &["small"], JobState::Assigned, Some(8));
        let stats = w.statistics(7);
        assert_eq!(
            (
                stats.total_available_jobs,
                stats.total_acquired_jobs,
                stats.total_assigned_jobs,
                stats.total_running_jobs
            ),
            (1, 2, 2, 1)
        );
        assert_eq!(w.statistics(8).total_available_jobs, 1);
        assert_eq!(w.statistics(99), Statistics::default());
        let wire = serde_json::to_value(stats).unwrap();
        assert_eq!(wire["totalAssignedJobs"], 2);
        assert_eq!(wire["totalIdleRunners"], 0);
    }
}
