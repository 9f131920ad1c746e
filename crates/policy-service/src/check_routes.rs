//! The runners' check-run handlers: each reads its body into a [`CheckRequest`], runs
//! the rules off the async threads and answers 204, 403 or 500, leaving the
//! [`Verdict`] on the response for the metrics and the event log (`observe`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::{Authorized, OneTimeRole};
use super::checks::{self, CheckRequest, Outcome, PullRequestInput, RepositoryEvent};
use super::github::RepoName;
use super::observe::Verdict;
use super::request::{commit_sha, field, json_object, repo_field, text, Reject};
use super::server::AppState;

pub(super) async fn pull_request_check(
    _: Authorized<OneTimeRole>,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let b = json_object(&headers, &body)?;
    if let Some(number) = b.get("pull_request_number") {
        let number = number.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            Reject::bad_request("field pull_request_number must be a positive integer")
        })?;
        let repository = repo_field(&b, "repository_name")?;
        let request = CheckRequest::PullRequestNumber { repository, number };
        return Ok(run_check(state, request).await);
    }
    let input = PullRequestInput {
        repository: repo_field(&b, "repository_name")?,
        source_repository: repo_field(&b, "source_repository_name")?,
        target_branch: field(&b, "target_branch_name")?.to_string(),
        source_branch: field(&b, "source_branch_name")?.to_string(),
        commit_sha: commit_sha(field(&b, "commit_sha")?)?,
    };
    Ok(run_check(state, CheckRequest::PullRequest(input)).await)
}

pub(super) async fn repository_check(
    _: Authorized<OneTimeRole>,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
    event: RepositoryEvent,
) -> Result<Response, Reject> {
    let repository = repo_field(&json_object(&headers, &body)?, "repository_name")?;
    Ok(run_check(state, CheckRequest::Repository { event, repository }).await)
}

/// An event with no rules of its own. The body names the event and whether its
/// payload carries a pull request; either way such an event is refused here.
pub(super) async fn default_check(
    _: Authorized<OneTimeRole>,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let b = json_object(&headers, &body)?;
    let repository: RepoName = repo_field(&b, "repository_name")?;
    let event_name = field(&b, "event_name")?;
    let carries = match b.get("carries_pull_request") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(v)) => *v,
        Some(_) => {
            return Err(Reject::bad_request(
                "field carries_pull_request must be a boolean",
            ))
        }
    };
    if let Some(reason) = checks::default_refusal(event_name, carries) {
        log::warn!("check-run default {event_name} {repository}: fail: {reason}");
        return Ok(refused(&repository, reason));
    }
    let event = RepositoryEvent::Push;
    Ok(run_check(state, CheckRequest::Repository { event, repository }).await)
}

/// Refuses every job. The body is read only to name the repository in the event log:
/// whatever it holds, the answer is the same.
pub(super) async fn always_fail(
    _: Authorized<OneTimeRole>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let reason = "always-fail: this runner refuses every job by configuration";
    let repository = json_object(&headers, &body)
        .ok()
        .and_then(|b| repo_field(&b, "repository_name").ok())
        .map(|r| r.to_string())
        .unwrap_or_default();
    Ok(decided(
        text(StatusCode::FORBIDDEN, reason),
        Verdict::Refused {
            repository,
            reason: reason.to_string(),
        },
    ))
}

/// Runs the blocking GitHub reads off the async threads and maps the outcome.
async fn run_check(state: Arc<AppState>, request: CheckRequest) -> Response {
    let policy = state.policy();
    let subject = match &request {
        CheckRequest::PullRequest(i) => format!(
            "pull_request {}:{} -> {}",
            i.source_repository, i.source_branch, i.repository
        ),
        CheckRequest::PullRequestNumber { repository, number } => {
            format!("pull_request #{number} -> {repository}")
        }
        CheckRequest::Repository { event, repository } => format!("{event:?} {repository}"),
    };
    // The job's repository (a pull request's target), for the event log.
    let repository = match &request {
        CheckRequest::PullRequest(i) => i.repository.clone(),
        CheckRequest::PullRequestNumber { repository, .. }
        | CheckRequest::Repository { repository, .. } => repository.clone(),
    };
    let api = state.api();
    let outcome =
        tokio::task::spawn_blocking(move || checks::check(api.as_ref(), &policy, &request)).await;
    match outcome {
        Ok(Outcome::Pass) => {
            log::info!("check-run {subject}: pass");
            decided(StatusCode::NO_CONTENT.into_response(), Verdict::Allowed)
        }
        Ok(Outcome::Fail(reason)) => {
            log::info!("check-run {subject}: fail: {reason}");
            refused(&repository, reason)
        }
        Ok(Outcome::Error(reason)) => {
            log::error!("check-run {subject}: error: {reason}");
            let response = text(StatusCode::INTERNAL_SERVER_ERROR, reason);
            decided(response, Verdict::Error)
        }
        Err(e) => {
            let response = text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("check failed: {e}"),
            );
            decided(response, Verdict::Error)
        }
    }
}

/// 403 with `reason`, a refusal of a job of `repository`.
fn refused(repository: &RepoName, reason: String) -> Response {
    let response = text(StatusCode::FORBIDDEN, reason.clone());
    let repository = repository.to_string();
    decided(response, Verdict::Refused { repository, reason })
}

fn decided(mut response: Response, verdict: Verdict) -> Response {
    response.extensions_mut().insert(verdict);
    response
}
