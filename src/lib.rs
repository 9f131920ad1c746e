//! github-runner: a Juju charm that keeps a pool of ephemeral GitHub self-hosted runners,
//! each in its own single-use LXD instance.
//!
//! Module map (ARCHITECTURE.md draws the flow of one event through them):
//! - [`charm`]: Juju events to handlers, outcome to status, the error policy.
//! - [`config`]: `config-get` JSON to a validated [`config::CharmConfig`] (pure).
//! - [`host`]: the machine itself: packages, kernel, LXD setup, systemd units, runner env files.
//! - [`juju`]: hook tools behind a trait; the `juju-log` logger.
//! - [`proxy`]: Juju's proxy settings, for every HTTP client and runner.

pub mod charm;
pub mod config;
pub mod host;
pub mod juju;
pub mod proxy;
pub mod reconcile;
pub mod runner;

/// The charm's version, sent in the GitHub User-Agent and `application-version-set`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
