//! Our GitHub simulator speaks the runner scale-set protocol as the `scaleset` crate's
//! client (code nobody here wrote: GitHub's wire as its authors read it) expects: the
//! registration exchange, scale sets, sessions, the message queue, acquiring jobs, JIT
//! runners that the simulator's runner app accepts, statistics computed from the world;
//! and, in [`scaleset_sim`], expiring tokens, lost sessions, injected faults, the
//! crate's `Listener` serving a burst across two scale sets, and the runner app's own
//! scripts running a scale-set job. Every value the crate decodes is compared with the
//! world, so a field the simulator misnames (the crate decodes it as a default) fails.

mod runner_app_support;
mod scaleset_sim;

use scaleset::reqwest::{Method, StatusCode};
use scaleset::{
    Client, ExposeSecret, JitRunnerSetting, JobRequestId, MessageId, MessageSession, RunnerGroupId,
    RunnerReference, RunnerScaleSetSpec, ScaleSetId,
};
use scaleset_sim::app_runner::AppRunner;
use scaleset_sim::{next_message, run, Lab};
use serde_json::json;

/// Get-or-create, then update: what a charm does with its scale set on every start.
async fn get_or_create_and_update(client: &Client) -> ScaleSetId {
    let group = client.get_runner_group_by_name("default").await.unwrap();
    let group = group.expect("the default group");
    assert_eq!((group.id, group.is_default), (RunnerGroupId::DEFAULT, true));
    let missing = client.get_runner_scale_set_by_name(group.id, "web").await;
    assert!(missing.unwrap().is_none());
    let spec = RunnerScaleSetSpec::new("web")
        .labels(["web", "linux"])
        .disable_update(true);
    let made = client.create_runner_scale_set(&spec).await.unwrap();
    let names = (made.name.as_str(), made.runner_group_name.as_str());
    assert_eq!(names, ("web", "default"));
    assert!(made.runner_setting.disable_update && made.created_on.is_some());
    let jit_url = made.runner_jit_config_url.clone().unwrap();
    assert!(jit_url.ends_with(&format!("/{}/generatejitconfig", made.id)));
    let found = client.get_runner_scale_set_by_name(group.id, "web").await;
    assert_eq!(found.unwrap().map(|s| s.id), Some(made.id), "found again");

    let patch = RunnerScaleSetSpec::default()
        .labels(["web", "gpu"])
        .disable_update(false);
    let updated = client.update_runner_scale_set(made.id, &patch).await;
    let updated = updated.unwrap();
    let labels: Vec<&str> = updated.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(labels, ["web", "gpu"]);
    assert!(!updated.runner_setting.disable_update);
    let read = client.get_runner_scale_set_by_id(made.id).await.unwrap();
    assert_eq!(
        (read.labels, read.runner_group_id),
        (updated.labels, group.id)
    );
    made.id
}

/// One session per scale set: the second gets the conflict the crate maps 409 to.
async fn open_session(client: &Client, id: ScaleSetId) -> MessageSession {
    let session = client.create_message_session(id, "listener-a").await;
    let session = session.unwrap();
    let second = client.create_message_session(id, "listener-b").await;
    let second = second.unwrap_err();
    assert!(second.is_conflict(), "{second}");
    let exception = second.api_error().unwrap().exception.clone().unwrap();
    assert!(exception
        .type_name
        .ends_with("TaskAgentSessionConflictException"));
    session
}

/// The job arrives as JobAvailable, comes again until acknowledged, is acquired and
/// assigned. The id of the last message handled.
async fn offer_and_acquire(
    lab: &Lab,
    session: &MessageSession,
    id: ScaleSetId,
    job: u64,
) -> MessageId {
    let offer = next_message(session, None).await;
    let available = offer.jobs_available().next().expect("JobAvailable");
    let info = &available.job;
    assert_eq!(info.runner_request_id, JobRequestId(job as i64));
    let whose = (info.owner_name.as_str(), info.repository_name.as_str());
    assert_eq!(whose, ("acme", "web"));
    assert_eq!(
        (info.request_labels.as_slice(), info.event_name.as_str()),
        (&["gpu".to_string()][..], "push")
    );
    assert!(info
        .job_workflow_ref
        .starts_with("acme/web/.github/workflows/"));
    assert!(info.queue_time.is_some() && info.finish_time.is_none());
    assert!(available
        .acquire_job_url
        .ends_with(&format!("/{id}/acquirejobs")));
    assert_eq!(offer.statistics.unwrap().total_available_jobs, 1);
    assert_eq!(offer.statistics, Some(lab.statistics(id).await));
    let again = next_message(session, None).await;
    assert_eq!(again.id, offer.id, "not acknowledged: delivered again");
    let newer = session.get_message(Some(offer.id), 4).await.unwrap();
    assert!(newer.is_none(), "202: nothing newer");
    assert_eq!(lab.scale_set(id).await["session"]["max_capacity"], 4);

    let request = [info.runner_request_id];
    assert_eq!(session.acquire_jobs(&request).await.unwrap(), request);
    session.delete_message(offer.id).await.unwrap();
    let assigned = next_message(session, Some(offer.id)).await;
    let job_assigned = assigned.jobs_assigned().next().expect("JobAssigned");
    assert_eq!(job_assigned.job.runner_request_id, request[0]);
    assert!(job_assigned.job.scale_set_assign_time.is_some());
    let stats = assigned.statistics.unwrap();
    let counts = (
        stats.total_available_jobs,
        stats.total_acquired_jobs,
        stats.total_assigned_jobs,
    );
    assert_eq!(counts, (0, 1, 1));
    session.delete_message(assigned.id).await.unwrap();
    let state = lab.job(job).await;
    let wanted = (json!("assigned"), json!(id.get()), json!("listener-a"));
    assert_eq!(
        (
            state["state"].clone(),
            state["scale_set_id"].clone(),
            state["acquired_by"].clone()
        ),
        wanted
    );
    assigned.id
}

