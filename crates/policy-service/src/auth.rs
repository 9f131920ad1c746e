//! Who sent a request. A middleware around every route, the fallback included, reads
//! the bearer token before the handler runs and before the body is read, so a one-time
//! token is used up by any request that presents it, whatever answer it gets (404, 405,
//! 413 alike). A one-time token counts only from the runner it was issued for, named
//! in the [`RUNNER_HEADER`]; presented by another it is refused and used up all the
//! same. Handlers then demand a role through the [`Authorized`] extractor.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::request::Reject;
use super::server::AppState;
use super::tokens::Refusal;

/// The header in which a runner's pre-job script names the runner.
pub const RUNNER_HEADER: &str = "x-runner-name";

/// What a valid token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// The charm's token: one-time tokens and the policy document.
    Charm,
    /// A runner's one-time token: one check-run.
    OneTime,
}

/// What the request's bearer token turned out to be, left in the request's extensions.
#[derive(Clone, Copy, Debug)]
enum Caller {
    /// No bearer token.
    Anonymous,
    /// Neither the charm's token nor an unused one-time token.
    Unknown,
    Known(Role),
}

/// The middleware: identifies (and, for a one-time token, uses up) the bearer token.
pub(super) async fn identify(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match bearer(request.headers()) {
        None => Caller::Anonymous,
        Some(token) if state.charm_token.matches(token) => Caller::Known(Role::Charm),
        Some(token) => match state.tokens.consume(token, runner(request.headers())) {
            Ok(()) => Caller::Known(Role::OneTime),
            Err(refusal) => {
                log_refusal(&refusal);
                Caller::Unknown
            }
        },
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Says why a known one-time token was refused (an unknown one is said by the handler).
fn log_refusal(refusal: &Refusal) {
    match refusal {
        Refusal::Unknown | Refusal::NotStored => {}
        Refusal::OtherRunner {
            issued_for,
            presented_as,
        } => log::warn!(
            "the one-time token of runner {issued_for} was presented as {}: refused and used up",
            presented_as.as_deref().unwrap_or("no runner")
        ),
        Refusal::Expired { runner } => {
            log::warn!("the one-time token of runner {runner} has expired: refused")
        }
    }
}

/// The runner named in the [`RUNNER_HEADER`], if any.
fn runner(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(RUNNER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|name| super::tokens::valid_runner_name(name))
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// A role as a type, for [`Authorized`].
pub(super) trait NeededRole {
    const ROLE: Role;
}

pub(super) struct CharmRole;
pub(super) struct OneTimeRole;

impl NeededRole for CharmRole {
    const ROLE: Role = Role::Charm;
}

impl NeededRole for OneTimeRole {
    const ROLE: Role = Role::OneTime;
}

/// Proof that the request's token has role `R`. Extracting it refuses the request
/// otherwise: 401 without a usable token, 403 with a token of another role.
pub(super) struct Authorized<R>(PhantomData<fn() -> R>);

#[axum::async_trait]
impl<S: Sync, R: NeededRole> FromRequestParts<S> for Authorized<R> {
    type Rejection = Reject;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Reject> {
        let caller = parts.extensions.get::<Caller>().copied();
        require(caller, R::ROLE, parts.uri.path()).map(|()| Authorized(PhantomData))
    }
}

fn require(caller: Option<Caller>, needed: Role, path: &str) -> Result<(), Reject> {
    // No verdict means the middleware did not run: nothing is known about the caller.
    match caller.unwrap_or(Caller::Anonymous) {
        Caller::Known(role) if role == needed => Ok(()),
        Caller::Known(role) => {
            log::warn!("{path}: refused a {role:?} token, which may not be used here");
            let message = "this token may not be used for this request";
            Err(Reject::new(StatusCode::FORBIDDEN, message))
        }
        Caller::Anonymous => {
            log::warn!("{path}: refused a request without a bearer token");
            let message = "a bearer token is required";
            Err(Reject::new(StatusCode::UNAUTHORIZED, message))
        }
        Caller::Unknown => {
            log::warn!("{path}: refused an unknown or used token");
            let message = "unknown or already used token";
            Err(Reject::new(StatusCode::UNAUTHORIZED, message))
        }
    }
}
