//! A runner started with a JIT config that speaks the runner app's protocol
//! (`/_sim/runner/...`) over HTTP, as run.sh and Runner.Listener do in a container.

use base64::Engine;
use scaleset::reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::Lab;

/// A runner started with a JIT config, speaking the runner app's protocol.
pub struct AppRunner {
    pub config: Value,
    auth: String,
}

impl AppRunner {
    /// Decodes the config as run.sh does: base64 JSON with `url`, `runner_id`, `name`,
    /// `credential` and `work_folder`.
    pub fn from_jit(encoded: &str) -> AppRunner {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let config: Value = serde_json::from_slice(&bytes).unwrap();
        for field in ["url", "runner_id", "name", "credential", "work_folder"] {
            assert!(
                !config[field].is_null(),
                "JIT config lacks {field}: {config}"
            );
        }
        let auth = format!("Bearer {}", config["credential"].as_str().unwrap());
        AppRunner { config, auth }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config["url"].as_str().unwrap())
    }

    pub async fn connect(&self, lab: &Lab) -> StatusCode {
        let url = self.url("/_sim/runner/session");
        lab.call(Method::POST, &url, Some(&self.auth), None).await.0
    }

    /// One poll; the job assignment if one came.
    pub async fn poll(&self, lab: &Lab, wait_secs: u64) -> Option<Value> {
        let url = self.url(&format!("/_sim/runner/poll?wait={wait_secs}"));
        let (status, job) = lab.call(Method::GET, &url, Some(&self.auth), None).await;
        (status == StatusCode::OK).then_some(job)
    }

    pub async fn complete(&self, lab: &Lab, job: u64, conclusion: &str) -> StatusCode {
        let url = self.url(&format!("/_sim/runner/jobs/{job}/complete"));
        let body = json!({"conclusion": conclusion});
        lab.call(Method::POST, &url, Some(&self.auth), Some(body))
            .await
            .0
    }

    /// What Runner.Listener does: connect, poll until a job comes, run it, report it.
    pub async fn run_one_job(&self, lab: &Lab) -> u64 {
        assert!(self.connect(lab).await.is_success());
        loop {
            if let Some(job) = self.poll(lab, 2).await {
                let id = job["job_id"].as_u64().unwrap();
                assert_eq!(
                    self.complete(lab, id, "success").await,
                    StatusCode::NO_CONTENT
                );
                return id;
            }
        }
    }
}
