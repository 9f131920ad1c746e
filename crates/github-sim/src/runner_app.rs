//! The private endpoints the simulator's runner app uses (GitHub's real runner talks to
//! a different, undocumented service; these stand in for it), and the app's tarball.
//!
//! Authenticated by the runner's own credential (`Authorization: Bearer CRED`, from
//! `config.sh` or the JIT config), except `register`, which takes a registration token:
//! - `POST /_sim/runner/register {"token", "url_path", "name", "labels", "runner_group",
//!   "ephemeral", "replace", "work"}` -> 201 `{"id", "name", "credential", "ephemeral"}`
//! - `POST /_sim/runner/session` -> `{"id", "name", "ephemeral", "heartbeat_secs"}`;
//!   409 when a JIT config is used a second time
//! - `GET /_sim/runner/poll?wait=SECS` -> 200 job assignment, or 204 when none came
//! - `POST /_sim/runner/heartbeat`; `POST /_sim/runner/jobs/{id}/complete {"conclusion"}`
//! - `POST /_sim/runner/remove {"token", "url_path"}` deregisters the runner: 401 for
//!   a remove token not valid for `url_path`, 404 when the runner is already gone
//!   (its credential died with it), as the real service refuses or skips.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::api::{error, presented_token};
use super::runner_tokens::{random_token, TokenKind};
use super::state::{Scope, SimRunner};
use super::Sim;

/// The longest a poll may wait, below the runner's own request timeout.
const MAX_POLL: Duration = Duration::from_secs(25);

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/runner/register", post(register))
        .route("/_sim/runner/session", post(session))
        .route("/_sim/runner/poll", get(poll))
        .route("/_sim/runner/heartbeat", post(heartbeat))
        .route("/_sim/runner/jobs/:id/complete", post(complete))
        .route("/_sim/runner/remove", post(remove))
        .route("/_sim/runner-app/:filename", get(tarball))
}

/// The runner presenting its credential, with its last contact refreshed.
fn authenticate(sim: &Sim, headers: &HeaderMap) -> Option<u64> {
    let credential = presented_token(headers)?;
    let mut world = sim.lock();
    let id = world.runner_by_credential(credential)?;
    if let Some(runner) = world.runners.get_mut(&id) {
        runner.last_contact = Some(Instant::now());
    }
    Some(id)
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "unknown runner credential")
}

#[derive(Deserialize)]
struct Registration {
    token: String,
    url_path: String,
    name: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    runner_group: String,
    #[serde(default)]
    ephemeral: bool,
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    no_default_labels: bool,
}

async fn register(State(sim): State<Arc<Sim>>, Json(body): Json<Registration>) -> Response {
    let Some(scope) = Scope::from_url_path(&body.url_path) else {
        return error(
            StatusCode::NOT_FOUND,
            "the URL names neither an org nor a repository",
        );
    };
    let mut world = sim.lock();
    if !world.token_valid(&body.token, TokenKind::Registration, &scope, Utc::now()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid or expired registration token for this URL",
        );
    }
    let Some(group_id) = world.group_id(&scope, Some(&body.runner_group)) else {
        return error(StatusCode::NOT_FOUND, "runner group not found");
    };
    if let Some(existing) = world.runner_by_name(&scope, &body.name) {
        if !body.replace {
            return error(StatusCode::CONFLICT, "A runner exists with the same name");
        }
        if existing.busy {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the runner to replace is running a job",
            );
        }
        let old = existing.id;
        world.runners.remove(&old);
    }
    let defaults: Vec<String> = if body.no_default_labels {
        vec![]
    } else {
        vec!["self-hosted".into(), "Linux".into(), "X64".into()]
    };
    let default_labels = defaults.len();
    let mut labels = defaults;
    for label in body.labels.into_iter().filter(|l| !l.is_empty()) {
        if !labels.iter().any(|l| l.eq_ignore_ascii_case(&label)) {
            labels.push(label);
        }
    }
    let id = world.next_id();
    let credential = random_token(40);
    world.runners.insert(
        id,
        SimRunner {
            id,
            name: body.name.clone(),
            scope,
            labels,
            default_labels,
            group_id,
            scale_set_id: None,
            ephemeral: body.ephemeral,
            jit: false,
            busy: false,
            job_id: None,
            credential: credential.clone(),
            session_started: false,
            last_contact: None,
            polls: 0,
        },
    );
    let response =
        json!({"id": id, "name": body.name, "credential": credential, "ephemeral": body.ephemeral});
    (StatusCode::CREATED, Json(response)).into_response()
}

