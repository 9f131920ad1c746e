//! What the service reads from a request besides its token: the JSON body and its
//! fields, checked before any rule runs; and [`Reject`], the answer when they are wrong.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::github::RepoName;

/// A request refused before any rule ran: its status and a text saying why.
#[derive(Debug)]
pub(super) struct Reject {
    status: StatusCode,
    message: String,
}

impl Reject {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
        }
    }
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
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

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (status, content_type, body.into()).into_response()
}

/// The JSON object a request carries; 415 when it is not JSON.
pub(super) fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Reject> {
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
pub(super) fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, Reject> {
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

pub(super) fn repo_field(body: &Map<String, Value>, name: &str) -> Result<RepoName, Reject> {
    RepoName::parse(field(body, name)?)
        .map_err(|e| Reject::bad_request(format!("field {name}: {e}")))
}

/// A commit id: 40 (SHA-1) or 64 (SHA-256) hex characters.
pub(super) fn commit_sha(raw: &str) -> Result<String, Reject> {
    if matches!(raw.len(), 40 | 64) && raw.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(Reject::bad_request(
            "field commit_sha: not a commit id (40 or 64 hex characters)",
        ))
    }
}
