//! How the policy service takes connections: the charm's listeners on loopback only
//! ([`LoopbackAddr`]), and the bounds that keep one runner from starving the others
//! (open connections per source address and in all, a header-read time that also
//! closes idle keep-alive connections, a time limit per request). axum's own `serve`
//! has none of these, so connections are accepted here and served with hyper.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// An address for the charm's listener: loopback only, so the routes that mint tokens
/// and replace the policy are never reachable from a runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopbackAddr(SocketAddr);

impl LoopbackAddr {
    pub fn addr(self) -> SocketAddr {
        self.0
    }
}

/// Why a `--charm-bind` value is refused.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{raw}: {source}")]
    NotAnAddress {
        raw: String,
        source: std::net::AddrParseError,
    },
    #[error("{0} is not a loopback address: the charm's routes are served on loopback only")]
    NotLoopback(SocketAddr),
}

impl std::str::FromStr for LoopbackAddr {
    type Err = BindError;

    fn from_str(raw: &str) -> Result<Self, BindError> {
        let addr: SocketAddr = raw.parse().map_err(|source| BindError::NotAnAddress {
            raw: raw.to_string(),
            source,
        })?;
        if !addr.ip().is_loopback() {
            return Err(BindError::NotLoopback(addr));
        }
        Ok(LoopbackAddr(addr))
    }
}

/// Bounds on the connections of one kind of listener (the runners', the charm's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections from one source address; more are closed at once.
    pub per_source: usize,
    /// Open connections in all, across this kind's listeners; more are closed at once.
    pub total: usize,
    /// Time for a request's headers to arrive, counted from when the connection waits
    /// for a request: silent clients and idle keep-alive connections are closed after it.
    pub header_read: Duration,
    /// Time to read a request's body and answer it (a check's GitHub calls included).
    pub request: Duration,
}

/// The service's `LimitNOFILE=`, which the charm writes into its unit: the connection
/// limits below leave room under it for GitHub's connections and its files; a flood of
/// connections is closed, never held until this runs out.
pub const POLICY_NOFILE: u64 = 512;

impl Limits {
    /// For the runners' listeners. One runner makes one check at a time, so a few dozen
    /// connections per runner is generous; the total keeps the process well under the
    /// unit's `LimitNOFILE=` ([`POLICY_NOFILE`]) with room for
    /// GitHub's connections and the charm's listener.
    pub const RUNNERS: Limits = Limits {
        per_source: 32,
        total: 192,
        header_read: Duration::from_secs(10),
        // The pre-job script gives up after 60 s; a little more for its last bytes.
        request: Duration::from_secs(75),
    };

    /// For the charm's loopback listener: a budget of its own, so runners filling
    /// theirs cannot keep the charm from minting tokens.
    pub const CHARM: Limits = Limits {
        per_source: 32,
        total: 32,
        header_read: Duration::from_secs(10),
        request: Duration::from_secs(75),
    };
}

// Every connection is a descriptor; GitHub's connections, files and listeners need room
// too, so both budgets together stay under half the unit's limit.
const _: () = assert!((Limits::RUNNERS.total + Limits::CHARM.total) * 2 <= POLICY_NOFILE as usize);
const _: () = assert!(Limits::RUNNERS.per_source < Limits::RUNNERS.total);

/// Why a connection was closed without being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its source already has [`Limits::per_source`] open connections.
    Source,
    /// [`Limits::total`] connections are open.
    Total,
}

/// Counts open connections by source address for one kind of listener.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
    refused: u64,
}

/// An admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Admission {
    gate: Arc<Gate>,
    source: IpAddr,
}

impl Gate {
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            open: Mutex::new(Open::default()),
        })
    }

    /// Admits a connection from `source`, or says why not.
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Result<Admission, Refusal> {
        // An IPv4 peer on an IPv6 socket counts as its IPv4 address.
        let source = source.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_source = open.by_source.get(&source).copied().unwrap_or(0);
        let refusal = if from_source >= self.limits.per_source {
            Some(Refusal::Source)
        } else if open.total >= self.limits.total {
            Some(Refusal::Total)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            open.refused += 1;
            // Logged sparingly: a flood must not flood the journal too.
            if open.refused.is_power_of_two() {
                log::warn!(
                    "closed a connection from {source} ({refusal:?} limit; {} so far)",
                    open.refused
                );
            }
            return Err(refusal);
        }
        open.total += 1;
        *open.by_source.entry(source).or_insert(0) += 1;
        Ok(Admission {
            gate: self.clone(),
            source,
        })
    }

    /// Connections open now: in all, and from `source`.
    pub fn open(&self, source: IpAddr) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from = open.by_source.get(&source.to_canonical()).copied();
        (open.total, from.unwrap_or(0))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.by_source.remove(&self.source);
            }
        }
    }
}

/// The most a connection buffers while reading a request head.
const READ_BUFFER: usize = 16 * 1024;

/// After an accept error such as EMFILE the listener is retried after this pause:
/// the error says nothing about when a descriptor frees up, and retrying at once would
/// spin a core.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Accepts on `listener` until `stopped` turns true, serving `app` on each admitted
/// connection; then asks open connections to finish and waits for them.
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    gate: Arc<Gate>,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop_requested(&mut stopped) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    log::warn!("accepting on {:?}: {e}", listener.local_addr().ok());
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        // A refused connection is dropped here, closing it before any byte is read.
        if let Ok(admission) = gate.admit(peer.ip()) {
            let serve = serve_connection(stream, app.clone(), gate.limits, stopped.clone());
            connections.spawn(async move {
                serve.await;
                drop(admission);
            });
        }
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Resolves once the stop is sent (or its sender is gone).
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Accept errors that concern one connection only (the peer gave up meanwhile).
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let app = app.clone();
        async move {
            let answer = tokio::time::timeout(limits.request, app.oneshot(request)).await;
            Ok::<_, std::convert::Infallible>(match answer {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => too_slow(limits.request),
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        // A request head is a few hundred bytes; hyper's default buffer of ~400 KiB per
        // connection would let a few hundred connections hold a lot of the unit's memory.
        .max_buf_size(READ_BUFFER);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop_requested(&mut stopped) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        log::debug!("connection ended: {e}");
    }
}

fn too_slow(limit: Duration) -> Response<Body> {
    let reason = format!("the request was not read and answered within {limit:?}");
    (StatusCode::SERVICE_UNAVAILABLE, reason).into_response()
}

#[cfg(test)]
#[path = "listen_tests.rs"]
mod tests;
