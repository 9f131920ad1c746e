//! Message sessions: the one listener of a scale set opens a session, long-polls its
//! message queue with the session's queue token, acknowledges what it handled and
//! acquires the jobs it will run. An expired queue token (401) is renewed by
//! refreshing the session, once per call.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::models::{List, Message, Statistics, WireMessage, WireSession};
use super::{decode, expect, service_url, ActionsService, API_VERSION, SCALE_SETS};
use crate::calls;
use crate::error::{GithubError, Result};
use crate::retry::{RawResponse, RetryPolicy};
use crate::transport::{Auth, Call};
use ghr_types::Secret;

/// The session id a create carries; the service assigns the real one.
const NIL_SESSION: &str = "00000000-0000-0000-0000-000000000000";

/// An open message session. Clones share the queue token, so a renewal through one
/// serves all.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    pub owner: String,
    pub scale_set_id: u64,
    /// As of the session's creation, refresh or last message; `None` until GitHub
    /// sent some.
    pub statistics: Option<Statistics>,
    queue_url: String,
    /// Locked while a renewal is under way, so concurrent 401s renew once.
    queue_token: Arc<Mutex<Secret>>,
}

impl Session {
    fn from_wire(scale_set_id: u64, wire: WireSession) -> Result<Session> {
        let queue = url::Url::parse(&wire.message_queue_url).ok();
        if !queue.is_some_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(GithubError::InvalidUrl {
                url: wire.message_queue_url,
                message: "message queue URL is not an http(s) URL".into(),
            });
        }
        Ok(Session {
            id: wire.session_id,
            owner: wire.owner_name,
            scale_set_id,
            statistics: wire.statistics.map(Statistics::from),
            queue_url: wire.message_queue_url,
            queue_token: Arc::new(Mutex::new(wire.message_queue_access_token)),
        })
    }

    fn token(&self) -> Secret {
        self.queue_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn path(&self) -> String {
        format!("{SCALE_SETS}/{}/sessions/{}", self.scale_set_id, self.id)
    }

    fn gone(&self) -> GithubError {
        GithubError::SessionGone {
            session: self.id.clone(),
        }
    }
}

impl ActionsService {
    /// Opens the scale set's message session. Another open session is
    /// [`GithubError::SessionConflict`]. Sent once: a retry after a lost answer would
    /// conflict with the session that answer carried.
    pub fn open_session(&self, scale_set: u64, owner: &str) -> Result<Session> {
        let path = format!("{SCALE_SETS}/{scale_set}/sessions");
        let body = json!({ "sessionId": NIL_SESSION, "ownerName": owner });
        let once = RetryPolicy {
            max_attempts: 1,
            ..self.connection().options().retry.clone()
        };
        let response = self.admin("POST", &path, &[], Some(&body), Some(&once))?;
        if response.status == 409 {
            return Err(GithubError::SessionConflict { scale_set });
        }
        let what = format!("runner scale set {scale_set}");
        Session::from_wire(scale_set, decode(expect(response, &[200, 201], &what)?)?)
    }

    /// Takes back session `session_id` of scale set `scale_set`, which a listener that
    /// stopped without closing it (killed, restarted) left open: a refresh gives its
    /// queue and a new token, and its unacknowledged messages come again. `None` when
    /// the service no longer knows it.
    pub fn resume_session(&self, scale_set: u64, session_id: &str) -> Result<Option<Session>> {
        let path = format!("{SCALE_SETS}/{scale_set}/sessions/{session_id}");
        let response = self.admin("PATCH", &path, &[], None, None)?;
        if response.status == 404 {
            return Ok(None);
        }
        let wire: WireSession = decode(expect(response, &[200], "message session")?)?;
        Session::from_wire(scale_set, wire).map(Some)
    }

    /// A new queue token and current statistics for the session.
    pub fn refresh_session(&self, session: &mut Session) -> Result<()> {
        let mut token = session
            .queue_token
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let fresh = self.patch_session(session)?;
        *token = fresh.message_queue_access_token;
        drop(token);
        if let Some(statistics) = fresh.statistics {
            session.statistics = Some(statistics.into());
        }
        Ok(())
    }

    /// Deletes the session, so another listener may open one; one already gone is not
    /// an error.
    pub fn close_session(&self, session: &Session) -> Result<()> {
        let response = self.admin("DELETE", &session.path(), &[], None, None)?;
        expect(response, &[200, 204, 404], "message session").map(drop)
    }

