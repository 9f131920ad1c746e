//! The scale-set API's values: the public types the charm uses, their wire forms (the
//! Actions service's camelCase JSON) and the pure conversions between them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use ghr_types::Secret;

pub use super::job_times::JobTimes;

/// The message type of a queue message that carries job events.
pub const JOB_MESSAGES: &str = "RunnerScaleSetJobMessages";

/// What the charm wants a scale set to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleSetSpec {
    pub name: String,
    pub runner_group_id: u64,
    /// Empty means the service's default: the name is the only label.
    pub labels: Vec<String>,
}

impl ScaleSetSpec {
    /// The labels the scale set ends up with, as [`ScaleSet::labels`] reports them.
    pub fn effective_labels(&self) -> Vec<String> {
        if self.labels.is_empty() {
            vec![self.name.clone()]
        } else {
            self.labels.clone()
        }
    }

    /// The body of a create (`with_settings`) or an update.
    pub(crate) fn body(&self, with_settings: bool) -> Value {
        let labels: Vec<Value> = self
            .effective_labels()
            .iter()
            .map(|name| json!({ "name": name, "type": "System" }))
            .collect();
        let mut body = json!({
            "name": self.name,
            "runnerGroupId": self.runner_group_id,
            "labels": labels,
        });
        if with_settings {
            body["RunnerSetting"] = json!({ "disableUpdate": false });
        }
        body
    }
}

/// A scale set as the service reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleSet {
    pub id: u64,
    pub name: String,
    pub runner_group_id: u64,
    pub labels: Vec<String>,
    pub statistics: Option<Statistics>,
}

impl ScaleSet {
    /// Whether `spec`'s labels (as a set) and group differ from this scale set's.
    pub fn differs_from(&self, spec: &ScaleSetSpec) -> bool {
        let sorted = |labels: &[String]| {
            let mut labels = labels.to_vec();
            labels.sort();
            labels.dedup();
            labels
        };
        self.runner_group_id != spec.runner_group_id
            || sorted(&self.labels) != sorted(&spec.effective_labels())
    }
}

/// A scale set's job and runner counts. Scale on `assigned`: the jobs assigned to the
/// scale set, waiting or running; never on a count of messages.
#[derive(Default, Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Statistics {
    pub available: u64,
    pub acquired: u64,
    pub assigned: u64,
    pub running: u64,
    pub registered_runners: u64,
    pub busy_runners: u64,
    pub idle_runners: u64,
}

/// A just-in-time runner registered in a scale set.
#[derive(Clone, Debug)]
pub struct ScaleSetJit {
    pub runner_id: u64,
    /// For `run.sh --jitconfig`; a secret until the runner has used it.
    pub encoded: Secret,
}

/// A runner (agent) the Actions service knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRunner {
    pub id: u64,
    pub name: String,
    /// `None` for a runner outside any scale set.
    pub scale_set_id: Option<u64>,
}

/// One batch from a session's message queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u64,
    /// `None` when GitHub sent none: no news, not an empty scale set.
    pub statistics: Option<Statistics>,
    pub jobs: Vec<JobEvent>,
    /// GitHub's timestamps of each entry of `jobs`, in the same order.
    pub times: Vec<JobTimes>,
}

/// One job event of a [`Message`], in delivery order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobEvent {
    Available {
        request_id: u64,
    },
    Assigned {
        request_id: u64,
    },
    Started {
        request_id: u64,
        runner_name: String,
        runner_id: u64,
    },
    Completed {
        request_id: u64,
        runner_name: String,
        result: String,
    },
    /// A message type we do not know, or an entry we could not read: its type name.
    Other(String),
}

/// The wire statistics. Counts are signed there; a negative one is read as 0.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WireStatistics {
    total_available_jobs: i64,
    total_acquired_jobs: i64,
    total_assigned_jobs: i64,
    total_running_jobs: i64,
    total_registered_runners: i64,
    total_busy_runners: i64,
    total_idle_runners: i64,
}

impl From<WireStatistics> for Statistics {
    fn from(w: WireStatistics) -> Self {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Statistics {
            available: n(w.total_available_jobs),
            acquired: n(w.total_acquired_jobs),
            assigned: n(w.total_assigned_jobs),
            running: n(w.total_running_jobs),
            registered_runners: n(w.total_registered_runners),
            busy_runners: n(w.total_busy_runners),
            idle_runners: n(w.total_idle_runners),
        }
    }
}

