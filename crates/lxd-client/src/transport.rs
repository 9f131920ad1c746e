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

use super::calls;
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
    /// Each request that reaches the socket is reported to [`calls`].
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
            .body(Full::new(request.body))
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
        let result = match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(LxdError::Timeout {
                what: format!("{} {}", request.method.as_str(), request.path),
                after: limit,
            }),
        };
        calls::report(request.method, &request.path, &result);
        result
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    use super::*;
    use crate::request;

    /// Reads one HTTP request (headers and a Content-Length body) from the stream.
    async fn read_request(stream: &mut tokio::net::UnixStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return text;
                }
            }
            assert!(n > 0, "connection closed mid-request");
        }
    }

    #[tokio::test]
    async fn sends_request_and_closes_connection_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("unix.socket");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let text = read_request(&mut stream).await;
            let body = r#"{"type":"sync","status_code":200,"metadata":{}}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).await.unwrap();
            // LXD peeks at every new connection inside Accept(): a client that keeps a
            // silent connection open stalls the daemon. Ours must close it.
            let mut rest = Vec::new();
            let closed =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
            (text, closed.is_ok())
        });
        let transport = UnixTransport::new(&socket);
        let file = request::FilePush {
            path: "/etc/x".into(),
            content: Bytes::from_static(b"abc"),
            uid: 1,
            gid: 2,
            mode: 0o600,
        };
        let (status, body) = transport
            .send(request::push_file("c1", &file))
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(request::parse_answer(status, &body).is_ok());
        let (text, closed) = server.await.unwrap();
        assert!(
            text.starts_with("POST /1.0/instances/c1/files?path=%2Fetc%2Fx HTTP/1.1\r\n"),
            "{text}"
        );
        let lower = text.to_ascii_lowercase();
        assert!(
            lower.contains("x-lxd-mode: 0600") && lower.contains("x-lxd-uid: 1"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nabc"), "{text}");
        assert!(closed, "client kept its connection open");
    }

    #[tokio::test]
    async fn missing_socket_is_a_transport_error_naming_it() {
        let transport = UnixTransport::new("/nonexistent/unix.socket");
        let err = transport.send(request::get_server()).await.unwrap_err();
        assert!(matches!(err, LxdError::Transport { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/unix.socket"),
            "{err}"
        );
    }
}
