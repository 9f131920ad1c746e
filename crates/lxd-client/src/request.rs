//! Pure request building and response parsing for LXD's REST API: no I/O here, so
//! every endpoint's shape and every kind of answer is unit-tested.

use std::time::Duration;

pub use hyper::body::Bytes;

use serde::Serialize;
use serde_json::Value;

use super::types::{
    ConfigMap, Envelope, ExecPost, InstancesPost, Network, Operation, Profile, StatePut,
    StoragePool,
};
use super::LxdError;

/// HTTP methods LXD's API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One request, ready for a transport.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    /// Absolute path with query, e.g. `/1.0/instances?recursion=1`.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    /// JSON or raw bytes; `content_type` says which. Shared, not copied: a pushed
    /// runner application may be hundreds of megabytes.
    pub body: Bytes,
    pub content_type: Option<&'static str>,
    /// How long the transport waits for the answer (long-polls need more than the default).
    pub timeout: Option<Duration>,
}

impl Request {
    fn new(method: Method, path: String) -> Self {
        Request {
            method,
            path,
            headers: Vec::new(),
            body: Bytes::new(),
            content_type: None,
            timeout: None,
        }
    }

    fn json(method: Method, path: String, body: &impl Serialize) -> Self {
        let mut r = Request::new(method, path);
        // Serialising our own plain structs cannot fail.
        r.body = serde_json::to_vec(body)
            .expect("serialisable request body")
            .into();
        r.content_type = Some("application/json");
        r
    }
}

/// What a successful answer carried: a payload, or an operation to wait for.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Sync(Value),
    Async(Operation),
}

/// Percent-encodes one path segment (LXD names are plain, but never trust that).
pub fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query_value(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

pub fn get_server() -> Request {
    Request::new(Method::Get, "/1.0".into())
}

/// `recursion` 1 gives full instances, 2 adds their state (addresses, pid).
pub fn list_instances(recursion: u8) -> Request {
    Request::new(Method::Get, format!("/1.0/instances?recursion={recursion}"))
}

pub fn get_instance(name: &str) -> Request {
    Request::new(Method::Get, format!("/1.0/instances/{}", segment(name)))
}

pub fn get_instance_state(name: &str) -> Request {
    Request::new(
        Method::Get,
        format!("/1.0/instances/{}/state", segment(name)),
    )
}

pub fn create_instance(body: &InstancesPost) -> Request {
    Request::json(Method::Post, "/1.0/instances".into(), body)
}

pub fn put_instance_state(name: &str, body: &StatePut) -> Request {
    let path = format!("/1.0/instances/{}/state", segment(name));
    Request::json(Method::Put, path, body)
}

pub fn delete_instance(name: &str) -> Request {
    Request::new(Method::Delete, format!("/1.0/instances/{}", segment(name)))
}

pub fn exec(name: &str, body: &ExecPost) -> Request {
    let path = format!("/1.0/instances/{}/exec", segment(name));
    Request::json(Method::Post, path, body)
}

/// GET or DELETE of a URL LXD handed us (an exec log file); it must be one of its own.
pub fn raw_path(method: Method, url: &str) -> Result<Request, LxdError> {
    if !url.starts_with("/1.0/") {
        return Err(LxdError::Protocol(format!(
            "unexpected URL from LXD: {url}"
        )));
    }
    Ok(Request::new(method, url.to_string()))
}

/// A file for [`push_file`]: where, what, and whose.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePush {
    pub path: String,
    /// Cheap to clone: every runner of a reconcile shares one copy of the application.
    pub content: Bytes,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

pub fn push_file(instance: &str, file: &FilePush) -> Request {
    let path = format!(
        "/1.0/instances/{}/files?path={}",
        segment(instance),
        query_value(&file.path)
    );
    let mut r = Request::new(Method::Post, path);
    r.headers = vec![
        ("X-LXD-uid", file.uid.to_string()),
        ("X-LXD-gid", file.gid.to_string()),
        ("X-LXD-mode", format!("{:04o}", file.mode)),
        ("X-LXD-type", "file".into()),
        ("X-LXD-write", "overwrite".into()),
    ];
    r.body = file.content.clone();
    r.content_type = Some("application/octet-stream");
    r
}

pub fn pull_file(instance: &str, path: &str) -> Request {
    let path = format!(
        "/1.0/instances/{}/files?path={}",
        segment(instance),
        query_value(path)
    );
    Request::new(Method::Get, path)
}

/// Long-polls an operation: LXD answers when it is done or after `timeout`.
pub fn wait_operation(id: &str, timeout: Duration) -> Request {
    let secs = timeout.as_secs().max(1);
    let mut r = Request::new(
        Method::Get,
        format!("/1.0/operations/{}/wait?timeout={secs}", segment(id)),
    );
    // The daemon holds the answer up to `secs`; leave it room to reply.
    r.timeout = Some(Duration::from_secs(secs + 15));
    r
}

pub fn get_profile(name: &str) -> Request {
    Request::new(Method::Get, format!("/1.0/profiles/{}", segment(name)))
}

pub fn create_profile(profile: &Profile) -> Request {
    Request::json(Method::Post, "/1.0/profiles".into(), profile)
}

/// Replaces a profile's description, config and devices.
pub fn update_profile(profile: &Profile) -> Request {
    let body = serde_json::json!({
        "description": profile.description,
        "config": profile.config,
        "devices": profile.devices,
    });
    Request::json(
        Method::Put,
        format!("/1.0/profiles/{}", segment(&profile.name)),
        &body,
    )
}

pub fn delete_profile(name: &str) -> Request {
    Request::new(Method::Delete, format!("/1.0/profiles/{}", segment(name)))
}

/// Every profile, in full (`recursion=1`).
pub fn list_profiles() -> Request {
    Request::new(Method::Get, "/1.0/profiles?recursion=1".into())
}

pub fn delete_storage_pool(name: &str) -> Request {
    Request::new(
        Method::Delete,
        format!("/1.0/storage-pools/{}", segment(name)),
    )
}

pub fn get_storage_pool(name: &str) -> Request {
    Request::new(Method::Get, format!("/1.0/storage-pools/{}", segment(name)))
}

pub fn create_storage_pool(pool: &StoragePool) -> Request {
    Request::json(Method::Post, "/1.0/storage-pools".into(), pool)
}

/// Replaces a pool's description and config (the driver cannot change).
pub fn update_storage_pool(pool: &StoragePool) -> Request {
    let body = serde_json::json!({ "description": pool.description, "config": pool.config });
    let path = format!("/1.0/storage-pools/{}", segment(&pool.name));
    Request::json(Method::Put, path, &body)
}

pub fn get_network(name: &str) -> Request {
    Request::new(Method::Get, format!("/1.0/networks/{}", segment(name)))
}

pub fn create_network(network: &Network) -> Request {
    Request::json(Method::Post, "/1.0/networks".into(), network)
}

/// Changes only the server settings named (`PATCH /1.0`); an empty value unsets one.
pub fn patch_server_config(changes: &ConfigMap) -> Request {
    Request::json(
        Method::Patch,
        "/1.0".into(),
        &serde_json::json!({ "config": changes }),
    )
}

pub fn get_image_alias(name: &str) -> Request {
    Request::new(
        Method::Get,
        format!("/1.0/images/aliases/{}", segment(name)),
    )
}

pub fn get_image(fingerprint: &str) -> Request {
    Request::new(Method::Get, format!("/1.0/images/{}", segment(fingerprint)))
}

/// Turns an HTTP status and JSON body into an answer or LXD's own error.
pub fn parse_answer(status: u16, body: &[u8]) -> Result<Answer, LxdError> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) if status >= 400 => {
            // Errors from proxies or a half-started daemon may not be JSON.
            let text = String::from_utf8_lossy(body).trim().to_string();
            return Err(error_for(
                status,
                if text.is_empty() { e.to_string() } else { text },
            ));
        }
        Err(e) => return Err(LxdError::Protocol(format!("invalid JSON from LXD: {e}"))),
    };
    match envelope.kind.as_str() {
        "sync" if status < 400 => Ok(Answer::Sync(envelope.metadata)),
        "async" if status < 400 => {
            let op: Operation = serde_json::from_value(envelope.metadata).map_err(|e| {
                LxdError::Protocol(format!("async answer without an operation: {e}"))
            })?;
            Ok(Answer::Async(op))
        }
        _ => {
            let code = if envelope.error_code != 0 {
                envelope.error_code
            } else {
                status
            };
            Err(error_for(code, envelope.error))
        }
    }
}

