//! The charm's side of the policy service: fetch a one-time token for a new runner,
//! revoke it when the runner is removed, replace the policy document, ask for health. Blocking (ureq), loopback only, no proxy.

use std::time::Duration;

use super::document::PolicyDocument;
use ghr_types::Token;

/// Why a call to the policy service failed. Never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service could not be reached (not running yet, wrong address) or did not
    /// answer in time.
    #[error("policy service unreachable at {url}: {message}")]
    Unreachable {
        url: String,
        message: String,
        /// No connection at all (refused): nothing listens there. `false` when the
        /// connection was made and the answer did not come (timeout, reset).
        connect_failed: bool,
    },
    /// The service answered with an error status; `message` is its text.
    #[error("policy service answered {status} to {path}: {message}")]
    Status {
        path: String,
        status: u16,
        message: String,
    },
    /// The service answered 200 with something that is not a one-time token.
    #[error("policy service returned a malformed one-time token")]
    MalformedToken,
}

/// A client holding the charm token.
pub struct PolicyClient {
    agent: ureq::Agent,
    base: String,
    charm_token: Token,
}

impl PolicyClient {
    /// `base` like `http://127.0.0.1:8080`.
    pub fn new(base: &str, charm_token: Token) -> Self {
        Self::with_timeout(base, charm_token, Duration::from_secs(10))
    }

    /// A client whose every call gives up after `timeout` (the health check before a
    /// reconcile must not hold the hook).
    pub fn with_timeout(base: &str, charm_token: Token, timeout: Duration) -> Self {
        // No proxy: the service is on this host, and the agent ignores proxy variables.
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        PolicyClient {
            agent,
            base: base.trim_end_matches('/').to_string(),
            charm_token,
        }
    }

    /// A fresh one-time token for the pre-job script of runner `runner` alone.
    pub fn one_time_token(&self, runner: &str) -> Result<Token, ClientError> {
        let response = self.call("GET", &token_path(runner), None)?;
        let text = response
            .into_string()
            .map_err(|_| ClientError::MalformedToken)?;
        let token = text.trim();
        if token.len() != 64 || !token.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ClientError::MalformedToken);
        }
        Ok(Token::new(token))
    }

    /// Revokes runner `runner`'s unused one-time token, if it has one.
    pub fn revoke_one_time_token(&self, runner: &str) -> Result<(), ClientError> {
        self.call("DELETE", &token_path(runner), None).map(|_| ())
    }

    /// Replaces the active policy document (the service stores it).
    pub fn set_policy(&self, document: &PolicyDocument) -> Result<(), ClientError> {
        let body = serde_json::to_string(document).expect("a policy document serialises");
        self.call("POST", "/policy", Some(&body)).map(|_| ())
    }

    /// Whether the service is up and GitHub answers it with its token.
    pub fn health(&self) -> Result<(), ClientError> {
        self.call("GET", "/health", None).map(|_| ())
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<ureq::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        let request = self.agent.request(method, &url).set(
            "Authorization",
            &format!("Bearer {}", self.charm_token.expose()),
        );
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(body),
            None => request.call(),
        };
        match result {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(status, response)) => Err(ClientError::Status {
                path: path.to_string(),
                status,
                message: response
                    .into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect(),
            }),
            Err(ureq::Error::Transport(t)) => Err(ClientError::Unreachable {
                url: self.base.clone(),
                connect_failed: t.kind() == ureq::ErrorKind::ConnectionFailed,
                message: t.to_string(),
            }),
        }
    }
}

/// `/one-time-token?runner=NAME`, the name percent-encoded.
fn token_path(runner: &str) -> String {
    let encoded: String = runner
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/one-time-token?runner={encoded}")
}
