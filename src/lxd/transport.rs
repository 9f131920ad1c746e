//! HTTP over LXD's unix socket (hyper 1 + hyperlocal): sends a [`Request`] and
//! returns the status and body. Cheap to clone; many tasks can share it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::UnixConnector;

use super::request::Request;
use super::LxdError;

/// How long an ordinary request may take; long-polls set their own.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// HTTP client for one LXD socket (a fresh connection per request, see `new`).
#[derive(Clone)]
pub struct UnixTransport {
    client: Client<UnixConnector, Full<Bytes>>,
    socket: Arc<PathBuf>,
    /// hyperlocal's URI form: the socket path hex-encoded as the host.
    authority: Arc<str>,
}

impl std::fmt::Debug for UnixTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixTransport")
            .field("socket", &self.socket)
            .finish()
    }
}

impl UnixTransport {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        let socket = socket.into();
        let authority = format!(
            "unix://{}:0",
            hex::encode(socket.as_os_str().as_encoded_bytes())
        );
        UnixTransport {
            // No idle pool. LXD's unix listener peeks at the first bytes of each new
            // connection inside Accept(), so a connection that is open but silent stalls
            // every other client of the daemon (its own hooks included, whose 30 s
            // timeouts then fail starts and stops). hyper's pool races a spare connect
            // whenever a request waits and parks the loser idle for 90 s; without a pool
            // that loser is closed at once. A unix connect costs microseconds.
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(UnixConnector),
            socket: Arc::new(socket),
            authority: authority.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request; any HTTP status is a success here (the caller parses it).
    pub async fn send(&self, request: Request) -> Result<(u16, Vec<u8>), LxdError> {
        let uri: hyper::Uri = format!("{}{}", self.authority, request.path)
            .parse()
            .map_err(|e| LxdError::Protocol(format!("bad request path {}: {e}", request.path)))?;
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(uri)
            // LXD routes on the path only; hyper needs some Host.
            .header("Host", "lxd");
        if let Some(ct) = request.content_type {
            builder = builder.header("Content-Type", ct);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let http = builder
            .body(Full::new(Bytes::from(request.body)))
            .map_err(|e| LxdError::Protocol(format!("cannot build request: {e}")))?;
        let limit = request.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let exchange = async {
            let response = self
                .client
                .request(http)
                .await
                .map_err(|e| self.transport_error(e))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.transport_error(e))?
                .to_bytes();
            Ok((status, body.to_vec()))
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(LxdError::Timeout {
                what: format!("{} {}", request.method.as_str(), request.path),
                after: limit,
            }),
        }
    }

    fn transport_error(&self, e: impl std::error::Error) -> LxdError {
        // hyper's Display hides the cause (e.g. "No such file or directory").
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        LxdError::Transport {
            socket: self.socket.to_path_buf(),
            message,
        }
    }
}
