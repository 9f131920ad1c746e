//! github-runner: a Juju charm that keeps a pool of ephemeral GitHub self-hosted runners,
//! each in its own single-use LXD instance.
//!
//! Module map (ARCHITECTURE.md draws the flow of one event through them):
//! - [`aproxy`]: the transparent proxy run inside runners (`github-runner aproxy`).
//! - [`charm`]: Juju events to handlers, outcome to status, the error policy.
//! - [`config`]: `config-get` JSON to a validated [`config::CharmConfig`] (pure).
//! - [`firewall`]: the nftables table between runners and the network (render, apply).
//! - [`host`]: the machine itself: packages, kernel, LXD setup, systemd units, runner env files.
//! - [`juju`]: hook tools behind a trait; the `juju-log` logger.
//! - [`github`]: GitHub REST client (runners, JIT, downloads) with retries and rate limits.
//! - [`sim`]: an in-memory GitHub simulator with a runner app, for tests and demos.
//! - [`lxd`]: async LXD REST client over the unix socket (types, transport, typed API).
//! - [`policy`]: the repository policy service runners ask before a job starts.
//! - [`proxy`]: Juju's proxy settings, for every HTTP client and runner.
//! - [`ustar`]: a minimal tar writer (the simulator's runner app, a runner's files).

pub mod aproxy;
pub mod charm;
pub mod config;
pub mod firewall;
pub mod github;
pub mod host;
pub mod juju;
pub mod lxd;
pub mod policy;
pub mod proxy;
pub mod reconcile;
pub mod runner;
pub mod sim;
pub mod ustar;

/// The charm's version, sent in the GitHub User-Agent and `application-version-set`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
