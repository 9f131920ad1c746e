//! What the client tells [`ghr_types::telemetry`] about each request it sends: its
//! method, a bounded route template, how it ended; and GitHub's core rate limit.
//!
//! A route is the request's path below the transport's base URL (so GHES's `/api/v3`
//! and the Actions service's per-tenant prefix drop out), with every segment that is
//! not one of [`ROUTE_WORDS`] replaced by `{}`. URLs outside any base get a fixed name.

use ghr_types::telemetry::{self, Api, Call, Outcome};

use super::models::RateLimit;
use super::retry::Attempt;

/// Every path word of the routes this client builds; anything else in a path (an
/// owner, repository, runner, branch, user, id) becomes `{}`. A new endpoint whose
/// word is missing here shows `{}` in its route: bounded still, but add the word.
pub const ROUTE_WORDS: &[&str] = &[
    // REST, runner endpoints (client.rs) and the scale-set registration (scaleset/).
    "orgs",
    "repos",
    "actions",
    "runners",
    "registration-token",
    "remove-token",
    "downloads",
    "generate-jitconfig",
    "runner-groups",
    "runner-registration",
    // REST, the repository reads of the policy checks (repos.rs).
    "branches",
    "protection",
    "collaborators",
    "permission",
    "pulls",
    "issues",
    "comments",
    "rate_limit",
    // REST, a GitHub App installation's token exchange (credential.rs).
    "app",
    "installations",
    "access_tokens",
    // The Actions service (scaleset/): `0` is the one agent pool it has.
    "_apis",
    "runtime",
    "runnerscalesets",
    "runnergroups",
    "generatejitconfig",
    "sessions",
    "acquirejobs",
    "distributedtask",
    "pools",
    "0",
    "agents",
];

/// The route of a scale-set message-queue request (poll or acknowledgement): the queue
/// URL is the service's own, on a host and path of its choosing.
pub const MESSAGE_QUEUE: &str = "message-queue";

/// The route of a runner tarball download: a URL on a release host, not the API.
pub const RUNNER_TARBALL: &str = "runner-tarball";

/// The template of `url_path` (no host, no query) below `base_path`, the path of the
/// transport's base URL. A path outside the base is templated whole.
pub fn route(base_path: &str, url_path: &str) -> String {
    let base = base_path.trim_end_matches('/');
    let below = url_path
        .strip_prefix(base)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(url_path);
    telemetry::route_template(below, ROUTE_WORDS)
}

/// How one attempt ended, as the observer counts it.
pub fn outcome(attempt: &Attempt) -> Outcome {
    match attempt {
        Attempt::Response(response) => Outcome::Status(response.status),
        Attempt::Transport(_) => Outcome::Transport,
    }
}

pub fn report(method: &str, route: &str, outcome: Outcome) {
    telemetry::report_call(&Call {
        api: Api::Github,
        method,
        route,
        outcome,
    });
}

/// Reports the `core` limit only: other resources (search, GraphQL, runner
/// registration) have limits of their own, and one gauge fed by several would jump
/// between them.
pub fn report_rate_limit(limit: &RateLimit) {
    if limit.resource != "core" {
        return;
    }
    telemetry::report_rate_limit(&telemetry::RateLimit {
        limit: limit.limit,
        remaining: limit.remaining,
        reset_epoch_secs: u64::try_from(limit.reset.timestamp()).unwrap_or(0),
    });
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
