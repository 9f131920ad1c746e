//! Workflow jobs: what the admin API queues, how a job's GITHUB_* context is derived
//! from its event, and which runner may take it. A job that fits a runner scale set
//! goes only to that scale set's runners, once the scale set acquired it
//! ([`super::scaleset::flow`]); any other job goes to the first idle runner it fits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::{SimRunner, World};

/// A job as queued through `POST /_sim/jobs`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct JobSpec {
    pub repository: String,
    pub labels: Vec<String>,
    pub event_name: String,
    pub event: Value,
    pub steps: Vec<String>,
    pub workflow: Option<String>,
    pub ref_name: Option<String>,
    pub base_ref: Option<String>,
    pub head_ref: Option<String>,
    pub sha: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    /// Acquired by a runner scale set, waiting for one of its runners.
    Assigned,
    InProgress,
    Completed,
}

#[derive(Clone, Debug, Serialize)]
pub struct Job {
    pub id: u64,
    pub run_id: u64,
    pub repository: String,
    pub labels: Vec<String>,
    pub event_name: String,
    pub event: Value,
    pub steps: Vec<String>,
    pub workflow: String,
    pub ref_name: String,
    pub base_ref: String,
    pub head_ref: String,
    pub sha: String,
    pub state: JobState,
    /// `success` or `failure` once completed.
    pub conclusion: Option<String>,
    pub runner_id: Option<u64>,
    pub runner_name: Option<String>,
    /// Set when GitHub gave the job up because its runner went silent.
    pub lost: bool,
    /// The runner scale set the job is assigned to, once one acquired it.
    pub scale_set_id: Option<u64>,
    /// The owner name of the session that acquired the job.
    pub acquired_by: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// A job from its spec; refs not given are taken from the event as GitHub would.
    pub fn new(id: u64, spec: JobSpec, now: DateTime<Utc>) -> Job {
        let text = |v: &Value, path: &[&str]| -> String {
            path.iter()
                .try_fold(v, |v, k| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let e = &spec.event;
        let (ref_name, base_ref, head_ref, sha) = if spec.event_name.starts_with("pull_request") {
            let number = e.get("number").and_then(Value::as_u64).unwrap_or(1);
            (
                format!("{number}/merge"),
                text(e, &["pull_request", "base", "ref"]),
                text(e, &["pull_request", "head", "ref"]),
                text(e, &["pull_request", "head", "sha"]),
            )
        } else {
            let git_ref = text(e, &["ref"]);
            let name = git_ref
                .strip_prefix("refs/heads/")
                .or(git_ref.strip_prefix("refs/tags/"))
                .unwrap_or(&git_ref);
            (
                name.to_string(),
                String::new(),
                String::new(),
                text(e, &["after"]),
            )
        };
        let pick = |given: Option<String>, derived: String| given.unwrap_or(derived);
        Job {
            id,
            run_id: 10_000 + id,
            repository: spec.repository,
            labels: spec.labels,
            event_name: spec.event_name,
            workflow: spec.workflow.unwrap_or_else(|| "CI".into()),
            ref_name: pick(spec.ref_name, ref_name),
            base_ref: pick(spec.base_ref, base_ref),
            head_ref: pick(spec.head_ref, head_ref),
            sha: pick(spec.sha, if sha.is_empty() { "0".repeat(40) } else { sha }),
            event: spec.event,
            steps: spec.steps,
            state: JobState::Queued,
            conclusion: None,
            runner_id: None,
            runner_name: None,
            lost: false,
            scale_set_id: None,
            acquired_by: None,
            queued_at: now,
            assigned_at: None,
            started_at: None,
            finished_at: None,
        }
    }

    pub fn finish(&mut self, conclusion: &str, now: DateTime<Utc>) {
        self.state = JobState::Completed;
        self.conclusion = Some(conclusion.to_string());
        self.finished_at = Some(now);
    }

    /// What the runner app receives from its poll.
    pub fn assignment(&self) -> Value {
        serde_json::json!({
            "job_id": self.id, "run_id": self.run_id, "repository": self.repository,
            "event_name": self.event_name, "event": self.event, "steps": self.steps,
            "workflow": self.workflow, "ref_name": self.ref_name, "base_ref": self.base_ref,
            "head_ref": self.head_ref, "sha": self.sha,
        })
    }
}

/// A runner can take a job of its scope whose labels it all has (case-insensitive).
pub fn fits(runner: &SimRunner, job: &Job) -> bool {
    runner.scope.serves(&job.repository)
        && job.labels.iter().all(|want| {
            runner
                .labels
                .iter()
                .any(|have| have.eq_ignore_ascii_case(want))
        })
}

impl World {
    /// Gives the polling runner, if idle, the oldest job it may take: a scale set's
    /// runner one assigned to its scale set, any other runner a queued job it fits that
    /// no scale set claims.
    pub fn assign(&mut self, runner_id: u64, now: DateTime<Utc>) -> Option<Value> {
        let runner = self.runners.get(&runner_id).filter(|r| !r.busy)?;
        let sets = &self.scalesets;
        let job = self.jobs.values_mut().find(|j| match runner.scale_set_id {
            Some(set) => j.state == JobState::Assigned && j.scale_set_id == Some(set),
            None => j.state == JobState::Queued && fits(runner, j) && !sets.claims(j),
        })?;
        job.state = JobState::InProgress;
        job.started_at = Some(now);
        job.runner_id = Some(runner.id);
        job.runner_name = Some(runner.name.clone());
        let assignment = job.assignment();
        let job_id = job.id;
        let runner = self.runners.get_mut(&runner_id).expect("checked above");
        runner.busy = true;
        runner.job_id = Some(job_id);
        self.job_started(job_id);
        Some(assignment)
    }

    /// The runner reports its job done; an ephemeral runner is then removed, as GitHub does.
    pub fn complete(
        &mut self,
        runner_id: u64,
        job_id: u64,
        conclusion: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(runner) = self
            .runners
            .get_mut(&runner_id)
            .filter(|r| r.job_id == Some(job_id))
        else {
            return false;
        };
        runner.busy = false;
        runner.job_id = None;
        let ephemeral = runner.ephemeral;
        let name = runner.name.clone();
        if let Some(job) = self.jobs.get_mut(&job_id) {
            job.finish(conclusion, now);
        }
        self.job_completed(job_id, runner_id, &name);
        if ephemeral {
            self.runners.remove(&runner_id);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Scope, Timing};
    use serde_json::json;
    use std::time::Duration;

    fn runner(id: u64, scope: Scope, labels: &[&str], ephemeral: bool) -> SimRunner {
        SimRunner {
            id,
            name: format!("r{id}"),
            scope,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            default_labels: 0,
            group_id: 1,
            scale_set_id: None,
            ephemeral,
            jit: false,
            busy: false,
            job_id: None,
            credential: format!("cred{id}"),
            session_started: true,
            last_contact: None,
            polls: 0,
        }
    }

    #[test]
    fn jobs_go_to_idle_runners_of_their_scope_with_all_labels() {
        let timing = Timing {
            offline_after: Duration::from_secs(5),
            lost_job_after: Duration::from_secs(5),
        };
        let mut w = World::new(timing, 100);
        let now = Utc::now();
        w.runners.insert(
            1,
            runner(1, Scope::Org("other".into()), &["gpu", "x64"], false),
        );
        w.runners
            .insert(2, runner(2, Scope::Org("acme".into()), &["x64"], false));
        w.runners.insert(
            3,
            runner(3, Scope::Repo("acme/web".into()), &["GPU", "X64"], true),
        );
        let spec = JobSpec {
            repository: "acme/web".into(),
            labels: vec!["gpu".into(), "x64".into()],
            ..Default::default()
        };
        w.jobs.insert(10, Job::new(10, spec, now));
        assert!(w.assign(1, now).is_none(), "wrong org");
        assert!(w.assign(2, now).is_none(), "missing a label");
        let got = w.assign(3, now).expect("labels match case-insensitively");
        assert_eq!(got["job_id"], 10);
        assert!(w.runners[&3].busy);
        assert_eq!(w.jobs[&10].state, JobState::InProgress);
        assert!(
            !w.complete(2, 10, "success", now),
            "only its runner completes a job"
        );
        assert!(w.complete(3, 10, "success", now));
        assert_eq!(w.jobs[&10].conclusion.as_deref(), Some("success"));
        assert!(
            !w.runners.contains_key(&3),
            "an ephemeral runner goes after its job"
        );
    }

    #[test]
    fn pull_request_context_comes_from_the_event() {
        let spec = JobSpec {
            repository: "o/r".into(),
            event_name: "pull_request".into(),
            event: json!({"number": 7, "pull_request": {"base": {"ref": "main"}, "head": {"ref": "feat", "sha": "abc"}}}),
            ..Default::default()
        };
        let job = Job::new(1, spec, Utc::now());
        assert_eq!(
            (
                job.ref_name.as_str(),
                job.base_ref.as_str(),
                job.head_ref.as_str(),
                job.sha.as_str()
            ),
            ("7/merge", "main", "feat", "abc")
        );
        let push = Job::new(
            2,
            JobSpec {
                event_name: "push".into(),
                event: json!({"ref": "refs/heads/dev", "after": "f00"}),
                ..Default::default()
            },
            Utc::now(),
        );
        assert_eq!(
            (
                push.ref_name.as_str(),
                push.sha.as_str(),
                push.base_ref.as_str()
            ),
            ("dev", "f00", "")
        );
    }
}
