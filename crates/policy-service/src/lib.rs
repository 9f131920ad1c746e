//! The repository policy service: each runner's pre-job script asks it whether the job's
//! repository (and pull request) may run on a self-hosted runner.
//!
//! - [`document`]: the policy document, its defaults and its file (pure + atomic store).
//! - [`github`]: the [`github::RepoApi`] trait the checks read GitHub through, and its
//!   implementation on the shared [`github_client::GithubClient`].
//! - [`checks`]: the rules, over that trait (pure given the trait).
//! - [`tokens`]: charm and one-time tokens, compared in constant time; a one-time token
//!   is bound to one runner's name, revocable, and expires; [`token_store`] keeps
//!   unused ones (digest, runner, expiry) across restarts; `token_routes` issues and
//!   revokes them for the charm.
//! - [`server`]: HTTP routes and handlers, the runners' and the charm's apart;
//!   `check_routes` turns check-run requests into [`checks`] and their outcomes into
//!   answers; [`server::serve`] runs on given listeners. [`listen`] accepts connections within
//!   bounds (per source, in all, header and request time) and keeps the charm's
//!   listeners on loopback. `auth` identifies every request's bearer token (using up a
//!   one-time token, accepted only from the runner named in `X-Runner-Name`) and
//!   gives handlers its role; `request` reads bodies and shapes refusals.
//! - [`observe`]: every check counted by route and result with its latency, served as
//!   `/metrics` on the charm's listener; each refusal appended to the event log.
//! - [`client`]: the charm's client of the service (one-time tokens, policy).
//! - [`prejob`]: renders the runner's pre-job script that calls the service.
//! - `fake` (feature `fakes`, for tests and benchmarks only): an in-memory `RepoApi`.

mod auth;
mod check_routes;
pub mod checks;
pub mod client;
pub mod document;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;
pub mod github;
pub mod listen;
pub mod observe;
pub mod prejob;
mod request;
pub mod server;
mod service_env;
mod token_routes;
pub mod token_store;
pub mod tokens;

pub use service_env::{ServiceEnv, APP_TOKEN_FILE};

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

/// The policy document's name in the service's state directory; the one-time tokens
/// live next to it ([`token_store::TokenFile::next_to`]).
pub const DOCUMENT_FILE: &str = "policy.json";

/// The first unit's port: runners reach the service on the bridge address, the charm
/// on loopback. Each unit on a machine runs its own service, on this port plus the
/// unit's slot (the charm's `host::site`).
pub const POLICY_PORT: u16 = 8080;

/// The service's base URL on `host` (an address or name), e.g. `http://10.1.2.1:8080`.
pub fn url(host: impl std::fmt::Display, port: u16) -> String {
    format!("http://{host}:{port}")
}

/// Where the charm reaches the service on `port`: its loopback listener.
pub fn local_url(port: u16) -> String {
    url(std::net::Ipv4Addr::LOCALHOST, port)
}

/// The service's listeners: runners' routes on `runners` (the bridge address), the
/// charm's on `charm` (loopback only, by type).
#[derive(Clone, Debug)]
pub struct Binds {
    pub runners: Vec<SocketAddr>,
    pub charm: Vec<listen::LoopbackAddr>,
}

/// Where the service appends its lifecycle events (one `refused-by-policy` line per
/// refusal), and the unit they name: `--events-log PATH --unit APP/N`. Without it the
/// service keeps no event log (unit files written before it had one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsFile {
    pub path: std::path::PathBuf,
    /// The Juju unit (`app/N`) the service answers for.
    pub unit: String,
}

impl EventsFile {
    /// The log, rotated at [`observe::EVENTS_MAX_BYTES`] keeping [`observe::EVENTS_KEEP`].
    pub fn open(&self) -> ghr_metrics::events::EventLog {
        ghr_metrics::events::EventLog::new(
            self.path.clone(),
            &self.unit,
            observe::EVENTS_MAX_BYTES,
            observe::EVENTS_KEEP,
        )
    }
}

