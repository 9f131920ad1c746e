//! The host firewall between runner instances and the network: one nftables table owned by
//! the charm, rendered by a pure function ([`render`]) and replaced atomically ([`apply`]).
//!
//! What the table enforces for traffic entering from the runner bridge:
//! - forwarded IPv4 to the ranges no runner needs ([`render::ALWAYS_REFUSED`]: metadata,
//!   "this" network, multicast, reserved) is rejected whatever `denylist` says;
//! - forwarded IPv4 to any `denylist` CIDR is rejected (the bridge's host address excepted);
//! - to the host itself only DHCP, DNS (on the bridge address), replies to connections the
//!   host opened, and the allowed TCP ports (the policy service) pass; the rest is rejected;
//! - all IPv6 is dropped.
//!
//! Rejections answer with a TCP reset or an ICMP "administratively prohibited", so a job
//! fails fast instead of waiting for a timeout.
//!
//! [`ensure`] runs before every reconcile that wants runners: it reloads the table when it
//! is missing or altered; [`boot`] is the systemd unit that loads the last ruleset at boot,
//! before LXD starts.

pub mod apply;
pub mod boot;
pub mod ensure;
pub mod render;

pub use apply::Nft;
pub use ensure::{ensure, Drift, LoadRecord};
pub use render::{
    render, FirewallSpec, InterfaceName, Sources, TableName, ALWAYS_REFUSED, DEFAULT_TABLE,
};

/// Why the firewall could not be rendered, applied, checked or removed.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A table or interface name that nft would refuse, or that could escape its quotes.
    #[error("invalid {kind} name {value:?}: {reason}")]
    InvalidName {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    /// `nft` could not be started (not installed, not on PATH).
    #[error("could not run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// `nft -f` refused the ruleset. The transaction was aborted as a whole, so the
    /// previous ruleset is still in force.
    #[error("nft refused the ruleset for table {table} ({status}): {stderr}")]
    Rejected {
        table: String,
        status: String,
        stderr: String,
    },
    /// `nft list table` failed after a successful load.
    #[error("could not list table {table} ({status}): {stderr}")]
    List {
        table: String,
        status: String,
        stderr: String,
    },
    /// The table read back after loading lacks something the rendered ruleset defines.
    #[error("table {table} read back without {missing}")]
    Verify { table: String, missing: String },
    /// The record of a load (the ruleset the boot unit loads, the listing later checks
    /// compare with) could not be written; the table itself was loaded.
    #[error("could not keep the loaded ruleset: {0}")]
    Record(#[source] fs_state::FileError),
}