    /// One long poll for the message after `last_message_id` (0 at first). `None` when
    /// the service had nothing to say. An unacknowledged message comes again to a poll
    /// that has not seen it. A session the service dropped is
    /// [`GithubError::SessionGone`]: open a new one.
    pub fn next_message(
        &self,
        session: &mut Session,
        last_message_id: u64,
        max_capacity: u32,
    ) -> Result<Option<Message>> {
        let response = self.with_queue_token(session, |token| {
            self.poll(session, token, last_message_id, max_capacity)
        })?;
        match response.status {
            202 => Ok(None),
            200 => {
                let message = Message::from(decode::<WireMessage>(response)?);
                if message.statistics.is_some() {
                    session.statistics = message.statistics;
                }
                Ok(Some(message))
            }
            404 => Err(session.gone()),
            _ => Err(expect(response, &[], "message queue").unwrap_err()),
        }
    }

    /// Acknowledges message `message_id`, so it is not delivered again. One already
    /// acknowledged is not an error.
    pub fn ack(&self, session: &Session, message_id: u64) -> Result<()> {
        let mut url = queue_url(session)?;
        url.path_segments_mut()
            .map_err(|()| invalid_queue_url(session))?
            .pop_if_empty()
            .push(&message_id.to_string());
        let response = self.with_queue_token(session, |token| {
            self.connection().call(&Call {
                method: "DELETE",
                url: url.as_str(),
                auth: Auth::Bearer(token),
                headers: vec![("Content-Type", "application/json".into())],
                route: Some(calls::MESSAGE_QUEUE),
                ..Call::default()
            })
        })?;
        expect(response, &[200, 204, 404], "message").map(drop)
    }

    /// Asks for the jobs of `request_ids` (from `JobAvailable` events); returns those
    /// now assigned to the scale set. Asking twice is harmless.
    pub fn acquire_jobs(
        &self,
        scale_set: u64,
        session: &Session,
        request_ids: &[u64],
    ) -> Result<Vec<u64>> {
        let body = json!(request_ids);
        let path = format!("{SCALE_SETS}/{scale_set}/acquirejobs");
        let response = self.with_queue_token(session, |token| {
            let transport = self.connection();
            transport.call(&Call {
                method: "POST",
                url: &service_url(&transport, &path, &[]),
                body: Some(&body),
                auth: Auth::Bearer(token),
                ..Call::default()
            })
        })?;
        let what = format!("runner scale set {scale_set}");
        let acquired: List<u64> = decode(expect(response, &[200], &what)?)?;
        Ok(acquired.value)
    }

    fn poll(
        &self,
        session: &Session,
        token: &Secret,
        last: u64,
        capacity: u32,
    ) -> Result<RawResponse> {
        let mut url = queue_url(session)?;
        if last > 0 {
            url.query_pairs_mut()
                .append_pair("lastMessageId", &last.to_string());
        }
        let transport = self.connection();
        transport.call(&Call {
            method: "GET",
            url: url.as_str(),
            auth: Auth::Bearer(token),
            headers: vec![
                (
                    "Accept",
                    format!("application/json; api-version={API_VERSION}"),
                ),
                ("X-ScaleSetMaxCapacity", capacity.to_string()),
            ],
            timeout: Some(transport.options().poll_timeout),
            route: Some(calls::MESSAGE_QUEUE),
            ..Call::default()
        })
    }

    /// Runs `call` with the session's queue token; on a 401, renews the token (unless
    /// another caller already did) and runs it once more.
    fn with_queue_token(
        &self,
        session: &Session,
        call: impl Fn(&Secret) -> Result<RawResponse>,
    ) -> Result<RawResponse> {
        let stale = session.token();
        let response = call(&stale)?;
        if response.status != 401 {
            return Ok(response);
        }
        let fresh = {
            let mut token = session
                .queue_token
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *token == stale {
                log::info!("queue token of session {} expired; refreshing", session.id);
                *token = self.patch_session(session)?.message_queue_access_token;
            }
            token.clone()
        };
        call(&fresh)
    }

    /// `PATCH` on the session: a new queue token and statistics.
    fn patch_session(&self, session: &Session) -> Result<WireSession> {
        let response = self.admin("PATCH", &session.path(), &[], None, None)?;
        if response.status == 404 {
            return Err(session.gone());
        }
        decode(expect(response, &[200], "message session")?)
    }
}

fn queue_url(session: &Session) -> Result<url::Url> {
    url::Url::parse(&session.queue_url).map_err(|_| invalid_queue_url(session))
}

fn invalid_queue_url(session: &Session) -> GithubError {
    GithubError::InvalidUrl {
        url: session.queue_url.clone(),
        message: "unusable message queue URL".into(),
    }
}
