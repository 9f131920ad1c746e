//! GitHub's runner scale-set protocol, simulated from the world: the registration
//! exchange, the actions service (runner groups, scale sets, JIT runners, agents,
//! sessions, acquiring jobs) and the sessions' message queues.
//!
//! Module map: [`world`] (scale sets, sessions, matching, statistics), [`flow`] (the
//! job and session lifecycle and the messages it makes), [`messages`] (the wire JSON),
//! [`registration`] (service URL and admin tokens), [`service`] and [`sessions`] (the
//! HTTP handlers), [`guard`] (counters and faults), [`admin`] (`/_sim/scalesets`).
//!
//! # Routes
//! `POST /actions/runner-registration` (also under `/api/v3`) with `Authorization:
//! RemoteAuth <registration token>` and `{"url": "<http(s)://host/org or /owner/repo>",
//! "runner_event": "register"}` -> `{"url": "<origin>/_services/<tenant>/", "token":
//! <admin JWT, exp 1 h>}`; 401 for a token not valid for that org or repository. The
//! tenant is the org, or `owner~repo`.
//!
//! Under `/_services/<tenant>/`, with `Authorization: Bearer <admin token>` (401
//! otherwise) and `?api-version=` (400 without); errors are `{"typeName", "message"}`:
//! - `GET _apis/runtime/runnergroups/?groupName=` -> `{"count", "value": [{"id", "name",
//!   "size", "isDefaultGroup"}]}` (an org's groups; a repository has `default`).
//! - `GET _apis/runtime/runnerscalesets?runnerGroupId=&name=` (list);
//!   `POST _apis/runtime/runnerscalesets {"name", "runnerGroupId"?, "labels"?:
//!   [{"name"}], "RunnerSetting"?: {"ephemeral"?, "disableUpdate"?}}` (409
//!   `RunnerScaleSetExistsException` for a name taken in the group);
//!   `GET|PATCH|DELETE .../runnerscalesets/{id}`. A scale set is `{"id", "name",
//!   "runnerGroupId", "runnerGroupName", "labels": [{"name", "type"}], "RunnerSetting":
//!   {"ephemeral", "isElastic", "disableUpdate"}, "createdOn", "runnerJitConfigUrl",
//!   "statistics"}`.
//! - `POST .../runnerscalesets/{id}/generatejitconfig {"name", "workFolder"?}` ->
//!   `{"runner": {"id", "name", "runnerScaleSetId"}, "encodedJITConfig"}`: an ephemeral
//!   runner of the scale set (labels: its name and labels; its group), listed and
//!   deletable through the REST runner routes too; 409 `AgentExistsException` for a
//!   name in use. The config is the runner app's, as from REST `generate-jitconfig`.
//! - `GET _apis/distributedtask/pools/0/agents?agentName=`, `GET|DELETE .../agents/{id}`
//!   -> `{"id", "name", "runnerScaleSetId" (0 for a REST runner), "status", "busy"}`
//!   (404 `AgentNotFoundException`; 400 `JobStillRunningException` for a busy runner).
//! - `POST .../runnerscalesets/{id}/sessions {"ownerName"}` -> `{"sessionId",
//!   "ownerName", "runnerScaleSet", "messageQueueUrl", "messageQueueAccessToken",
//!   "statistics"}`; 409 `TaskAgentSessionConflictException` while a live session
//!   exists. `PATCH .../sessions/{sid}` refreshes the queue token; `DELETE` ends it.
//! - `POST .../runnerscalesets/{id}/acquirejobs [request ids]` with the queue token ->
//!   `{"count", "value": [ids acquired]}`.
//!
//! The queue, `messageQueueUrl` = `/_services/<tenant>/_queue/{id}/{sid}`, with
//! `Bearer <queue token>` (401 once expired; 404 once the session is gone): `GET
//! ?lastMessageId=N` with `X-ScaleSetMaxCapacity` -> 200 `{"messageId", "messageType":
//! "RunnerScaleSetJobMessages", "body": "<JSON array of job messages>", "statistics"}`,
//! or 202 after the long-poll time; `DELETE .../{messageId}` acknowledges.
//!
//! Job messages are `{"messageType": "JobAvailable"|"JobAssigned"|"JobStarted"|
//! "JobCompleted", "runnerRequestId" (the job's id), "repositoryName", "ownerName",
//! "jobId", "jobWorkflowRef", "jobDisplayName", "workflowRunId", "eventName",
//! "requestLabels", "queueTime", "scaleSetAssignTime", "runnerAssignTime",
//! "finishTime"}` (unset times are Go's zero time), plus `acquireJobUrl` (available),
//! `runnerId` and `runnerName` (started, completed) and `result` (`succeeded` or
//! `failed`). `statistics` (see [`world::Statistics`]) are computed at delivery.
//! A queued job that fits is offered to every fitting scale set's session, and to a
//! session when it opens, each job once per session, as far as the session's last
//! `X-ScaleSetMaxCapacity` leaves room beside the jobs assigned to its set and the
//! offers it has not taken up; the rest when room frees (a job completes) or the
//! capacity grows.
//!
//! A session that no poll kept alive for the session timeout ends; an ending session
//! gives its jobs that no runner started back to be offered again.