/// `{"count": n, "value": [...]}`, the service's list envelope.
#[derive(Debug, Deserialize)]
pub(crate) struct List<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
}

#[derive(Deserialize)]
pub(crate) struct WireLabel {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireScaleSet {
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    runner_group_id: u64,
    #[serde(default)]
    labels: Vec<WireLabel>,
    #[serde(default)]
    statistics: Option<WireStatistics>,
}

impl From<WireScaleSet> for ScaleSet {
    fn from(w: WireScaleSet) -> Self {
        ScaleSet {
            id: w.id,
            name: w.name,
            runner_group_id: w.runner_group_id,
            labels: w.labels.into_iter().map(|l| l.name).collect(),
            statistics: w.statistics.map(Statistics::from),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct WireRunnerGroup {
    pub id: u64,
    #[serde(default)]
    pub name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRunner {
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    runner_scale_set_id: u64,
}

impl From<WireRunner> for ServiceRunner {
    fn from(w: WireRunner) -> Self {
        ServiceRunner {
            id: w.id,
            name: w.name,
            scale_set_id: Some(w.runner_scale_set_id).filter(|id| *id != 0),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct WireJit {
    pub runner: Option<WireRunner>,
    #[serde(rename = "encodedJITConfig")]
    pub encoded: Secret,
}

/// The answer of `actions/runner-registration`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireConnection {
    pub url: String,
    pub token: Secret,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireSession {
    pub session_id: String,
    #[serde(default)]
    pub owner_name: String,
    pub message_queue_url: String,
    pub message_queue_access_token: Secret,
    #[serde(default)]
    pub statistics: Option<WireStatistics>,
}

/// A queue message: its job events are a JSON array inside the string `body`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireMessage {
    message_id: u64,
    #[serde(default)]
    message_type: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    statistics: Option<WireStatistics>,
}

/// One entry of a message body; which fields are set depends on `messageType`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireJob {
    message_type: String,
    runner_request_id: u64,
    #[serde(default)]
    runner_id: u64,
    #[serde(default)]
    runner_name: String,
    #[serde(default)]
    result: String,
}

impl From<WireJob> for JobEvent {
    fn from(w: WireJob) -> Self {
        let request_id = w.runner_request_id;
        match w.message_type.as_str() {
            "JobAvailable" => JobEvent::Available { request_id },
            "JobAssigned" => JobEvent::Assigned { request_id },
            "JobStarted" => JobEvent::Started {
                request_id,
                runner_name: w.runner_name,
                runner_id: w.runner_id,
            },
            "JobCompleted" => JobEvent::Completed {
                request_id,
                runner_name: w.runner_name,
                result: w.result,
            },
            _ => JobEvent::Other(w.message_type),
        }
    }
}

/// One body entry; an unreadable one becomes [`JobEvent::Other`] so that the rest of
/// the batch, and its acknowledgement, still go through.
fn job_event(entry: Value) -> JobEvent {
    let kind = entry
        .get("messageType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    match serde_json::from_value::<WireJob>(entry) {
        Ok(job) => job.into(),
        Err(e) => {
            log::warn!("skipping an unreadable {kind:?} job event: {e}");
            JobEvent::Other(kind)
        }
    }
}

impl From<WireMessage> for Message {
    /// Never fails: a message we cannot read must still be acknowledged, or the
    /// service would deliver it forever.
    fn from(w: WireMessage) -> Self {
        let body = w.body.unwrap_or_default();
        let entries: Vec<Value> = if w.message_type != JOB_MESSAGES {
            log::warn!(
                "message {} has unknown type {:?}",
                w.message_id,
                w.message_type
            );
            Vec::new()
        } else if body.trim().is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&body).unwrap_or_else(|e| {
                log::warn!("message {} has an unreadable body: {e}", w.message_id);
                Vec::new()
            })
        };
        Message {
            id: w.message_id,
            statistics: w.statistics.map(Statistics::from),
            times: entries.iter().map(JobTimes::of).collect(),
            jobs: entries.into_iter().map(job_event).collect(),
        }
    }
}

#[cfg(test)]
#[path = "models_tests.rs"]
mod tests;
