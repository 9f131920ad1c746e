//! For tests/scaleset_sim_contract.rs: the simulator on 127.0.0.1 with its admin API
//! and the `scaleset` crate's client pointed at it; [`app_runner`] plays a runner;
//! the other modules hold the tests of recovery ([`tokens`], [`sessions`]) and of the
//! crate's `Listener` ([`listener`]) and of the runner app's scripts ([`runner_app`]).

pub mod app_runner;
mod listener;
mod runner_app;
mod sessions;
mod tokens;

use std::future::Future;
use std::time::{Duration, Instant};

use github_sim::{SimConfig, SimServer};
use scaleset::reqwest::{self, Method, StatusCode};
use scaleset::{
    Client, Credentials, MessageId, MessageSession, RetryPolicy, RunnerScaleSetSpec, ScaleSetId,
    ScaleSetMessage, ScaleSetStatistics,
};
use serde_json::{json, Value};

pub const PAT: &str = "ghp_scalesetSimContract000000001";

/// Runs an async test body on a runtime of its own (the simulator has another).
pub fn run<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(body)
}

pub struct Lab {
    pub server: SimServer,
    pub http: reqwest::Client,
}

impl Lab {
    /// A simulator with org `acme` and repositories `acme/web` and `acme/api`. Built
    /// outside any runtime: the simulator starts its own.
    pub fn start() -> Lab {
        let mut config = SimConfig::new(PAT);
        config.orgs = vec!["acme".into()];
        config.repos = vec!["acme/web".into(), "acme/api".into()];
        let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Lab { server, http }
    }

    /// The crate's client for `path` (`acme` or `acme/web`), fast retries.
    pub fn client(&self, path: &str) -> Client {
        let retry = RetryPolicy::default()
            .min_wait(Duration::from_millis(20))
            .max_wait(Duration::from_millis(200));
        let url = format!("{}/{path}", self.server.url);
        Client::builder(url, Credentials::personal_access_token(PAT).unwrap())
            .allow_http(true)
            .retry_policy(retry)
            .build()
            .unwrap()
    }

    /// Any request: the status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.server.url)
        };
        let mut request = self.http.request(method, url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, None, body).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn set_long_poll(&self, secs: f64) {
        let body = json!({"secs": secs});
        self.admin(Method::POST, "/_sim/scalesets/long-poll", Some(body))
            .await;
    }

    /// Queues a push job of `repository`; its id.
    pub async fn queue_job(&self, repository: &str, labels: &[&str]) -> u64 {
        let spec = json!({"repository": repository, "labels": labels, "event_name": "push",
            "event": {"ref": "refs/heads/main"}, "steps": ["true"]});
        let job = self.admin(Method::POST, "/_sim/jobs", Some(spec)).await;
        job["id"].as_u64().unwrap()
    }

    pub async fn job(&self, id: u64) -> Value {
        self.admin(Method::GET, &format!("/_sim/jobs/{id}"), None)
            .await
    }

    /// The admin view of scale set `id`.
    pub async fn scale_set(&self, id: ScaleSetId) -> Value {
        let all = self.admin(Method::GET, "/_sim/scalesets", None).await;
        let found = all.as_array().unwrap().iter().find(|s| s["id"] == id.get());
        found
            .cloned()
            .unwrap_or_else(|| panic!("no scale set {id} in {all}"))
    }

    /// The statistics the admin view computes from the world, read as the crate reads
    /// a message's.
    pub async fn statistics(&self, id: ScaleSetId) -> ScaleSetStatistics {
        serde_json::from_value(self.scale_set(id).await["statistics"].clone()).unwrap()
    }

    pub async fn counter(&self, route: &str) -> u64 {
        let counters = self.admin(Method::GET, "/_sim/counters", None).await;
        counters[route].as_u64().unwrap_or(0)
    }

    /// Names of the runners the REST API lists for org `acme`.
    pub async fn rest_runner_names(&self) -> Vec<String> {
        let auth = format!("token {PAT}");
        let (status, list) = self
            .call(
                Method::GET,
                "/api/v3/orgs/acme/actions/runners",
                Some(&auth),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let runners = list["runners"].as_array().unwrap();
        runners
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn create_set(client: &Client, name: &str, labels: &[&str]) -> ScaleSetId {
    let spec = RunnerScaleSetSpec::new(name).labels(labels.iter().copied());
    client.create_runner_scale_set(&spec).await.unwrap().id
}

/// The next message after `last`, which must come within the long poll.
pub async fn next_message(session: &MessageSession, last: Option<MessageId>) -> ScaleSetMessage {
    let message = session.get_message(last, 4).await.unwrap();
    message.unwrap_or_else(|| panic!("no message after {last:?}"))
}
