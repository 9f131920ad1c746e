//! Admin calls under `/_sim/apps` (no authentication; JSON in and out):
//! - `POST /_sim/apps {"app_id", "client_id", "public_key_pem" (SPKI `PUBLIC KEY`),
//!   "installations": [{"id", "account"}]}` -> 201 `{"app_id", "client_id",
//!   "installations", "tokens_issued": 0}`, replacing an App of the same `app_id`;
//!   422 for a key that is not RSA PEM or an installation id another App has. An
//!   installation's `account` is the org, or the user owning the repositories, it
//!   covers.
//! - `GET /_sim/apps` -> `[{"app_id", "client_id", "installations", "tokens_issued"}]`
//!   (`tokens_issued`: installation tokens the App was given so far).
//! - `POST /_sim/apps/settings {"token_lifetime_secs"?, "clock_offset_secs"?}` (3600
//!   and 0 by default; a field left out keeps its value) -> both; `GET` reads them.
//!   A negative offset puts the simulator's JWT clock behind the client's, as when
//!   the client's host runs ahead: its honest 9-minute JWT then reaches too far.
//! - `POST /_sim/apps/expire-tokens` -> `{"expired": n}`: every installation token
//!   issued so far stops working (401 "Bad credentials").

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::error;
use super::apps::{App, AppSettings, AppSpec};
use super::Sim;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/apps", post(add_app).get(list_apps))
        .route("/_sim/apps/settings", post(set_settings).get(get_settings))
        .route("/_sim/apps/expire-tokens", post(expire_tokens))
}

async fn add_app(State(sim): State<Arc<Sim>>, Json(spec): Json<AppSpec>) -> Response {
    let added = App::from_spec(spec).and_then(|app| {
        let view = app.view();
        sim.lock().apps.add(app).map(|()| view)
    });
    match added {
        Ok(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Err(message) => error(StatusCode::UNPROCESSABLE_ENTITY, &message),
    }
}

async fn list_apps(State(sim): State<Arc<Sim>>) -> Json<Vec<Value>> {
    Json(sim.lock().apps.apps.values().map(App::view).collect())
}

/// Either field may be left out: it keeps its value.
#[derive(Deserialize)]
struct SettingsChange {
    token_lifetime_secs: Option<u64>,
    clock_offset_secs: Option<i64>,
}

async fn set_settings(
    State(sim): State<Arc<Sim>>,
    Json(change): Json<SettingsChange>,
) -> Json<AppSettings> {
    let mut world = sim.lock();
    let settings = &mut world.apps.settings;
    if let Some(secs) = change.token_lifetime_secs {
        settings.token_lifetime_secs = secs;
    }
    if let Some(secs) = change.clock_offset_secs {
        settings.clock_offset_secs = secs;
    }
    Json(*settings)
}

async fn get_settings(State(sim): State<Arc<Sim>>) -> Json<AppSettings> {
    Json(sim.lock().apps.settings)
}

async fn expire_tokens(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let mut world = sim.lock();
    world.apps.expire_tokens(Utc::now());
    Json(json!({"expired": world.apps.tokens.len()}))
}
