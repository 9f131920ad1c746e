//! The admin API of the scale sets (no authentication; documented in the crate doc):
//! what each scale set, its session and its runners look like, the service's timings,
//! and events a test provokes (a session vanishing, tokens expiring).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::world::ScaleSet;
use crate::api::error;
use crate::state::World;
use crate::Sim;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/scalesets", get(list))
        .route("/_sim/scalesets/long-poll", post(long_poll))
        .route("/_sim/scalesets/session-timeout", post(session_timeout))
        .route("/_sim/scalesets/expire-tokens", post(expire_tokens))
        .route("/_sim/scalesets/:id/drop-session", post(drop_session))
}

fn view(world: &World, set: &ScaleSet, now: Instant) -> Value {
    let timeout = world.scalesets.settings.session_timeout;
    let session = set.session.as_ref().map(|s| {
        json!({
            "id": s.id, "owner": s.owner, "max_capacity": s.max_capacity,
            "alive": s.alive(now, timeout), "polling": s.polls > 0,
            "token_valid": s.token_valid, "pending": s.pending.len(),
            "unacknowledged": s.unacked.keys().collect::<Vec<_>>(),
        })
    });
    let runners: Vec<Value> = world
        .runners
        .values()
        .filter(|r| r.scale_set_id == Some(set.id))
        .map(|r| json!({"id": r.id, "name": r.name, "busy": r.busy, "job_id": r.job_id}))
        .collect();
    json!({
        "id": set.id, "name": set.name, "scope": set.scope, "labels": set.labels,
        "runner_group_id": set.group_id, "ephemeral": set.ephemeral,
        "disable_update": set.disable_update, "session": session,
        "statistics": world.statistics(set.id), "runners": runners,
    })
}

async fn list(State(sim): State<Arc<Sim>>) -> Json<Vec<Value>> {
    let world = sim.lock();
    let now = Instant::now();
    Json(
        world
            .scalesets
            .sets
            .values()
            .map(|s| view(&world, s, now))
            .collect(),
    )
}

#[derive(Deserialize)]
struct Seconds {
    secs: f64,
}

fn duration(body: &Seconds) -> Option<Duration> {
    Duration::try_from_secs_f64(body.secs)
        .ok()
        .filter(|d| !d.is_zero())
}

async fn long_poll(State(sim): State<Arc<Sim>>, Json(body): Json<Seconds>) -> Response {
    let Some(secs) = duration(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "secs must be positive");
    };
    sim.lock().scalesets.settings.long_poll = secs;
    Json(json!({"secs": body.secs})).into_response()
}

async fn session_timeout(State(sim): State<Arc<Sim>>, Json(body): Json<Seconds>) -> Response {
    let Some(secs) = duration(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "secs must be positive");
    };
    sim.lock().scalesets.settings.session_timeout = secs;
    // Waiting polls recompute when other sessions time out.
    sim.changed.notify_waiters();
    Json(json!({"secs": body.secs})).into_response()
}

async fn expire_tokens(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.lock().expire_service_tokens();
    sim.changed.notify_waiters();
    StatusCode::NO_CONTENT
}

async fn drop_session(State(sim): State<Arc<Sim>>, Path(id): Path<u64>) -> Response {
    let dropped = sim.lock().end_session(id);
    if !dropped {
        return error(StatusCode::NOT_FOUND, "that scale set has no session");
    }
    sim.changed.notify_waiters();
    StatusCode::NO_CONTENT.into_response()
}
