//! The HTTP side of the policy service: the runners' and the charm's routes, handlers
//! that turn a caller's role (from `auth`) and body (read by `request`) into
//! [`CheckRequest`]s, outcomes to statuses. `serve` runs on given listeners (each kind
//! with its routes, through `listen`'s bounds) until a shutdown future resolves, so
//! tests start the real thing on `127.0.0.1:0`.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;

use super::auth::{self, Authorized, CharmRole, OneTimeRole};
use super::checks::{self, CheckRequest, Outcome, PullRequestInput, RepositoryEvent};
use super::document::{DocumentFile, Policy, PolicyDocument};
use super::github::RepoApi;
use super::github::RepoName;
use super::listen::{accept_loop, Gate, Limits};
use super::request::{commit_sha, field, json_object, repo_field, text, Reject};
use super::token_routes;
use super::token_store::TokenFile;
use super::tokens::{CharmToken, OneTimeTokens};
use super::PolicyError;

/// Everything a request handler needs.
pub struct AppState {
    pub(super) charm_token: CharmToken,
    pub(super) tokens: OneTimeTokens,
    policy: RwLock<Policy>,
    /// Serialises POST /policy so the file and the active policy always agree.
    document_lock: Mutex<()>,
    document_file: Option<DocumentFile>,
    api: Arc<dyn RepoApi>,
    /// The last health answer: anyone on the bridge may ask, so GitHub is asked at most
    /// once per [`HEALTH_CACHE`] however often /health is called.
    health: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

/// The largest request body read: a policy document or a check-run's fields are a few
/// hundred bytes, and anyone on the bridge can send one.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a health answer is reused.
const HEALTH_CACHE: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    /// Loads the stored policy document (or the default policy when there is none).
    pub fn new(
        charm_token: &str,
        api: Arc<dyn RepoApi>,
        document_file: Option<DocumentFile>,
    ) -> Result<Self, PolicyError> {
        if charm_token.is_empty() {
            return Err(PolicyError::MissingEnv("CHARM_TOKEN"));
        }
        let policy = match &document_file {
            Some(file) => file.load()?.map(|d| d.resolve()).unwrap_or_default(),
            None => Policy::default(),
        };
        Ok(AppState {
            charm_token: CharmToken::new(charm_token),
            tokens: OneTimeTokens::new(),
            policy: RwLock::new(policy),
            document_lock: Mutex::new(()),
            document_file,
            api,
            health: tokio::sync::Mutex::new(None),
        })
    }

    /// Keeps one-time tokens in `file` (replacing the in-memory store), so tokens that
    /// idle runners hold survive a restart of the service.
    pub fn with_token_file(mut self, file: TokenFile) -> Result<Self, PolicyError> {
        self.tokens = OneTimeTokens::persistent(file)?.with_ttl(self.tokens.ttl());
        Ok(self)
    }

    /// One-time tokens issued from now on live `ttl` (default [`super::tokens::DEFAULT_TTL`]).
    pub fn with_token_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.tokens = std::mem::take(&mut self.tokens).with_ttl(ttl);
        self
    }

    /// The active policy.
    pub fn policy(&self) -> Policy {
        *self.policy.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The runners' routes over `state`: the check-runs and /health, nothing that mints
/// tokens or changes the policy (those are [`charm_router`]'s, on loopback only).
pub fn runner_router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .route("/check-run", post(pull_request_check))
        .route("/pull_request/check-run", post(pull_request_check))
        .route(
            "/workflow_dispatch/check-run",
            repository_route(RepositoryEvent::WorkflowDispatch),
        )
        .route("/push/check-run", repository_route(RepositoryEvent::Push))
        .route(
            "/schedule/check-run",
            repository_route(RepositoryEvent::Schedule),
        )
        // Events without rules of their own are checked as a push, unless they carry a
        // pull request.
        .route("/default/check-run", post(default_check))
        .route("/always-fail/check-run", post(always_fail))
        .route("/health", get(health));
    with_auth(routes, state)
}

/// The charm's routes over `state`: one-time tokens, the policy document and /health.
pub fn charm_router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .route(
            "/one-time-token",
            get(token_routes::issue).delete(token_routes::revoke),
        )
        .route("/policy", post(set_policy))
        .route("/health", get(health));
    with_auth(routes, state)
}

/// The token middleware wraps every route and the fallback, so it sees requests that
/// end in 404, 405 or 413 too.
fn with_auth(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    routes
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::identify,
        ))
        .with_state(state)
}

fn repository_route(event: RepositoryEvent) -> MethodRouter<Arc<AppState>> {
    post(
        move |a: Authorized<OneTimeRole>, s: State<Arc<AppState>>, h: HeaderMap, b: Bytes| {
            repository_check(a, s, h, b, event)
        },
    )
}