/// Why the service could not start or store its policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A required environment variable is unset or empty.
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// An environment variable has an unusable value.
    #[error("environment variable {name}: {reason}")]
    InvalidEnv { name: &'static str, reason: String },
    /// The policy document could not be read, parsed or written.
    #[error(transparent)]
    Document(#[from] document::DocumentError),
    /// The GitHub client could not be built.
    #[error(transparent)]
    Github(#[from] github_client::GithubError),
    /// Listening on an address failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The one-time token file could not be read.
    #[error(transparent)]
    TokenStore(#[from] token_store::TokenStoreError),
    /// The runtime or a server failed.
    #[error("policy server: {0}")]
    Io(#[from] std::io::Error),
}

/// The client's bounds for the service: a check makes several calls and the pre-job
/// script gives up after 60 s, so no one call may wait long.
pub fn client_options() -> github_client::ClientOptions {
    let mut options = github_client::ClientOptions {
        request_timeout: std::time::Duration::from_secs(10),
        ..Default::default()
    };
    options.retry.max_total = std::time::Duration::from_secs(8);
    options
}

/// `github-runner policy-server --bind ADDR:PORT... --charm-bind 127.0.0.1:PORT...
/// [--events-log PATH --unit APP/N]`: runs until SIGTERM or SIGINT.
pub fn run(binds: &Binds, events: Option<&EventsFile>) -> ExitCode {
    match run_inner(binds, events) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Threads the GitHub checks may use at once (tokio's blocking pool); further checks
/// wait for one. Bounds the threads the unit's `TasksMax=` must allow.
pub const CHECK_THREADS: usize = 64;
/// Async worker threads: the service only routes requests, so a few suffice on any host.
pub const WORKER_THREADS: usize = 4;

fn run_inner(binds: &Binds, events: Option<&EventsFile>) -> Result<(), PolicyError> {
    let mut state = load_state()?;
    if let Some(events) = events {
        log::info!("refusals are logged to {}", events.path.display());
        state = state.with_events(events.open());
    }
    let state = Arc::new(state);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.min(WORKER_THREADS))
        .max_blocking_threads(CHECK_THREADS)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listeners = server::Listeners {
            runners: bind_all(binds.runners.iter().copied(), "runners").await?,
            charm: bind_all(binds.charm.iter().map(|a| a.addr()), "the charm").await?,
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => log::info!("SIGTERM: stopping"),
                _ = tokio::signal::ctrl_c() => log::info!("SIGINT: stopping"),
            }
        };
        server::serve(listeners, state, shutdown).await?;
        Ok(())
    })
}

/// The service's state from its environment: the GitHub client, the stored policy and
/// the one-time token store.
fn load_state() -> Result<server::AppState, PolicyError> {
    let env = ServiceEnv::from_lookup(|k| std::env::var(k).ok())?;
    let api_base = env.github_url.api_base();
    let proxy = ghr_types::proxy::ProxyConfig::from_env();
    let api = github_client::GithubClient::with_credential(
        &api_base,
        env.github,
        &proxy,
        client_options(),
    )?;
    if env.policy_document.is_none() {
        log::warn!("neither POLICY_DOCUMENT nor STATE_DIRECTORY is set: a posted policy lasts until the service stops");
    }
    let file = env.policy_document.map(document::DocumentFile::new);
    let mut state = server::AppState::new(env.charm_token.expose(), Arc::new(api), file)?
        .with_token_ttl(env.one_time_token_ttl);
    match env.one_time_tokens {
        Some(path) => state = state.with_token_file(token_store::TokenFile::new(path))?,
        None => log::warn!("no ONE_TIME_TOKENS_FILE: a restart refuses the tokens runners hold"),
    }
    Ok(state)
}

async fn bind_all(
    addrs: impl Iterator<Item = SocketAddr>,
    who: &str,
) -> Result<Vec<tokio::net::TcpListener>, PolicyError> {
    let mut listeners = Vec::new();
    for addr in addrs {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| PolicyError::Bind { addr, source })?;
        log::info!("listening for {who} on {}", listener.local_addr()?);
        listeners.push(listener);
    }
    Ok(listeners)
}
