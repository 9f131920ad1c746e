//! The actions service's session handlers: create, refresh and delete a session,
//! acquire jobs with its queue token, and the message queue itself (the long poll and
//! acknowledging).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::registration::{scope_of_tenant, service_url};
use super::service::set_view;
use super::world::Session;
use super::{authorize, id_param, messages, require_api_version, set_in, Answer, Params, Refusal};
use crate::api::presented_token;
use crate::runner_tokens::random_token;
use crate::state::World;
use crate::Sim;

type Call = (State<Arc<Sim>>, Path<Params>, Query<Params>, HeaderMap);

/// A session as created or refreshed, with its queue URL.
fn session_view(world: &World, set_id: u64, headers: &HeaderMap) -> Value {
    let set = &world.scalesets.sets[&set_id];
    let session = set.session.as_ref().expect("the caller made or found it");
    let queue_url = format!(
        "{}_queue/{set_id}/{}",
        service_url(headers, &set.scope),
        session.id
    );
    let stats = world.statistics(set_id);
    messages::session(session, &queue_url, set_view(world, set, headers), stats)
}

fn session_not_found() -> Refusal {
    let kind = "TaskAgentSessionExpiredException";
    Refusal::new(StatusCode::NOT_FOUND, kind, "The session was not found")
}

/// The session `sid` (any, for `None`) of scale set `id` in the call's tenant.
fn session_mut<'a>(
    world: &'a mut World,
    p: &Params,
    id: u64,
    sid: Option<&str>,
) -> Result<&'a mut Session, Refusal> {
    let scope = scope_of_tenant(&p["tenant"]);
    set_in(world, &scope, id)?;
    let set = world.scalesets.sets.get_mut(&id).expect("found above");
    set.session
        .as_mut()
        .filter(|s| sid.is_none_or(|sid| s.id == sid))
        .ok_or_else(session_not_found)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct NewSession {
    owner_name: String,
}

pub(super) async fn create((State(sim), Path(p), Query(q), headers): Call, body: Bytes) -> Answer {
    let view = {
        let mut world = sim.lock();
        let scope = authorize(&world, &headers, &q, &p["tenant"])?;
        let set = set_in(&world, &scope, id_param(&p, "id")?)?;
        if set.session.is_some() {
            let message = format!("The scale set {} already has an active session", set.name);
            let kind = "GitHub.DistributedTask.WebApi.TaskAgentSessionConflictException";
            return Err(Refusal::new(StatusCode::CONFLICT, kind, message));
        }
        let id = set.id;
        let owner = serde_json::from_slice::<NewSession>(&body)
            .unwrap_or_default()
            .owner_name;
        world.open_session(id, owner, service_url(&headers, &scope), Instant::now());
        session_view(&world, id, &headers)
    };
    sim.changed.notify_waiters();
    Ok(Json(view).into_response())
}

pub(super) async fn refresh((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    let mut world = sim.lock();
    authorize(&world, &headers, &q, &p["tenant"])?;
    let id = id_param(&p, "id")?;
    let session = session_mut(&mut world, &p, id, p.get("session").map(String::as_str))?;
    session.queue_token = random_token(40);
    session.token_valid = true;
    session.last_contact = Instant::now();
    Ok(Json(session_view(&world, id, &headers)).into_response())
}

pub(super) async fn delete((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    {
        let mut world = sim.lock();
        authorize(&world, &headers, &q, &p["tenant"])?;
        let id = id_param(&p, "id")?;
        session_mut(&mut world, &p, id, p.get("session").map(String::as_str))?;
        world.end_session(id);
    }
    sim.changed.notify_waiters();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The session of a call made with its queue token: 404 once the session is gone
/// (the client must open a new one), 401 once the token expired (refresh it).
fn queue_caller<'a>(
    world: &'a mut World,
    p: &Params,
    headers: &HeaderMap,
    sid: Option<&str>,
) -> Result<&'a mut Session, Refusal> {
    let id = id_param(p, "id")?;
    let session = session_mut(world, p, id, sid)?;
    let token_ok =
        session.token_valid && presented_token(headers) == Some(session.queue_token.as_str());
    if !token_ok {
        let message = "The message queue token is invalid or expired";
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "VssUnauthorizedException",
            message,
        ));
    }
    session.last_contact = Instant::now();
    Ok(session)
}

