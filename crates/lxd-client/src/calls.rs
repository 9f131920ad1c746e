//! What the client tells [`ghr_types::telemetry`] about each request it sends over the
//! socket: its method, a bounded route template (`/1.0/instances/{}`) and how it ended.

use ghr_types::telemetry::{self, Api, Call, Outcome};

use super::request::Method;
use super::LxdError;

/// Every path word of the LXD routes this client builds ([`super::request`]) or is
/// handed (exec log URLs); anything else in a path (an instance, profile, pool,
/// network, image, operation or log file) becomes `{}`.
pub const ROUTE_WORDS: &[&str] = &[
    "1.0",
    "instances",
    "state",
    "exec",
    "files",
    // Exec output: `logs/{file}` up to LXD 5.0, `logs/exec-output/{file}` later.
    "logs",
    "exec-output",
    "operations",
    "wait",
    "profiles",
    "storage-pools",
    "networks",
    "images",
    "aliases",
];

/// `path`'s template: query dropped, names and ids as `{}`.
pub fn route(path: &str) -> String {
    telemetry::route_template(path, ROUTE_WORDS)
}

/// Reports the end of the request to `path`: any status is an answer; an error (no
/// connection, a broken one, no answer in time) is none.
pub fn report(method: Method, path: &str, result: &Result<(u16, Vec<u8>), LxdError>) {
    if !telemetry::observing() {
        return;
    }
    let outcome = match result {
        Ok((status, _)) => Outcome::Status(*status),
        Err(_) => Outcome::Transport,
    };
    telemetry::report_call(&Call {
        api: Api::Lxd,
        method: method.as_str(),
        route: &route(path),
        outcome,
    });
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
