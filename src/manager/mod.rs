//! The runner manager: a long-running service per unit (this binary's `manager`
//! subcommand, under systemd) that owns the unit's runner pool. Hooks write its
//! [`settings`] and ask it over a local socket ([`protocol`]); it does each request with
//! the same `Runners` the hooks used to drive ([`serve`]) and reconciles on its own
//! schedule ([`service`]).

pub mod demand;
pub mod exporter;
pub mod lifecycle;
pub mod listener;
pub mod observatory;
pub mod protocol;
pub mod retired;
pub mod serve;
pub mod service;
pub mod settings;
pub mod worker;

pub use protocol::{Done, Reply, Request};
pub use service::run;
pub use settings::Settings;