pub(super) async fn acquire((State(sim), Path(p), Query(q), headers): Call, body: Bytes) -> Answer {
    let acquired = {
        let mut world = sim.lock();
        require_api_version(&q)?;
        let owner = queue_caller(&mut world, &p, &headers, None)?.owner.clone();
        let ids: Vec<u64> = serde_json::from_slice(&body).map_err(|_| {
            let message = "a list of request ids is required";
            Refusal::new(StatusCode::BAD_REQUEST, "ArgumentException", message)
        })?;
        world.acquire(id_param(&p, "id")?, &ids, &owner, Utc::now())
    };
    sim.changed.notify_waiters();
    let value = acquired.into_iter().map(Value::from).collect();
    Ok(Json(messages::list(value)).into_response())
}

/// Counts a poll in flight, so its session stays alive however long the poll waits.
struct PollGuard<'a> {
    sim: &'a Sim,
    set_id: u64,
    session_id: String,
}

impl<'a> PollGuard<'a> {
    fn new(world: &mut World, sim: &'a Sim, set_id: u64, session_id: &str) -> Self {
        if let Some(s) = live_session(world, set_id, session_id) {
            s.polls += 1;
        }
        PollGuard {
            sim,
            set_id,
            session_id: session_id.to_string(),
        }
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        let mut world = self.sim.lock();
        if let Some(s) = live_session(&mut world, self.set_id, &self.session_id) {
            s.polls = s.polls.saturating_sub(1);
            s.last_contact = Instant::now();
        }
    }
}

fn live_session<'a>(
    world: &'a mut World,
    set_id: u64,
    session_id: &str,
) -> Option<&'a mut Session> {
    let set = world.scalesets.sets.get_mut(&set_id)?;
    set.session.as_mut().filter(|s| s.id == session_id)
}

/// The long poll: the next message, or 202 after the long-poll time. It wakes on any
/// change of the world, and when another session would time out.
pub(super) async fn poll((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    let sid = p.get("session").cloned().unwrap_or_default();
    let last: u64 = q
        .get("lastMessageId")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let capacity: Option<u32> = headers
        .get("x-scalesetmaxcapacity")
        .and_then(|v| v.to_str().ok()?.trim().parse().ok());
    let (set_id, deadline, _guard) = {
        let mut world = sim.lock();
        let session = queue_caller(&mut world, &p, &headers, Some(&sid))?;
        session.max_capacity = capacity.or(session.max_capacity);
        let set_id = id_param(&p, "id")?;
        let deadline = tokio::time::Instant::now() + world.scalesets.settings.long_poll;
        (
            set_id,
            deadline,
            PollGuard::new(&mut world, &sim, set_id, &sid),
        )
    };
    loop {
        // Registered before looking, so a change between the look and the wait wakes us.
        let notified = sim.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let expiry = {
            let mut world = sim.lock();
            queue_caller(&mut world, &p, &headers, Some(&sid))?;
            if let Some((id, jobs)) = world.next_message(set_id, last) {
                let stats = world.statistics(set_id);
                return Ok(Json(messages::envelope(id, &jobs, stats)).into_response());
            }
            world.next_session_expiry()
        };
        if sim.closing() {
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        let wake = expiry.map_or(deadline, |e| {
            tokio::time::Instant::from_std(e).min(deadline)
        });
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(StatusCode::ACCEPTED.into_response()),
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

pub(super) async fn ack((State(sim), Path(p), Query(_), headers): Call) -> Answer {
    let sid = p.get("session").cloned().unwrap_or_default();
    let mut world = sim.lock();
    let session = queue_caller(&mut world, &p, &headers, Some(&sid))?;
    let message: Option<u64> = p.get("message").and_then(|m| m.parse().ok());
    match message.and_then(|m| session.unacked.remove(&m)) {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "MessageNotFoundException",
            "no such message",
        )),
    }
}
