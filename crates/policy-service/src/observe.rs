//! What the service tells an operator: every check counted by route template and result
//! with its latency ([`ghr_metrics::PolicyMetrics`]), served as `GET /metrics` on the
//! charm's loopback listener only, and every refusal appended to the service's own
//! lifecycle event log. Handlers leave a [`Verdict`] on a check's response;
//! [`count_checks`], a middleware around the runners' routes, reads it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ghr_metrics::events::{Event, EventLog};
use ghr_metrics::{PolicyMetrics, PolicyResult};

use super::server::AppState;

/// The lifecycle log turns over at this size ...
pub const EVENTS_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// ... keeping this many older files beside the live one.
pub const EVENTS_KEEP: usize = 3;

/// The service's metrics and, when it was given one, its event log.
pub struct Observer {
    metrics: PolicyMetrics,
    events: Option<EventLog>,
}

impl Default for Observer {
    fn default() -> Self {
        Observer::new(None)
    }
}

impl Observer {
    pub fn new(events: Option<EventLog>) -> Self {
        let metrics = PolicyMetrics::new();
        metrics.zero(&crate::server::CHECK_ENDPOINTS);
        Observer { metrics, events }
    }

    /// The text a scrape of `/metrics` gets.
    pub fn exposition(&self) -> String {
        self.metrics.exposition()
    }

    fn record(
        &self,
        endpoint: &str,
        verdict: Option<&Verdict>,
        status: Option<u16>,
        started: Instant,
    ) {
        let result = classify(verdict, status);
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.check(endpoint, result, seconds);
        let (Some(events), Some(Verdict::Refused { repository, reason })) = (&self.events, verdict)
        else {
            return;
        };
        // A line of a few hundred bytes appended to a local file: short enough to
        // write from the request's task.
        events.record(&Event::RefusedByPolicy {
            repository: repository.clone(),
            endpoint: endpoint.to_string(),
            reason: reason.clone(),
        });
    }
}

/// What a check decided about the job, left in its response's extensions by the handler
/// that ran it. A response without one never reached a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every enabled rule holds: the job may run (204).
    Allowed,
    /// A rule refused the job (403 with the rule's reason). `repository` is the job's
    /// repository as the request named it (empty when the always-fail route got none).
    Refused { repository: String, reason: String },
    /// The rules could not be evaluated (500): GitHub unreachable, erroring or rate
    /// limited, or the check's thread failed.
    Error,
}

/// The result a check is counted under.
///
/// - `allowed`: the rules let the job run.
/// - `refused`: the policy refused the job: a rule failed, the default check turned
///   away an event carrying a pull request, or the runner is configured to refuse
///   everything (always-fail). Each one is also a `refused-by-policy` event.
/// - `rejected`: not a valid check, turned away before any rule ran (no, unknown, used
///   or another runner's token, or the charm's: 401/403; a body that is not JSON, lacks
///   a field or is too big: 400/413/415; a wrong method: 405): a 4xx answer with no
///   verdict. Apart from errors because a job inside a runner can send these at will:
///   it must not be able to fire the error alert or hide a real error among its own.
/// - `error`: the service reached no verdict through no fault of the caller: the rules
///   could not be evaluated (GitHub unreachable, erroring or rate limited), or no answer
///   went out at all (the request's time limit passed, or the runner hung up).
///
/// The pre-job script denies the job in every case but `allowed`.
pub fn classify(verdict: Option<&Verdict>, status: Option<u16>) -> PolicyResult {
    match verdict {
        Some(Verdict::Allowed) => PolicyResult::Allowed,
        Some(Verdict::Refused { .. }) => PolicyResult::Refused,
        None if status.is_some_and(|s| (400..500).contains(&s)) => PolicyResult::Rejected,
        Some(Verdict::Error) | None => PolicyResult::Error,
    }
}

/// The route template when the request is a check (`/push/check-run`, ...): the label
/// is the template axum matched, never the path as sent, so it takes only the values of
/// the runners' router and no repository name. Anything else (`/health`, unknown paths)
/// is not a check.
fn check_endpoint(request: &Request) -> Option<String> {
    let matched = request.extensions().get::<MatchedPath>()?.as_str();
    matched.ends_with("/check-run").then(|| matched.to_string())
}

/// The middleware on the runners' routes: times each check from when its request
/// reached the router (before the token and the body are read) to its answer, and
/// records it.
pub(crate) async fn count_checks(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(endpoint) = check_endpoint(&request) else {
        return next.run(request).await;
    };
    let mut pending = Pending {
        state,
        endpoint,
        started: Instant::now(),
        done: false,
    };
    let response = next.run(request).await;
    let status = response.status().as_u16();
    pending.finish(response.extensions().get::<Verdict>(), Some(status));
    response
}

/// A check under way; dropped unfinished (its time limit passed, or the connection
/// went), it counts as an error.
struct Pending {
    state: Arc<AppState>,
    endpoint: String,
    started: Instant,
    done: bool,
}

impl Pending {
    fn finish(&mut self, verdict: Option<&Verdict>, status: Option<u16>) {
        self.done = true;
        let observer = self.state.observer();
        observer.record(&self.endpoint, verdict, status, self.started);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.finish(None, None);
        }
    }
}

/// `GET /metrics` (the charm's listener): counts by route and result only, nothing
/// secret, so it asks for no token; the COS agent on the host scrapes it as it is.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let content_type = [(header::CONTENT_TYPE, ghr_metrics::CONTENT_TYPE)];
    (content_type, state.observer().exposition()).into_response()
}

#[cfg(test)]
#[path = "observe_tests.rs"]
mod tests;
