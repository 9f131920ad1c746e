//! The charm's one-time token routes: issue a token for one runner, revoke a removed
//! runner's token. Both name the runner in the `runner` query parameter.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::{Authorized, CharmRole};
use super::request::{text, Reject};
use super::server::AppState;
use super::tokens::IssueError;

/// The `runner` query parameter: which runner a token is for.
fn runner_param(query: &HashMap<String, String>) -> Result<&str, Reject> {
    query
        .get("runner")
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Reject::bad_request("missing query parameter: runner"))
}

/// `GET /one-time-token?runner=NAME`: a token only `NAME` may use, once.
pub(super) async fn issue(
    _: Authorized<CharmRole>,
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Reject> {
    let runner = runner_param(&query)?;
    match state.tokens.issue(runner) {
        Ok(token) => Ok(text(StatusCode::OK, token)),
        Err(IssueError::BadRunnerName) => Err(Reject::bad_request(format!(
            "query parameter runner: {}",
            IssueError::BadRunnerName
        ))),
        Err(e) => {
            log::error!("cannot issue a one-time token: {e}");
            Err(Reject::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot store the one-time token; see the service log",
            ))
        }
    }
}

/// `DELETE /one-time-token?runner=NAME`: the charm removes runner `NAME`; its unused
/// token, if any, is refused from now on. 204 either way.
pub(super) async fn revoke(
    _: Authorized<CharmRole>,
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Reject> {
    let runner = runner_param(&query)?.to_string();
    let revoked =
        tokio::task::spawn_blocking(move || state.tokens.revoke(&runner).map(|had| (runner, had)))
            .await
            .map_err(|e| Reject::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match revoked {
        Ok((runner, true)) => log::info!("revoked the one-time token of runner {runner}"),
        Ok((_, false)) => {}
        // Forgotten in memory all the same; the file keeps it until it expires.
        Err(e) => log::error!("cannot store a revoked one-time token: {e}"),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
