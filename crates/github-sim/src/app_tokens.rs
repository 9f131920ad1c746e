//! `POST /app/installations/{installation_id}/access_tokens` (also under `/api/v3`):
//! an App trades its JWT for an installation token. Mounted with the other REST
//! routes, so it is counted, takes faults, spends the shared hourly budget and answers
//! the `x-ratelimit-*` headers like them; only its credential differs.
//!
//! It takes `Authorization: Bearer <JWT>` instead of a PAT (the `token` scheme is let
//! through too, as for PATs; [`super::auth`] checks it with [`super::app_jwt`]): RS256 only, signed by the key of the App whose client ID
//! or app ID is `iss`, `exp` in the future and at most 600 s (+ 30 s skew) ahead,
//! `iat` at most 60 s ahead, on the simulator's clock shifted by `clock_offset_secs`.
//! 201 `{"token": "ghs_...", "expires_at", "permissions", "repository_selection":
//! "all"}`; 401 with GitHub's message for each refusal (see
//! [`super::app_jwt::JwtRefusal`]); 404 "Not Found" for an installation that is not
//! the App's.
//!
//! An installation token then works on every REST route like a PAT until it expires
//! (then 401 "Bad credentials"), but only on its installation's account:
//! `/orgs/{other}/...` and `/repos/{other}/...` answer 404 "Not Found", as GitHub
//! answers for what an installation cannot see. It shares the PATs' hourly budget.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use chrono::{SecondsFormat, Utc};
use serde_json::json;

use super::api::error;
use super::auth::{VerifiedApp, ACCESS_TOKENS};
use super::Sim;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new().route(ACCESS_TOKENS, post(access_token))
}

/// 201 `{"token", "expires_at", "permissions", "repository_selection"}`; 404 "Not
/// Found" for an installation that does not exist or is another App's (GitHub does not
/// tell them apart). The request body (narrowing repositories or permissions) is
/// ignored: every token covers the whole installation.
async fn access_token(
    State(sim): State<Arc<Sim>>,
    Extension(VerifiedApp(app_id)): Extension<VerifiedApp>,
    Path(installation): Path<String>,
) -> Response {
    let now = Utc::now();
    let issued = installation
        .parse()
        .ok()
        .and_then(|id| sim.lock().apps.issue(app_id, id, now));
    let Some((token, expires_at)) = issued else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    // What an App managing self-hosted runners is granted.
    let permissions = json!({
        "administration": "write",
        "metadata": "read",
        "organization_self_hosted_runners": "write",
    });
    let body = json!({
        "token": token,
        "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "permissions": permissions,
        "repository_selection": "all",
    });
    (StatusCode::CREATED, Json(body)).into_response()
}
