//! The crate's `Listener` with a scaler that starts one JIT runner per assigned job,
//! on two scale sets that both fit a burst of jobs: every job runs once, on its own
//! runner, and each listener closes its session on shutdown.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scaleset::listener::{Event, Listener, Scaler};
use scaleset::reqwest::Method;
use scaleset::{BoxError, Client, ExposeSecret, JitRunnerSetting, ScaleSetId};

use super::app_runner::AppRunner;
use super::{create_set, run, wait_for, Lab};

const MINUTE: Duration = Duration::from_secs(60);

/// Keeps one JIT runner per assigned job, as the crate's docs tell a scaler to; the
/// runners speak the runner app's protocol. Records every JobStarted it hears.
struct RunnerPerJob {
    client: Client,
    set: ScaleSetId,
    lab: Arc<Lab>,
    runners: HashMap<String, tokio::task::JoinHandle<u64>>,
    started: Arc<Mutex<Vec<i64>>>,
}

impl Scaler for RunnerPerJob {
    type Error = BoxError;

    async fn scale(&mut self, event: Event<'_>) -> Result<(), BoxError> {
        if let Some(message) = event.message() {
            let mut started = self.started.lock().unwrap();
            started.extend(
                message
                    .jobs_started()
                    .map(|j| j.job.runner_request_id.get()),
            );
            for done in message.jobs_completed() {
                self.runners.remove(&done.runner_name);
            }
        }
        while self.runners.len() < event.statistics().total_assigned_jobs as usize {
            let setting = JitRunnerSetting::unique(&format!("burst-{}", self.set));
            let jit = self.client.generate_jit_config(self.set, &setting).await?;
            let runner = AppRunner::from_jit(jit.encoded_jit_config.expose_secret());
            let lab = self.lab.clone();
            let task = tokio::spawn(async move { runner.run_one_job(&lab).await });
            self.runners.insert(setting.name, task);
        }
        Ok(())
    }
}

#[test]
fn listeners_on_two_scale_sets_serve_a_burst_and_no_job_runs_twice() {
    let lab = Arc::new(Lab::start());
    run(async {
        lab.set_long_poll(1.0).await;
        let client = lab.client("acme");
        let started = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut listeners = Vec::new();
        let mut sets = BTreeSet::new();
        for name in ["burst-a", "burst-b"] {
            let set = create_set(&client, name, &["burst"]).await;
            sets.insert(set.get());
            let mut scaler = RunnerPerJob {
                client: client.clone(),
                set,
                lab: lab.clone(),
                runners: HashMap::new(),
                started: started.clone(),
            };
            let listener = Listener::new(client.clone(), set, 10)
                .owner(name)
                .backoff(Duration::from_millis(100), Duration::from_secs(1));
            let mut stopped = stopped.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            listeners.push(tokio::spawn(async move {
                listener.run(&mut scaler, shutdown).await
            }));
        }
        let mut jobs = Vec::new();
        for _ in 0..6 {
            jobs.push(lab.queue_job("acme/web", &["self-hosted", "burst"]).await);
        }
        wait_for("the burst to complete", MINUTE, || async {
            let all = lab.admin(Method::GET, "/_sim/jobs", None).await;
            all.as_array()
                .unwrap()
                .iter()
                .all(|j| j["state"] == "completed")
        })
        .await;
        let mut runners = BTreeSet::new();
        for job in &jobs {
            let state = lab.job(*job).await;
            assert_eq!(state["conclusion"], "success", "{state}");
            assert!(
                sets.contains(&state["scale_set_id"].as_i64().unwrap()),
                "{state}"
            );
            assert!(
                runners.insert(state["runner_id"].as_u64().unwrap()),
                "a runner ran two jobs: {state}"
            );
        }
        wait_for("every JobStarted heard", MINUTE, || async {
            started.lock().unwrap().len() >= jobs.len()
        })
        .await;
        let mut heard = started.lock().unwrap().clone();
        heard.sort();
        assert_eq!(
            heard,
            jobs.iter().map(|j| *j as i64).collect::<Vec<_>>(),
            "each job started once"
        );
        for set in &sets {
            let view = lab.scale_set(ScaleSetId(*set)).await;
            assert_eq!(view["session"]["max_capacity"], 10, "{view}");
        }
        stop.send(true).unwrap();
        for listener in listeners {
            listener.await.unwrap().unwrap();
        }
        for set in sets {
            assert!(
                lab.scale_set(ScaleSetId(set)).await["session"].is_null(),
                "closed on shutdown"
            );
        }
    });
}
