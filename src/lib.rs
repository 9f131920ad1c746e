//! github-runner: a Juju charm that keeps a pool of ephemeral GitHub self-hosted runners,
//! each in its own single-use LXD instance.
//!
//! Module map (ARCHITECTURE.md draws the flow of one event through them):
//! - [`charm`]: Juju events to handlers, outcome to status, the error policy.
//! - [`config`]: `config-get` JSON to a validated [`config::CharmConfig`] (pure).
//! - [`juju`]: hook tools behind a trait; the `juju-log` logger.
//! - [`policy`]: the repository policy service runners ask before a job starts.
//! - [`proxy`]: Juju's proxy settings, for every HTTP client and runner.

pub mod charm;
pub mod config;
pub mod juju;
pub mod policy;
pub mod proxy;

/// The charm's version, sent in the GitHub User-Agent and `application-version-set`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
