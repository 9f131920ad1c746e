//! The admin API under `/_sim/` (documented in the [`super`] module doc): set up orgs,
//! repositories, groups and tokens, queue and read jobs, inject faults, read counters.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::error;
use super::faults::Fault;
use super::jobs::{Job, JobSpec};
use super::Sim;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/orgs", post(add_org))
        .route("/_sim/repos", post(add_repo))
        .route("/_sim/orgs/:org/runner-groups", post(add_group))
        .route("/_sim/orgs/:org/runner-groups/:name", delete(remove_group))
        .route("/_sim/tokens", post(add_token))
        .route("/_sim/tokens/:token", delete(remove_token))
        .route("/_sim/jobs", post(queue_job).get(list_jobs))
        .route("/_sim/jobs/:id", get(get_job))
        .route("/_sim/runners", get(list_runners))
        .route(
            "/_sim/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/_sim/counters", get(counters).delete(reset_counters))
        .route("/_sim/rate-limit", post(set_rate_limit).get(get_rate_limit))
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

async fn add_org(State(sim): State<Arc<Sim>>, Json(body): Json<Named>) -> Response {
    sim.lock().add_org(&body.name);
    (StatusCode::CREATED, Json(json!({"name": body.name}))).into_response()
}

#[derive(Deserialize)]
struct Repo {
    repository: String,
}

async fn add_repo(State(sim): State<Arc<Sim>>, Json(body): Json<Repo>) -> Response {
    if body.repository.split('/').filter(|s| !s.is_empty()).count() != 2 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "repository must be owner/name",
        );
    }
    sim.lock().repos.insert(body.repository.clone());
    (
        StatusCode::CREATED,
        Json(json!({"repository": body.repository})),
    )
        .into_response()
}

async fn add_group(
    State(sim): State<Arc<Sim>>,
    Path(org): Path<String>,
    Json(body): Json<Named>,
) -> Response {
    match sim.lock().add_group(&org, &body.name) {
        Some(id) => (
            StatusCode::CREATED,
            Json(json!({"id": id, "name": body.name})),
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "no such org"),
    }
}

async fn remove_group(
    State(sim): State<Arc<Sim>>,
    Path((org, name)): Path<(String, String)>,
) -> Response {
    if sim.lock().remove_group(&org, &name) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such group")
    }
}

#[derive(Deserialize)]
struct NewToken {
    token: String,
}

async fn add_token(State(sim): State<Arc<Sim>>, Json(body): Json<NewToken>) -> Response {
    sim.lock().tokens.insert(body.token);
    StatusCode::CREATED.into_response()
}

/// A token revoked on GitHub: refused with 401 from then on (a rotation's old token).
async fn remove_token(State(sim): State<Arc<Sim>>, Path(token): Path<String>) -> Response {
    match sim.lock().tokens.remove(&token) {
        true => StatusCode::NO_CONTENT.into_response(),
        false => error(StatusCode::NOT_FOUND, "no such token"),
    }
}

async fn queue_job(State(sim): State<Arc<Sim>>, Json(spec): Json<JobSpec>) -> Response {
    if spec.repository.split('/').count() != 2 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "repository must be owner/name",
        );
    }
    let job = {
        let mut world = sim.lock();
        let id = world.next_id();
        let job = Job::new(id, spec, Utc::now());
        world.jobs.insert(id, job.clone());
        world.offer_job(id);
        job
    };
    sim.changed.notify_waiters();
    (StatusCode::CREATED, Json(job)).into_response()
}

async fn list_jobs(State(sim): State<Arc<Sim>>) -> Json<Vec<Job>> {
    Json(sim.lock().jobs.values().cloned().collect())
}

async fn get_job(State(sim): State<Arc<Sim>>, Path(id): Path<u64>) -> Response {
    match sim.lock().jobs.get(&id) {
        Some(job) => Json(job.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such job"),
    }
}

async fn list_runners(State(sim): State<Arc<Sim>>) -> Json<Vec<Value>> {
    let world = sim.lock();
    let now = Instant::now();
    let runners = world
        .runners
        .values()
        .map(|r| {
            let mut v = serde_json::to_value(r).expect("runner serialises");
            v["online"] = json!(world.online(r, now));
            v
        })
        .collect();
    Json(runners)
}

async fn add_fault(State(sim): State<Arc<Sim>>, Json(mut fault): Json<Fault>) -> Response {
    if fault.route.is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "route is required");
    }
    fault.count = fault.count.max(1);
    sim.lock().faults.push(fault);
    StatusCode::CREATED.into_response()
}

async fn list_faults(State(sim): State<Arc<Sim>>) -> Json<Vec<Fault>> {
    Json(sim.lock().faults.clone())
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.lock().faults.clear();
    StatusCode::NO_CONTENT
}

async fn counters(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!(sim.lock().counters))
}

async fn reset_counters(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.lock().counters.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct RateLimitSetting {
    remaining: u64,
    reset_in_secs: Option<u64>,
}

async fn set_rate_limit(
    State(sim): State<Arc<Sim>>,
    Json(body): Json<RateLimitSetting>,
) -> Json<Value> {
    let mut world = sim.lock();
    let budget = &mut world.budget;
    budget.used = budget.limit.saturating_sub(body.remaining);
    if let Some(secs) = body.reset_in_secs {
        budget.reset = Utc::now() + chrono::Duration::seconds(secs as i64);
    }
    Json(rate_json(&world.budget))
}

async fn get_rate_limit(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(rate_json(&sim.lock().budget))
}

fn rate_json(b: &super::budget::Budget) -> Value {
    json!({"limit": b.limit, "remaining": b.remaining(), "used": b.used, "reset": b.reset.timestamp()})
}
