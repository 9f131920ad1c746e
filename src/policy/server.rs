//! The HTTP side of the policy service: routes, bearer-token roles, request bodies to
//! [`CheckRequest`]s, outcomes to statuses. `serve` runs on given listeners until a
//! shutdown future resolves, so tests start the real thing on `127.0.0.1:0`.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use super::checks::{self, CheckRequest, Outcome, PullRequestInput, RepositoryEvent};
use super::document::{DocumentFile, Policy, PolicyDocument};
use super::github::{RepoApi, RepoName};
use super::token_store::TokenFile;
use super::tokens::{CharmToken, OneTimeTokens};
use super::PolicyError;

/// Everything a request handler needs.
pub struct AppState {
    charm_token: CharmToken,
    tokens: OneTimeTokens,
    policy: RwLock<Policy>,
    /// Serialises POST /policy so the file and the active policy always agree.
    document_lock: Mutex<()>,
    document_file: Option<DocumentFile>,
    api: Arc<dyn RepoApi>,
    /// The last health answer: anyone on the bridge may ask, so GitHub is asked at most
    /// once per [`HEALTH_CACHE`] however often /health is called.
    health: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

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
        self.tokens = OneTimeTokens::persistent(file)?;
        Ok(self)
    }

    /// The active policy.
    pub fn policy(&self) -> Policy {
        *self.policy.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The service's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/one-time-token", get(one_time_token))
        .route("/policy", post(set_policy))
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
        // Events without rules of their own are checked as a push.
        .route(
            "/default/check-run",
            repository_route(RepositoryEvent::Push),
        )
        .route("/always-fail/check-run", post(always_fail))
        .route("/health", get(health))
        .with_state(state)
}

fn repository_route(event: RepositoryEvent) -> MethodRouter<Arc<AppState>> {
    post(move |s: State<Arc<AppState>>, h: HeaderMap, b: Bytes| repository_check(s, h, b, event))
}

/// Serves `router(state)` on every listener until `shutdown` resolves, then lets
/// requests in flight finish.
pub async fn serve(
    listeners: Vec<TcpListener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let mut stopped = stopped.clone();
        let server = axum::serve(listener, app.clone()).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        servers.spawn(async move { server.await });
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Charm,
    OneTime,
}

/// A request refused before any rule ran: its status and a text saying why.
#[derive(Debug)]
struct Reject {
    status: StatusCode,
    message: String,
}

impl Reject {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let mut response = text(self.status, self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (status, content_type, body.into()).into_response()
}

/// Checks the bearer token and its role. A one-time token is used up here, before the
/// request is looked at further, whatever the request's outcome.
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    needed: Role,
    path: &str,
) -> Result<(), Reject> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(presented) = presented else {
        log::warn!("{path}: refused a request without a bearer token");
        return Err(Reject::new(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required",
        ));
    };
    let role = if state.charm_token.matches(presented) {
        Role::Charm
    } else if state.tokens.consume(presented) {
        Role::OneTime
    } else {
        log::warn!("{path}: refused an unknown or used token");
        return Err(Reject::new(
            StatusCode::UNAUTHORIZED,
            "unknown or already used token",
        ));
    };
    if role != needed {
        log::warn!("{path}: refused a {role:?} token, which may not be used here");
        let message = "this token may not be used for this request";
        return Err(Reject::new(StatusCode::FORBIDDEN, message));
    }
    Ok(())
}

/// The JSON object a request carries; 415 when it is not JSON.
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Reject> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let is_json = media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"));
    if !is_json {
        let message = "expected a JSON body (Content-Type: application/json)";
        return Err(Reject::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reject::bad_request("the body must be a JSON object")),
        Err(e) => Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// A required, non-empty string field; 400 naming it otherwise. Other fields are ignored.
fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, Reject> {
    match body.get(name) {
        None | Some(Value::Null) => Err(Reject::bad_request(format!("missing field: {name}"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(Reject::bad_request(format!("empty field: {name}")))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Reject::bad_request(format!(
            "field {name} must be a string"
        ))),
    }
}

fn repo_field(body: &Map<String, Value>, name: &str) -> Result<RepoName, Reject> {
    RepoName::parse(field(body, name)?)
        .map_err(|e| Reject::bad_request(format!("field {name}: {e}")))
}

/// A commit id: 40 (SHA-1) or 64 (SHA-256) hex characters.
fn commit_sha(raw: &str) -> Result<String, Reject> {
    if matches!(raw.len(), 40 | 64) && raw.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(Reject::bad_request(
            "field commit_sha: not a commit id (40 or 64 hex characters)",
        ))
    }
}

async fn one_time_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, Reject> {
    authorize(&state, &headers, Role::Charm, "/one-time-token")?;
    match state.tokens.issue() {
        Ok(token) => Ok(text(StatusCode::OK, token)),
        Err(e) => {
            log::error!("cannot issue a one-time token: {e}");
            Err(Reject::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot store the one-time token; see the service log",
            ))
        }
    }
}

async fn set_policy(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    authorize(&state, &headers, Role::Charm, "/policy")?;
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
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    authorize(&state, &headers, Role::OneTime, "/pull_request/check-run")?;
    let b = json_object(&headers, &body)?;
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
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
    event: RepositoryEvent,
) -> Result<Response, Reject> {
    authorize(&state, &headers, Role::OneTime, "check-run")?;
    let repository = repo_field(&json_object(&headers, &body)?, "repository_name")?;
    Ok(run_check(state, CheckRequest::Repository { event, repository }).await)
}

async fn always_fail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, Reject> {
    authorize(&state, &headers, Role::OneTime, "/always-fail/check-run")?;
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
