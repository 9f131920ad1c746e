//! Serde types for the runner endpoints of GitHub's REST API, with newtypes for ids and
//! names. Only the fields the charm uses are required; the rest are optional so that
//! GHES versions with fewer fields still parse.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use ghr_types::Secret;

/// A runner's numeric id on GitHub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunnerId(pub u64);

impl fmt::Display for RunnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

pub use ghr_types::RunnerName;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub name: String,
    /// `read-only` (default labels) or `custom`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerStatus {
    Online,
    Offline,
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    pub id: RunnerId,
    pub name: RunnerName,
    pub os: String,
    pub status: RunnerStatus,
    pub busy: bool,
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_group_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<bool>,
}

impl Runner {
    pub fn is_online(&self) -> bool {
        self.status == RunnerStatus::Online
    }
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().map(|l| l.name.as_str())
    }
}

/// One page of `GET .../actions/runners`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RunnerPage {
    pub total_count: u64,
    pub runners: Vec<Runner>,
}

/// A registration or remove token: single purpose, valid for one hour.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RegistrationToken {
    pub token: Secret,
    pub expires_at: DateTime<Utc>,
}

/// One runner application build GitHub offers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunnerDownload {
    pub os: String,
    pub architecture: String,
    pub download_url: String,
    pub filename: String,
    #[serde(default)]
    pub sha256_checksum: Option<String>,
    #[serde(default, skip_serializing)]
    pub temp_download_token: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunnerGroup {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub default: bool,
}

/// One page of `GET /orgs/{org}/actions/runner-groups`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RunnerGroupPage {
    pub total_count: u64,
    pub runner_groups: Vec<RunnerGroup>,
}

/// What the charm asks `generate-jitconfig` for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JitRequest {
    pub name: RunnerName,
    pub runner_group_id: u64,
    pub labels: Vec<String>,
    pub work_folder: String,
}

/// A just-in-time runner: registered already (ephemeral), started with the config.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct JitConfig {
    pub runner: Runner,
    pub encoded_jit_config: Secret,
}

/// What deleting a registration came to; a busy runner is left for a later reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// GitHub refused (422): the runner is running a job, or its job is not yet given up.
    Busy,
}

/// The `x-ratelimit-*` figures of the last response, for status and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    pub used: u64,
    pub reset: DateTime<Utc>,
    pub resource: String,
}

impl RateLimit {
    /// When the budget refills, in UTC to the second (`2024-05-01T12:00:00Z`).
    pub fn reset_utc(&self) -> String {
        self.reset
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} requests left until {}",
            self.remaining,
            self.limit,
            self.reset_utc()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_parses_github_shape() {
        let json = r#"{"id":23,"name":"r1","os":"linux","status":"online","busy":true,
            "labels":[{"id":5,"name":"self-hosted","type":"read-only"},{"name":"x"}],
            "runner_group_id":1,"ephemeral":true}"#;
        let r: Runner = serde_json::from_str(json).unwrap();
        assert_eq!(r.id, RunnerId(23));
        assert!(r.is_online() && r.busy);
        assert_eq!(r.label_names().collect::<Vec<_>>(), ["self-hosted", "x"]);
        let weird: Runner = serde_json::from_str(
            r#"{"id":1,"name":"a","os":"linux","status":"starting","busy":false,"labels":[]}"#,
        )
        .unwrap();
        assert_eq!(weird.status, RunnerStatus::Unknown);
    }

    #[test]
    fn rate_limit_shows_its_reset_in_utc() {
        let limit = RateLimit {
            limit: 5000,
            remaining: 4990,
            used: 10,
            reset: DateTime::from_timestamp(1_714_564_800, 0).unwrap(),
            resource: "core".into(),
        };
        assert_eq!(limit.reset_utc(), "2024-05-01T12:00:00Z");
        assert_eq!(
            limit.to_string(),
            "4990 of 5000 requests left until 2024-05-01T12:00:00Z"
        );
    }

    #[test]
    fn registration_token_debug_is_redacted() {
        let t: RegistrationToken = serde_json::from_str(
            r#"{"token":"AAAASECRETTOKEN","expires_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("SECRET"));
    }
}
