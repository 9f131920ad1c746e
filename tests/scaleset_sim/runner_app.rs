//! The simulator's runner app itself (run.sh and Runner.Listener, as host processes,
//! the way the charm runs them in containers) takes a scale-set JIT config exactly as
//! a REST one: it connects, runs the job its scale set acquired with the job-started
//! hook and the steps, reports it, and the scale set hears JobStarted and JobCompleted.
//! Needs bash, curl, jq and tar (scripts/deps.sh), like tests/github_runner_app.rs.

use std::time::Duration;

use scaleset::{Client, Credentials, ExposeSecret, JitRunnerSetting, JobMessage};
use serde_json::json;

use super::{create_set, next_message, run};
use crate::runner_app_support::{assert_job_ran, skip, spawn, Setup, PAT};

#[test]
fn the_runner_app_runs_a_scale_set_job_from_its_jit_config() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("ss-app", 0);
    let long_poll = json!({"secs": 1});
    setup.admin("POST", "/_sim/scalesets/long-poll", Some(long_poll));
    let url = format!("{}/acme", setup.server.url);
    let credentials = Credentials::personal_access_token(PAT).unwrap();
    let client = Client::builder(url, credentials).allow_http(true).build();
    let client = client.unwrap();
    run(async {
        let id = create_set(&client, "app-set", &[]).await;
        let session = client.create_message_session(id, "app").await.unwrap();
        let setting = JitRunnerSetting::new("ss-app");
        let jit = client.generate_jit_config(id, &setting).await.unwrap();
        let config = jit.encoded_jit_config.expose_secret();
        let mut runner = spawn(&root, &["--jitconfig", config]);
        let job = setup.queue_job("ss-app", &["app-set"]);
        let offer = next_message(&session, None).await;
        let request: Vec<_> = offer
            .jobs_available()
            .map(|j| j.job.runner_request_id)
            .collect();
        assert_eq!(session.acquire_jobs(&request).await.unwrap(), request);
        session.delete_message(offer.id).await.unwrap();

        let exited = tokio::task::spawn_blocking(move || runner.wait_exit(Duration::from_secs(30)));
        assert!(
            exited.await.unwrap().success(),
            "an ephemeral runner exits after its job"
        );
        assert_job_ran(&setup, "ss-app", job, "success");
        let mut last = offer.id;
        let mut heard = Vec::new();
        while !heard.contains(&"completed") {
            let message = next_message(&session, Some(last)).await;
            session.delete_message(message.id).await.unwrap();
            last = message.id;
            heard.extend(message.jobs.iter().map(|m| match m {
                JobMessage::Assigned(_) => "assigned",
                JobMessage::Started(s) if s.runner_name == "ss-app" => "started",
                JobMessage::Completed(c) if c.result == "succeeded" => "completed",
                _ => "other",
            }));
        }
        assert_eq!(heard, ["assigned", "started", "completed"]);
        assert!(client.get_runner_by_name("ss-app").await.unwrap().is_none());
        session.close().await.unwrap();
    });
}
