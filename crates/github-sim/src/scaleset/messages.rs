//! The actions service's JSON: scale sets, sessions, job messages and the queue's
//! message envelope, with the field names GitHub's clients read. Pure functions of
//! the world's values.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::world::{ScaleSet, Session, Statistics};
use crate::jobs::Job;

/// The only message type the service sends a scale set.
pub const MESSAGE_TYPE: &str = "RunnerScaleSetJobMessages";

/// At most this many job messages go into one queue message, as on GitHub.
pub const MAX_BATCH: usize = 50;

/// An unset time as the service (written in Go) sends it.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(t: Option<DateTime<Utc>>) -> Value {
    match t {
        Some(t) => json!(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        None => json!(ZERO_TIME),
    }
}

/// The fields every job message carries.
fn job_info(job: &Job) -> Map<String, Value> {
    let (owner, repo) = job.repository.split_once('/').unwrap_or(("", ""));
    let git_ref = if job.event_name.starts_with("pull_request") {
        format!("refs/pull/{}", job.ref_name)
    } else {
        format!("refs/heads/{}", job.ref_name)
    };
    let file = job.workflow.to_lowercase().replace(' ', "-");
    let info = json!({
        "runnerRequestId": job.id,
        "repositoryName": repo,
        "ownerName": owner,
        "jobId": job.id.to_string(),
        "jobWorkflowRef": format!("{}/.github/workflows/{file}.yml@{git_ref}", job.repository),
        "jobDisplayName": job.workflow,
        "workflowRunId": job.run_id,
        "eventName": job.event_name,
        "requestLabels": job.labels,
        "queueTime": time(Some(job.queued_at)),
        "scaleSetAssignTime": time(job.assigned_at),
        "runnerAssignTime": time(job.started_at),
        "finishTime": time(job.finished_at),
    });
    match info {
        Value::Object(map) => map,
        _ => unreachable!("built as an object"),
    }
}

fn message(kind: &str, job: &Job, extra: Value) -> Value {
    let mut map = job_info(job);
    map.insert("messageType".into(), json!(kind));
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    Value::Object(map)
}

pub fn job_available(job: &Job, set_id: u64, service_url: &str) -> Value {
    let url = format!("{service_url}_apis/runtime/runnerscalesets/{set_id}/acquirejobs");
    message("JobAvailable", job, json!({"acquireJobUrl": url}))
}

pub fn job_assigned(job: &Job) -> Value {
    message("JobAssigned", job, json!({}))
}

pub fn job_started(job: &Job, runner_id: u64, runner_name: &str) -> Value {
    message(
        "JobStarted",
        job,
        json!({"runnerId": runner_id, "runnerName": runner_name}),
    )
}

/// `result` as the service words it: the simulator's `success` and `failure`
/// conclusions become `succeeded` and `failed`.
pub fn job_completed(job: &Job, runner_id: u64, runner_name: &str) -> Value {
    let result = match job.conclusion.as_deref() {
        Some("success") => "succeeded",
        Some("failure") => "failed",
        Some(other) => other,
        None => "canceled",
    };
    message(
        "JobCompleted",
        job,
        json!({"result": result, "runnerId": runner_id, "runnerName": runner_name}),
    )
}

/// A queue message: the job messages go JSON-encoded into `body`, as on GitHub.
pub fn envelope(id: u64, jobs: &[Value], stats: Statistics) -> Value {
    json!({
        "messageId": id,
        "messageType": MESSAGE_TYPE,
        "body": Value::Array(jobs.to_vec()).to_string(),
        "statistics": stats,
    })
}

pub fn scale_set(set: &ScaleSet, group_name: &str, service_url: &str, stats: Statistics) -> Value {
    let labels: Vec<Value> = set
        .labels
        .iter()
        .map(|l| json!({"name": l, "type": "System"}))
        .collect();
    json!({
        "id": set.id,
        "name": set.name,
        "runnerGroupId": set.group_id,
        "runnerGroupName": group_name,
        "labels": labels,
        "RunnerSetting": {
            "ephemeral": set.ephemeral,
            "isElastic": true,
            "disableUpdate": set.disable_update,
        },
        "createdOn": time(Some(set.created_at)),
        "runnerJitConfigUrl": format!(
            "{service_url}_apis/runtime/runnerscalesets/{}/generatejitconfig", set.id
        ),
        "statistics": stats,
    })
}

/// A session as created or refreshed, queue token included.
pub fn session(session: &Session, queue_url: &str, set: Value, stats: Statistics) -> Value {
    json!({
        "sessionId": session.id,
        "ownerName": session.owner,
        "runnerScaleSet": set,
        "messageQueueUrl": queue_url,
        "messageQueueAccessToken": session.queue_token,
        "statistics": stats,
    })
}

/// `{"count", "value"}`, the service's list form.
pub fn list(items: Vec<Value>) -> Value {
    json!({"count": items.len(), "value": items})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobSpec;

    #[test]
    fn job_messages_carry_the_job_and_go_time_for_unset_times() {
        let spec = JobSpec {
            repository: "acme/web".into(),
            labels: vec!["big".into()],
            event_name: "push".into(),
            event: json!({"ref": "refs/heads/main"}),
            ..Default::default()
        };
        let mut job = Job::new(42, spec, Utc::now());
        let m = job_available(&job, 7, "http://h/_services/acme/");
        assert_eq!(m["messageType"], "JobAvailable");
        assert_eq!(m["runnerRequestId"], 42);
        assert_eq!(
            (m["ownerName"].as_str(), m["repositoryName"].as_str()),
            (Some("acme"), Some("web"))
        );
        assert_eq!(
            m["jobWorkflowRef"],
            "acme/web/.github/workflows/ci.yml@refs/heads/main"
        );
        assert_eq!(m["finishTime"], ZERO_TIME);
        assert_eq!(
            m["acquireJobUrl"],
            "http://h/_services/acme/_apis/runtime/runnerscalesets/7/acquirejobs"
        );
        job.finish("failure", Utc::now());
        let done = job_completed(&job, 3, "r3");
        assert_eq!(
            (done["result"].as_str(), done["runnerId"].as_u64()),
            (Some("failed"), Some(3))
        );
        let env = envelope(9, &[done], Statistics::default());
        let body: Vec<Value> = serde_json::from_str(env["body"].as_str().unwrap()).unwrap();
        assert_eq!(body[0]["messageType"], "JobCompleted");
        assert_eq!(env["statistics"]["totalRunningJobs"], 0);
    }
}