pub mod admin;
pub mod flow;
pub mod guard;
pub mod messages;
pub mod registration;
pub mod service;
pub mod sessions;
pub mod world;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

use crate::api::presented_token;
use crate::state::{Scope, World};
use crate::Sim;

const SETS: &str = "/_services/:tenant/_apis/runtime/runnerscalesets";
const AGENTS: &str = "/_services/:tenant/_apis/distributedtask/pools/0/agents";
const QUEUE: &str = "/_services/:tenant/_queue/:id/:session";

/// The scale-set routes: the service and `runner-registration` behind [`guard`], and
/// the admin API.
pub fn routes(sim: Arc<Sim>) -> Router<Arc<Sim>> {
    let registration = post(registration::runner_registration);
    let guarded = Router::new()
        .route("/actions/runner-registration", registration.clone())
        .route("/api/v3/actions/runner-registration", registration)
        .route(
            "/_services/:tenant/_apis/runtime/runnergroups/",
            get(service::groups),
        )
        .route(
            "/_services/:tenant/_apis/runtime/runnergroups",
            get(service::groups),
        )
        .route(SETS, get(service::list_sets).post(service::create_set))
        .route(
            &format!("{SETS}/:id"),
            get(service::get_set)
                .patch(service::update_set)
                .delete(service::delete_set),
        )
        .route(
            &format!("{SETS}/:id/generatejitconfig"),
            post(service::jit_config),
        )
        .route(&format!("{SETS}/:id/sessions"), post(sessions::create))
        .route(
            &format!("{SETS}/:id/sessions/:session"),
            axum::routing::patch(sessions::refresh).delete(sessions::delete),
        )
        .route(&format!("{SETS}/:id/acquirejobs"), post(sessions::acquire))
        .route(AGENTS, get(service::list_agents))
        .route(
            &format!("{AGENTS}/:id"),
            get(service::get_agent).delete(service::delete_agent),
        )
        .route(QUEUE, get(sessions::poll))
        .route(
            &format!("{QUEUE}/:message"),
            axum::routing::delete(sessions::ack),
        )
        .route_layer(axum::middleware::from_fn_with_state(sim, guard::guard));
    guarded.merge(admin::routes())
}

/// Why the actions service refuses a call; answered as `{"typeName", "message"}`.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    type_name: &'static str,
    message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, type_name: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Refusal {
            status,
            type_name,
            message,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"$id": "1", "typeName": self.type_name, "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

type Params = HashMap<String, String>;
type Answer = Result<Response, Refusal>;

fn require_api_version(query: &Params) -> Result<(), Refusal> {
    if query.contains_key("api-version") {
        return Ok(());
    }
    let message = "The api-version query parameter is required";
    Err(Refusal::new(
        StatusCode::BAD_REQUEST,
        "VssServiceException",
        message,
    ))
}

/// The scope of an actions-service call made with a live admin token and an
/// `api-version`.
fn authorize(
    world: &World,
    headers: &HeaderMap,
    query: &Params,
    tenant: &str,
) -> Result<Scope, Refusal> {
    require_api_version(query)?;
    let scope = registration::scope_of_tenant(tenant);
    let valid =
        presented_token(headers).is_some_and(|t| world.admin_token_valid(t, &scope, Utc::now()));
    if !valid {
        let message = "The admin token is missing, invalid or expired";
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "VssUnauthorizedException",
            message,
        ));
    }
    Ok(scope)
}

/// A numeric path parameter.
fn id_param(params: &Params, name: &str) -> Result<u64, Refusal> {
    params
        .get(name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, "ArgumentException", "bad id"))
}

/// Scale set `id` if it exists in `scope`.
fn set_in<'a>(world: &'a World, scope: &Scope, id: u64) -> Result<&'a world::ScaleSet, Refusal> {
    let missing = || {
        let message = "The runner scale set was not found";
        Refusal::new(
            StatusCode::NOT_FOUND,
            "RunnerScaleSetNotFoundException",
            message,
        )
    };
    world
        .scalesets
        .sets
        .get(&id)
        .filter(|s| &s.scope == scope)
        .ok_or_else(missing)
}