async fn session(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    let Some(id) = authenticate(&sim, &headers) else {
        return unauthorized();
    };
    let mut world = sim.lock();
    let heartbeat =
        (world.timing.offline_after / 3).clamp(Duration::from_secs(1), Duration::from_secs(10));
    let Some(runner) = world.runners.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "gone");
    };
    if runner.jit && runner.session_started {
        return error(
            StatusCode::CONFLICT,
            "this JIT configuration has been used already",
        );
    }
    runner.session_started = true;
    Json(json!({"id": id, "name": runner.name, "ephemeral": runner.ephemeral, "heartbeat_secs": heartbeat.as_secs()}))
        .into_response()
}

/// Counts a poll in flight so the runner shows online while it waits.
struct PollGuard<'a> {
    sim: &'a Sim,
    id: u64,
}

impl<'a> PollGuard<'a> {
    fn new(sim: &'a Sim, id: u64) -> Self {
        if let Some(r) = sim.lock().runners.get_mut(&id) {
            r.polls += 1;
        }
        PollGuard { sim, id }
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.sim.lock().runners.get_mut(&self.id) {
            r.polls = r.polls.saturating_sub(1);
            r.last_contact = Some(Instant::now());
        }
    }
}

async fn poll(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = authenticate(&sim, &headers) else {
        return unauthorized();
    };
    let wait = q
        .get("wait")
        .and_then(|w| w.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(MAX_POLL);
    let deadline = tokio::time::Instant::now() + wait.min(MAX_POLL);
    let _guard = PollGuard::new(&sim, id);
    loop {
        // Registered before looking, so a change between the look and the wait wakes us.
        let notified = sim.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut world = sim.lock();
            if !world.runners.contains_key(&id) {
                return error(StatusCode::NOT_FOUND, "runner was removed");
            }
            if let Some(assignment) = world.assign(id, Utc::now()) {
                return Json(assignment).into_response();
            }
        }
        if sim.closing() {
            return StatusCode::NO_CONTENT.into_response();
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return StatusCode::NO_CONTENT.into_response(),
        }
    }
}

async fn heartbeat(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    match authenticate(&sim, &headers) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => unauthorized(),
    }
}

#[derive(Deserialize)]
struct Completion {
    conclusion: String,
}

async fn complete(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(job): Path<u64>,
    Json(body): Json<Completion>,
) -> Response {
    let Some(id) = authenticate(&sim, &headers) else {
        return unauthorized();
    };
    let conclusion = if body.conclusion == "success" {
        "success"
    } else {
        "failure"
    };
    let done = sim.lock().complete(id, job, conclusion, Utc::now());
    sim.changed.notify_waiters();
    if done {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "this runner is not running that job")
    }
}

#[derive(Deserialize)]
struct Removal {
    token: String,
    url_path: String,
}

/// The token is checked first, as GitHub does: a runner that is already gone is then
/// "not found", which `config.sh remove` may skip, and a bad token is always refused.
async fn remove(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Json(body): Json<Removal>,
) -> Response {
    let Some(scope) = Scope::from_url_path(&body.url_path) else {
        return error(
            StatusCode::NOT_FOUND,
            "the URL names neither an org nor a repository",
        );
    };
    if !sim
        .lock()
        .token_valid(&body.token, TokenKind::Remove, &scope, Utc::now())
    {
        return error(StatusCode::UNAUTHORIZED, "invalid or expired remove token");
    }
    let found = authenticate(&sim, &headers);
    let mut world = sim.lock();
    let Some(runner) = found.and_then(|id| world.runners.get(&id)) else {
        return error(StatusCode::NOT_FOUND, "runner not found");
    };
    if runner.scope != scope {
        return error(StatusCode::NOT_FOUND, "runner not found");
    }
    if runner.busy {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the runner is running a job",
        );
    }
    let id = runner.id;
    world.runners.remove(&id);
    drop(world);
    sim.changed.notify_waiters();
    StatusCode::NO_CONTENT.into_response()
}

async fn tarball(State(sim): State<Arc<Sim>>, Path(filename): Path<String>) -> Response {
    if !["x64", "arm64"]
        .iter()
        .any(|arch| sim.tarball.filename(arch) == filename)
    {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    (
        [(header::CONTENT_TYPE, "application/gzip")],
        sim.tarball.bytes.clone(),
    )
        .into_response()
}