/// Parses a raw (non-JSON) success body such as a file or log; errors are still JSON.
pub fn parse_raw(status: u16, body: Vec<u8>) -> Result<Vec<u8>, LxdError> {
    if status < 400 {
        return Ok(body);
    }
    parse_answer(status, &body).and(Err(LxdError::Protocol(format!(
        "HTTP {status} without an error"
    ))))
}

fn error_for(status: u16, message: String) -> LxdError {
    if status == 404 {
        LxdError::NotFound { message }
    } else if is_busy(&message) {
        LxdError::Busy { message }
    } else {
        LxdError::Api { status, message }
    }
}

/// LXD says an object is busy only in words ("Instance is busy running a \"create\"
/// operation", status 400 or 500 like any other refusal): the one place they are read.
fn is_busy(message: &str) -> bool {
    message.contains("is busy running")
}

/// Decodes a sync payload into the expected type.
pub fn decode<T: serde::de::DeserializeOwned>(answer: Answer) -> Result<T, LxdError> {
    match answer {
        Answer::Sync(value) => serde_json::from_value(value)
            .map_err(|e| LxdError::Protocol(format!("unexpected payload: {e}"))),
        Answer::Async(op) => Err(LxdError::Protocol(format!(
            "expected a direct answer, got operation {}",
            op.id
        ))),
    }
}

/// A finished operation as a result: failures carry LXD's `err` text.
pub fn operation_result(op: Operation) -> Result<Operation, LxdError> {
    if op.succeeded() {
        Ok(op)
    } else if is_busy(&op.err) {
        Err(LxdError::Busy { message: op.err })
    } else {
        Err(LxdError::Operation {
            description: op.description,
            status: op.status,
            message: op.err,
        })
    }
}
