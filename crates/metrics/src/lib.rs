//! The charm's Prometheus metrics, on `prometheus-client` (its text exposition, not a
//! hand-written one). Two processes export them: the runner manager
//! ([`ManagerMetrics`], every family about the pool, GitHub, LXD and the scale set) and
//! the policy service ([`PolicyMetrics`]). Every name carries the prefix
//! `github_runner_`; labels take values from small fixed sets (states, reasons, route
//! templates), never a runner name or a job id.
//!
//! Counters start at zero when their process starts: the dashboard and the alert rules
//! read them only through `rate()`/`increase()`, which handle those resets.

mod calls;
pub mod events;
mod labels;
mod manager;
mod policy;

pub use manager::{
    ManagerMetrics, RunnerState, ScaleSetFigures, CREATION_FAILURE_CAUSES, REMOVAL_REASONS,
};
pub use policy::{PolicyMetrics, PolicyResult};

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// Every exported name starts with this (and an underscore).
pub const PREFIX: &str = "github_runner";

/// The text exposition of `registry` (Prometheus text format 0.0.4 / OpenMetrics).
pub fn exposition(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

/// The `Content-Type` of [`exposition`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metric names an exposition offers (from its `# TYPE` lines), with the sample
/// suffixes each type adds: what a dashboard query may name.
pub fn exported_names(exposition: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in exposition.lines() {
        let mut words = line.split_whitespace();
        if (words.next(), words.next()) != (Some("#"), Some("TYPE")) {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests;
