//! What wraps every GitHub route of the simulator, and its answer for paths it does not
//! serve: per-route counters, injected faults, authentication (`token` and `Bearer`
//! schemes; PATs, App installation tokens and JWTs, see [`super::auth`]), the hourly
//! rate-limit budget and the `x-ratelimit-*` headers; plus GitHub-shaped error bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};

use super::auth::{authenticate, Auth, VerifiedApp};
use super::faults::Fault;
use super::Sim;

const DOCS: &str = "https://docs.github.com/rest";

/// A GitHub error body: `{"message", "documentation_url"}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"message": message, "documentation_url": DOCS})),
    )
        .into_response()
}

/// The token of an `Authorization: token X` or `Authorization: Bearer X` header.
pub fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        .then(|| token.trim())
}

/// A route template or path without the GHES prefix, e.g. `/orgs/:org/actions/runners`.
pub fn template(path: &str) -> String {
    path.strip_prefix("/api/v3").unwrap_or(path).to_string()
}

/// Around every GitHub route: see [`guarded`].
pub async fn guard(
    State(sim): State<Arc<Sim>>,
    matched: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    guarded(&sim, template(matched.as_str()), request, |r| next.run(r)).await
}

/// A path GitHub does not serve: 404 with GitHub's JSON body, after the same counting,
/// faults, authentication and budget as any route (GitHub checks the token and counts
/// the request before it looks at the path). The counter is the path itself.
/// `/_sim/` is the admin API, not GitHub: a 404 there without any of that.
pub async fn unknown_route(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/_sim/") {
        return error(StatusCode::NOT_FOUND, "no such admin route");
    }
    guarded(&sim, template(&path), request, |_| async {
        error(StatusCode::NOT_FOUND, "Not Found")
    })
    .await
}

/// Counts the request under `METHOD template`, applies an injected fault, checks the
/// credentials ([`authenticate`]: a PAT, an installation token, or on the access-token
/// route an App's JWT) and spends the hourly budget, then lets `inner` answer; every
/// answer but a dropped connection carries the `x-ratelimit-*` headers.
async fn guarded<F, Fut>(sim: &Sim, template: String, mut request: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let method = request.method().as_str().to_string();
    let now = Utc::now();
    let (fault, auth, within_budget) = {
        let mut world = sim.lock();
        *world
            .counters
            .entry(format!("{method} {template}"))
            .or_default() += 1;
        let fault = world.take_fault(&method, &template);
        let path = request.uri().path();
        let auth = authenticate(&world, &template, path, request.headers(), now);
        // GitHub does not count `/rate_limit` against the budget, and answers it even
        // when the budget is spent.
        let within_budget =
            !matches!(auth, Auth::Refused(_)) && (template == "/rate_limit" || world.spend(now));
        (fault, auth, within_budget)
    };
    if let Some(fault) = fault {
        if let Some(response) = faulted(sim, fault, now).await {
            return response;
        }
    }
    let mut response = match auth {
        Auth::Refused(message) => error(StatusCode::UNAUTHORIZED, message),
        _ if !within_budget => error(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user. (simulated)",
        ),
        Auth::OutOfScope => error(StatusCode::NOT_FOUND, "Not Found"),
        Auth::App(app_id) => {
            request.extensions_mut().insert(VerifiedApp(app_id));
            inner(request).await
        }
        Auth::Granted => inner(request).await,
    };
    add_rate_headers(sim, response.headers_mut());
    log::debug!("{method} {template} -> {}", response.status());
    response
}

/// The answer an injected fault makes instead of the route's, after its latency;
/// `None` when it only slows the request down.
async fn faulted(sim: &Sim, fault: Fault, now: DateTime<Utc>) -> Option<Response> {
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    let mut response = crate::scaleset::guard::injected(&fault)?;
    // A REST answer carries GitHub's whole set of rate-limit headers.
    match fault.rate_limit_reset_in {
        Some(reset_in) => {
            let reset = now.timestamp() + reset_in as i64;
            set_rate_headers(response.headers_mut(), 5000, 0, reset);
        }
        None if !fault.drop => add_rate_headers(sim, response.headers_mut()),
        None => {}
    }
    Some(response)
}

fn add_rate_headers(sim: &Sim, headers: &mut HeaderMap) {
    let budget = sim.lock().budget.clone();
    set_rate_headers(
        headers,
        budget.limit,
        budget.remaining(),
        budget.reset.timestamp(),
    );
}

fn set_rate_headers(headers: &mut HeaderMap, limit: u64, remaining: u64, reset: i64) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert(
        "x-ratelimit-used",
        HeaderValue::from(limit.saturating_sub(remaining)),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
}

/// A response whose body fails at once: hyper aborts the connection, which the
/// client sees as a connection dropped mid-response.
pub(crate) fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected drop",
        ))
    });
    Response::new(Body::from_stream(failing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_token_and_bearer_schemes() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("token abc"));
        assert_eq!(presented_token(&h), Some("abc"));
        h.insert("authorization", HeaderValue::from_static("Bearer xyz"));
        assert_eq!(presented_token(&h), Some("xyz"));
        h.insert("authorization", HeaderValue::from_static("Basic xyz"));
        assert_eq!(presented_token(&h), None);
    }
}