/// A JIT runner of the scale set: REST lists it with the scale set's labels.
async fn jit_runner(lab: &Lab, client: &Client, id: ScaleSetId) -> (AppRunner, RunnerReference) {
    let setting = JitRunnerSetting::new("web-runner-1");
    let jit = client.generate_jit_config(id, &setting).await.unwrap();
    let reference = jit.runner.clone().unwrap();
    let named = (reference.name.as_str(), reference.runner_scale_set_id);
    assert_eq!(named, ("web-runner-1", id));
    let runner = AppRunner::from_jit(jit.encoded_jit_config.expose_secret());
    assert_eq!(runner.config["url"].as_str(), Some(lab.server.url.as_str()));
    assert_eq!(runner.config["runner_id"], reference.id.get());
    assert!(lab.rest_runner_names().await.contains(&reference.name));
    let runners = lab.admin(Method::GET, "/_sim/runners", None).await;
    let runners = runners.as_array().unwrap();
    let ours = runners
        .iter()
        .find(|r| r["name"] == "web-runner-1")
        .unwrap();
    let seen = (
        ours["labels"].clone(),
        ours["ephemeral"].clone(),
        ours["scale_set_id"].clone(),
    );
    assert_eq!(seen, (json!(["web", "gpu"]), json!(true), json!(id.get())));
    assert_eq!(lab.statistics(id).await.total_idle_runners, 1);
    (runner, reference)
}

/// The runner takes the job and completes it: JobStarted and JobCompleted arrive with
/// statistics that match the world, and the ephemeral runner is gone.
async fn run_job(lab: &Lab, session: &MessageSession, id: ScaleSetId, job: u64, last: MessageId) {
    let (runner, reference) = jit_runner(lab, session.client(), id).await;
    assert_eq!(runner.connect(lab).await, StatusCode::OK);
    let taken = runner.poll(lab, 5).await.expect("the assigned job");
    assert_eq!(taken["job_id"], job);
    let started = next_message(session, Some(last)).await;
    let start = started.jobs_started().next().expect("JobStarted");
    let by = (start.runner_id, start.runner_name.as_str());
    assert_eq!(by, (reference.id, "web-runner-1"));
    let stats = started.statistics.unwrap();
    let counts = (
        stats.total_running_jobs,
        stats.total_busy_runners,
        stats.total_assigned_jobs,
    );
    assert_eq!(counts, (1, 1, 1));
    assert_eq!(started.statistics, Some(lab.statistics(id).await));
    session.delete_message(started.id).await.unwrap();

    let done = runner.complete(lab, job, "success").await;
    assert_eq!(done, StatusCode::NO_CONTENT);
    let completed = next_message(session, Some(started.id)).await;
    let end = completed.jobs_completed().next().expect("JobCompleted");
    assert_eq!(
        (end.result.as_str(), end.runner_id),
        ("succeeded", reference.id)
    );
    assert!(end.job.finish_time.is_some());
    assert_eq!(completed.statistics, Some(Default::default()), "all done");
    assert_eq!(completed.statistics, Some(lab.statistics(id).await));
    session.delete_message(completed.id).await.unwrap();
    let state = lab.job(job).await;
    let seen = (
        state["state"].clone(),
        state["conclusion"].clone(),
        state["runner_name"].clone(),
    );
    assert_eq!(
        seen,
        (json!("completed"), json!("success"), json!("web-runner-1"))
    );
    let gone = session.client().get_runner_by_name("web-runner-1").await;
    assert!(gone.unwrap().is_none(), "ephemeral: removed after its job");
    assert!(!lab.rest_runner_names().await.contains(&reference.name));
}

#[test]
fn a_job_goes_from_the_queue_through_a_scale_set_to_its_jit_runner() {
    let lab = Lab::start();
    run(async {
        lab.set_long_poll(1.0).await;
        let client = lab.client("acme");
        let id = get_or_create_and_update(&client).await;
        let session = open_session(&client, id).await;
        let job = lab.queue_job("acme/web", &["gpu"]).await;
        let last = offer_and_acquire(&lab, &session, id, job).await;
        run_job(&lab, &session, id, job, last).await;

        session.close().await.unwrap();
        let next = client.create_message_session(id, "listener-b").await;
        next.unwrap().close().await.unwrap();
        client.delete_runner_scale_set(id).await.unwrap();
        let deleted = client.get_runner_scale_set_by_id(id).await.unwrap_err();
        assert!(deleted.is_not_found(), "{deleted}");
    });
}
