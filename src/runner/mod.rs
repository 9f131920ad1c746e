//! Runner provisioning: how an instance is made, what is pushed into it, and the LXD
//! and GitHub sides of the reconcile engine's ports.

pub mod app;
pub mod aproxy_nat;
pub mod files;
pub mod journal;
pub mod layout;
pub mod lxd_host;
pub mod pool;
pub mod registry;
pub mod units;

pub use ghr_types::{RunnerName, RunnerPrefix, MAX_NAME_LEN};
