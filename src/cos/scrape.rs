//! The unit's scrape jobs and log files. Jobs are full Prometheus `scrape_config`s,
//! each with its own non-empty `job_name`: a job without one (as the library's patches
//! 23 and 24 sent) makes the agent's whole configuration fail to load.

use std::path::Path;

use serde_json::{json, Value};

use super::Topology;
use crate::host::site::UnitSite;
use crate::host::HostPaths;

/// Both services serve Prometheus text at this path.
pub const METRICS_PATH: &str = "/metrics";

/// What this unit serves the agent on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The runner manager's metrics port (loopback and the unit's address).
    pub manager_port: u16,
    /// The policy service's loopback port, where it serves `/metrics` too.
    pub policy_port: u16,
    /// Globs of the JSON lifecycle logs (rotated files included).
    pub log_files: Vec<String>,
}

impl Endpoints {
    /// The unit's ports from its site; its logs where `paths` put them.
    pub fn of_unit(site: &UnitSite, paths: &HostPaths) -> Self {
        let logs = [paths.events_log(), paths.policy_events_log()];
        Endpoints {
            manager_port: site.metrics_port(),
            policy_port: site.policy_port(),
            log_files: logs.iter().map(|log| with_rotated(log)).collect(),
        }
    }
}

/// `events.log` and its rotated siblings (`events.log.1`, ...).
fn with_rotated(log: &Path) -> String {
    format!("{}*", log.display())
}

/// `<app>_<unit number>_<service>`: unique on the agent (one per unit and service), and
/// what the alert rules match the manager's `up` series by.
pub fn job_name(topology: &Topology, service: &str) -> String {
    format!("{}_{service}", topology.unit.replace('/', "_"))
}

/// The manager's job, then the policy service's.
pub fn jobs(topology: &Topology, endpoints: &Endpoints) -> Vec<Value> {
    [
        ("manager", endpoints.manager_port),
        ("policy", endpoints.policy_port),
    ]
    .into_iter()
    .map(|(service, port)| {
        json!({
            "job_name": job_name(topology, service),
            "metrics_path": METRICS_PATH,
            "static_configs": [{"targets": [format!("localhost:{port}")]}],
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_has_its_own_job_on_loopback() {
        let site = UnitSite::new("runners-a/3", 2, false);
        let paths = HostPaths::for_unit("/", "runners-a/3");
        let endpoints = Endpoints::of_unit(&site, &paths);
        let topology = super::super::Topology::from_lookup("runners-a/3", |_| None);
        let jobs = jobs(&topology, &endpoints);
        assert_eq!(
            jobs,
            [
                json!({"job_name": "runners-a_3_manager", "metrics_path": "/metrics",
                       "static_configs": [{"targets": ["localhost:9466"]}]}),
                json!({"job_name": "runners-a_3_policy", "metrics_path": "/metrics",
                       "static_configs": [{"targets":
                           [format!("localhost:{}", site.policy_port())]}]}),
            ]
        );
        assert_eq!(
            endpoints.log_files,
            [
                "/var/log/github-runner/runners-a-3/events.log*",
                "/var/log/github-runner-policy-runners-a-3/events.log*"
            ]
        );
    }
}
