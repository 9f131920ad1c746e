//! What wraps every actions-service route and `runner-registration`: the per-route
//! counter and the injected faults of `/_sim/faults`, under the same `METHOD /template`
//! names as the REST routes. Not the PAT check or the REST rate limit: these routes
//! take their own tokens and GitHub does not count them against the REST budget.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::api::{dropped_connection, error, template};
use crate::faults::Fault;
use crate::Sim;

pub(super) async fn guard(
    State(sim): State<Arc<Sim>>,
    matched: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_string();
    let template = template(matched.as_str());
    let fault = {
        let mut world = sim.lock();
        *world
            .counters
            .entry(format!("{method} {template}"))
            .or_default() += 1;
        world.take_fault(&method, &template)
    };
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    match injected(&fault) {
        Some(response) => response,
        // Only slow: the route answers after the latency.
        None => next.run(request).await,
    }
}

/// The answer a fault makes instead of the route's, if it makes one.
pub(crate) fn injected(fault: &Fault) -> Option<Response> {
    if fault.drop {
        return Some(dropped_connection());
    }
    if let Some(reset_in) = fault.rate_limit_reset_in {
        let reset = chrono::Utc::now().timestamp() + reset_in as i64;
        let mut response = error(StatusCode::FORBIDDEN, "API rate limit exceeded (injected)");
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
        headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
        return Some(response);
    }
    let status = StatusCode::from_u16(fault.status?).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = error(status, fault.message.as_deref().unwrap_or("injected fault"));
    if let Some(secs) = fault.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    Some(response)
}
