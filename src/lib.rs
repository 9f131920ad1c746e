//! github-runner: a Juju charm that keeps a pool of ephemeral GitHub self-hosted runners,
//! each in its own single-use LXD instance. This crate is the charm itself; the
//! workspace's other crates are what it is built from (ARCHITECTURE.md draws the graph).
//!
//! Module map (ARCHITECTURE.md draws the flow of one event through them):
//! - [`charm`]: Juju events to handlers, outcome to status, the error policy.
//! - [`config`]: `config-get` JSON to a validated [`config::CharmConfig`] (pure).
//! - [`cos`]: what the unit offers the COS agent over `cos-agent` (scrape jobs,
//!   dashboards, alert rules, log files), built from the compiled-in `cos/` files (pure).
//! - [`firewall`]: the nftables table between runners and the network (render, apply).
//! - [`host`]: the machine itself: packages, kernel, LXD setup, systemd units, runner env files.
//! - [`juju`]: hook tools behind a trait; the `juju-log` logger.
//! - [`manager`]: the runner manager service that owns the unit's pool, and how hooks ask it.
//! - [`runner`]: how a runner instance is made and what is pushed into it; the LXD and
//!   GitHub sides of the reconcile engine's ports.

pub mod charm;
pub mod config;
pub mod cos;
pub mod firewall;
pub mod host;
pub mod juju;
pub mod manager;
pub mod runner;

/// Juju's proxy settings, shared with every client (re-exported from the shared types).
pub use ghr_types::proxy;

/// The charm's version, sent in the GitHub User-Agent and `application-version-set`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
