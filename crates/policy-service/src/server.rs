//! The HTTP side of the policy service: the runners' and the charm's routes (the
//! check-run handlers are `check_routes`', the one-time token ones `token_routes`'),
//! the state they share, and `serve`, which runs them on given listeners (each kind
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
use super::check_routes::{always_fail, default_check, pull_request_check, repository_check};
use super::checks::RepositoryEvent;
use super::document::{DocumentFile, Policy, PolicyDocument};
use super::github::RepoApi;
use super::listen::{accept_loop, Gate, Limits};
use super::observe::{self, Observer};
use super::request::{json_object, text, Reject};
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
    observer: Observer,
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
            observer: Observer::default(),
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

    /// Appends each refusal to `events` (the metrics are kept either way).
    pub fn with_events(mut self, events: ghr_metrics::events::EventLog) -> Self {
        self.observer = Observer::new(Some(events));
        self
    }

    /// The checks' metrics and the event log.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    pub(super) fn api(&self) -> Arc<dyn RepoApi> {
        self.api.clone()
    }

    /// The active policy.
    pub fn policy(&self) -> Policy {
        *self.policy.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every check route of [`runner_router`]: their counters exist from the start.
pub const CHECK_ENDPOINTS: [&str; 7] = [
    "/check-run",
    "/pull_request/check-run",
    "/workflow_dispatch/check-run",
    "/push/check-run",
    "/schedule/check-run",
    "/default/check-run",
    "/always-fail/check-run",
];

/// The runners' routes over `state`: the check-runs and /health, nothing that mints
/// tokens, changes the policy or shows the metrics (those are [`charm_router`]'s, on
/// loopback only). Every check is counted (`observe::count_checks`).
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
    // Outside the token middleware, so a check's time includes reading its token.
    let count = axum::middleware::from_fn_with_state(state.clone(), observe::count_checks);
    with_auth(routes, state).layer(count)
}

/// The charm's routes over `state`: one-time tokens, the policy document, /health, and
/// /metrics. The token middleware only identifies callers; each handler demands its
/// role, and /metrics demands none: the COS agent on the host scrapes it without a
/// token, and it holds counts by route and result only.
pub fn charm_router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .route(
            "/one-time-token",
            get(token_routes::issue).delete(token_routes::revoke),
        )
        .route("/policy", post(set_policy))
        .route("/health", get(health))
        .route("/metrics", get(observe::metrics));
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