/// The service's listeners by who may use them.
#[derive(Debug, Default)]
pub struct Listeners {
    /// Runners' routes; on the bridge address in production.
    pub runners: Vec<TcpListener>,
    /// The charm's routes; loopback only (the CLI refuses anything else).
    pub charm: Vec<TcpListener>,
}

/// Serves with the production [`Limits`]; see [`serve_with`].
pub async fn serve(
    listeners: Listeners,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listeners, state, [Limits::RUNNERS, Limits::CHARM], shutdown).await
}

/// Serves [`runner_router`] on the runners' listeners and [`charm_router`] on the
/// charm's, each kind within its `[runners, charm]` limits, until `shutdown` resolves;
/// then lets requests in flight finish (for at most [`DRAIN_LIMIT`]).
pub async fn serve_with(
    listeners: Listeners,
    state: Arc<AppState>,
    [runner_limits, charm_limits]: [Limits; 2],
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    let kinds = [
        (
            listeners.runners,
            runner_router(state.clone()),
            runner_limits,
        ),
        (listeners.charm, charm_router(state), charm_limits),
    ];
    for (bound, app, limits) in kinds {
        // One gate per kind: its limits hold across all its listeners.
        let gate = Gate::new(limits);
        for listener in bound {
            let accepting = accept_loop(listener, app.clone(), gate.clone(), stopped.clone());
            servers.spawn(accepting);
        }
    }
    tokio::pin!(shutdown);
    let mut result = Ok(());
    tokio::select! {
        () = &mut shutdown => {}
        // A listener's server only ends by itself on an error.
        Some(joined) = servers.join_next() => result = flatten(joined),
    }
    let _ = stop.send(true);
    let drain = async {
        while let Some(joined) = servers.join_next().await {
            if result.is_ok() {
                result = flatten(joined);
            }
        }
    };
    // A client that never finishes its request must not hold the stop up forever.
    if tokio::time::timeout(DRAIN_LIMIT, drain).await.is_err() {
        log::warn!("requests still open {DRAIN_LIMIT:?} after the stop: dropping them");
        servers.abort_all();
    }
    result
}

/// How long requests in flight may take to finish after a stop.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

fn flatten(joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    joined.map_err(std::io::Error::other)?
}

async fn set_policy(
    _: Authorized<CharmRole>,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let object = json_object(&headers, &body)?;
    let document = PolicyDocument::from_value(Value::Object(object))
        .map_err(|e| Reject::bad_request(e.to_string()))?;
    let stored = tokio::task::spawn_blocking(move || {
        let _guard = state
            .document_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(file) = &state.document_file {
            file.store(&document)?;
        }
        *state.policy.write().unwrap_or_else(|e| e.into_inner()) = document.resolve();
        Ok::<_, PolicyError>(())
    })
    .await
    .map_err(|e| PolicyError::Io(std::io::Error::other(e)))
    .and_then(|r| r);
    match stored {
        Ok(()) => {
            log::info!("policy document replaced");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => {
            log::error!("storing the policy document failed: {e}");
            Err(Reject::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            ))
        }
    }
}

async fn pull_request_check(
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

async fn repository_check(
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
async fn default_check(
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
        return Ok(text(StatusCode::FORBIDDEN, reason));
    }
    let event = RepositoryEvent::Push;
    Ok(run_check(state, CheckRequest::Repository { event, repository }).await)
}

async fn always_fail(_: Authorized<OneTimeRole>) -> Result<Response, Reject> {
    let reason = "always-fail: this runner refuses every job by configuration";
    Ok(text(StatusCode::FORBIDDEN, reason))
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
    let api = state.api.clone();
    let outcome =
        tokio::task::spawn_blocking(move || checks::check(api.as_ref(), &policy, &request)).await;
    match outcome {
        Ok(Outcome::Pass) => {
            log::info!("check-run {subject}: pass");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Outcome::Fail(reason)) => {
            log::info!("check-run {subject}: fail: {reason}");
            text(StatusCode::FORBIDDEN, reason)
        }
        Ok(Outcome::Error(reason)) => {
            log::error!("check-run {subject}: error: {reason}");
            text(StatusCode::INTERNAL_SERVER_ERROR, reason)
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("check failed: {e}"),
        ),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    // Held across the GitHub call so concurrent callers share one answer.
    let mut cached = state.health.lock().await;
    let fresh = cached
        .as_ref()
        .filter(|(at, _)| at.elapsed() < HEALTH_CACHE);
    let answer = match fresh {
        Some((_, answer)) => answer.clone(),
        None => {
            let api = state.api.clone();
            let answer = match tokio::task::spawn_blocking(move || api.check_token()).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            *cached = Some((std::time::Instant::now(), answer.clone()));
            answer
        }
    };
    match answer {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            log::warn!("health: {e}");
            let reason = format!("GitHub did not answer with the token: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, reason)
        }
    }
}
