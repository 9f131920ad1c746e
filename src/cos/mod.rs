//! What this unit offers the COS agent (grafana-agent or opentelemetry-collector) over
//! the `cos-agent` relation, built without I/O: the unit databag value the `cos_agent`
//! charm library's provider writes (key `config`, one JSON object), from the files under
//! `cos/` that are compiled into the binary, the unit's ports and log files, and the Juju
//! topology. `charm::cos_agent` writes it with `relation-set`.
//!
//! - [`dashboards`]: Grafana dashboards with the library's uid and tag, xz + base64.
//! - [`rules`]: Prometheus and Loki alert rules with the library's group names and
//!   topology labels.
//! - [`scrape`]: the scrape jobs (runner manager, policy service) and the log files.

pub mod dashboards;
pub mod rules;
pub mod scrape;

#[cfg(test)]
mod query_names;

use serde::Serialize;
use serde_json::{Map, Value};

pub use scrape::Endpoints;

/// The key of the unit databag the whole value goes under (the library's `KEY`).
pub const DATABAG_KEY: &str = "config";

/// The charm's metadata, for its name (dashboard uids and tags, the `juju_charm` label).
const METADATA: &str = include_str!("../../metadata.yaml");

/// The charm's name as `metadata.yaml` gives it (a top-level `name:`).
pub fn charm_name() -> &'static str {
    METADATA
        .lines()
        .find_map(|line| line.strip_prefix("name:"))
        .map(|name| name.trim().trim_matches(['"', '\'']))
        .unwrap_or(env!("CARGO_PKG_NAME"))
}

/// Where the unit runs, as Juju names it: what the library's `JujuTopology` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    pub model: String,
    pub model_uuid: String,
    pub application: String,
    /// `app/N`
    pub unit: String,
    pub charm: String,
}

impl Topology {
    /// From the hook's environment (`JUJU_MODEL_NAME`, `JUJU_MODEL_UUID`) as `var`
    /// gives it, and the unit's name.
    pub fn from_lookup(unit: &str, var: impl Fn(&str) -> Option<String>) -> Self {
        Topology {
            model: var("JUJU_MODEL_NAME").unwrap_or_default(),
            model_uuid: var("JUJU_MODEL_UUID").unwrap_or_default(),
            application: unit.split('/').next().unwrap_or(unit).to_string(),
            unit: unit.to_string(),
            charm: charm_name().to_string(),
        }
    }

    /// `<model>_<first 8 of the uuid>_<app>`: the prefix of every alert group name.
    pub fn identifier(&self) -> String {
        let short: String = self.model_uuid.chars().take(8).collect();
        format!("{}_{short}_{}", self.model, self.application).replace('/', "_")
    }

    /// The labels every alert rule carries (never the unit: the rules are the
    /// application's); an empty value is left out, as the library does.
    pub fn rule_labels(&self) -> Vec<(&'static str, &str)> {
        [
            ("juju_model", self.model.as_str()),
            ("juju_model_uuid", self.model_uuid.as_str()),
            ("juju_application", self.application.as_str()),
            ("juju_charm", self.charm.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

/// A compiled-in file that could not be turned into relation data. Each is a defect of
/// the charm's own files (the tests build every one), never of the deployment.
#[derive(Debug, thiserror::Error)]
pub enum CosError {
    /// A dashboard is not a JSON object.
    #[error("dashboard {path}: {reason}")]
    Dashboard { path: String, reason: String },
    /// A rule file is not a rules file (YAML `groups:` or one rule).
    #[error("rule file {path}: {reason}")]
    Rules { path: String, reason: String },
    /// xz compression failed (only on allocation failure).
    #[error("compressing dashboard {path}: {source}")]
    Compress {
        path: String,
        source: std::io::Error,
    },
}

/// The library's `CosAgentProviderUnitData`, field by field, as its `.json()` writes
/// it: optional fields present as `null` when unset.
#[derive(Clone, Debug, Serialize)]
pub struct UnitData {
    pub metrics_alert_rules: Value,
    pub log_alert_rules: Value,
    pub dashboards: Vec<String>,
    /// No longer read by any requirer; kept, as the library keeps it.
    pub subordinate: Option<bool>,
    pub metrics_scrape_jobs: Vec<Value>,
    /// Snap slots to take logs from: none, the logs are files.
    pub log_slots: Vec<String>,
    pub tracing_protocols: Option<Vec<String>>,
    /// Globs of the lifecycle logs, for the collector's file log receiver.
    pub include_log_files: Vec<String>,
}

/// Everything the unit offers, from the compiled-in files and this unit's place.
pub fn unit_data(topology: &Topology, endpoints: &Endpoints) -> Result<UnitData, CosError> {
    Ok(UnitData {
        metrics_alert_rules: rules::metrics_alert_rules(topology)?,
        log_alert_rules: rules::log_alert_rules(topology)?,
        dashboards: dashboards::encoded(topology)?,
        subordinate: None,
        metrics_scrape_jobs: scrape::jobs(topology, endpoints),
        log_slots: Vec::new(),
        tracing_protocols: None,
        include_log_files: endpoints.log_files.clone(),
    })
}

/// The unit databag's settings: the value as one JSON string under [`DATABAG_KEY`].
pub fn databag(data: &UnitData) -> Map<String, Value> {
    let json = serde_json::to_string(data).expect("plain JSON values always serialize");
    Map::from_iter([(DATABAG_KEY.to_string(), Value::String(json))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let env = |k: &str| match k {
            "JUJU_MODEL_NAME" => Some("ci-prod".to_string()),
            "JUJU_MODEL_UUID" => Some("4f0d2a6e-1c3b-4e8a-9b7d-2c5e8f1a6b3d".to_string()),
            _ => None,
        };
        Topology::from_lookup("runners-a/3", env)
    }

    /// A file added under cos/ but not to its list would never reach the agent.
    #[test]
    fn every_file_under_cos_is_compiled_in() {
        for (dir, listed) in [
            ("cos/grafana_dashboards", dashboards::DASHBOARDS),
            ("cos/prometheus_alert_rules", rules::METRICS_RULES),
            ("cos/loki_alert_rules", rules::LOG_RULES),
        ] {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let mut on_disk: Vec<String> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
                .collect();
            on_disk.sort();
            let mut names: Vec<String> = listed.iter().map(|(p, _)| p.to_string()).collect();
            names.sort();
            assert_eq!(names, on_disk, "a file in {dir} is not compiled in");
        }
    }

    #[test]
    fn the_charm_name_is_the_one_metadata_gives() {
        let meta: serde_yaml::Value = serde_yaml::from_str(METADATA).unwrap();
        assert_eq!(charm_name(), meta["name"].as_str().unwrap());
    }

    #[test]
    fn topology_comes_from_the_unit_and_the_model() {
        let t = topology();
        assert_eq!(t.application, "runners-a");
        assert_eq!(t.identifier(), "ci-prod_4f0d2a6e_runners-a");
        let labels: Vec<&str> = t.rule_labels().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            labels,
            [
                "juju_model",
                "juju_model_uuid",
                "juju_application",
                "juju_charm"
            ]
        );
    }

    #[test]
    fn an_unknown_model_uuid_is_left_out_of_the_labels() {
        let t = Topology::from_lookup("a/0", |_| None);
        let labels: Vec<&str> = t.rule_labels().iter().map(|(k, _)| *k).collect();
        assert_eq!(labels, ["juju_application", "juju_charm"]);
    }

    #[test]
    fn the_databag_holds_one_json_string_with_every_field_of_the_model() {
        let endpoints = Endpoints {
            manager_port: 9464,
            policy_port: 8080,
            log_files: vec!["/var/log/x/events.log*".into()],
        };
        let bag = databag(&unit_data(&topology(), &endpoints).unwrap());
        assert_eq!(bag.keys().collect::<Vec<_>>(), [DATABAG_KEY]);
        let value: Value = serde_json::from_str(bag[DATABAG_KEY].as_str().unwrap()).unwrap();
        let mut keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "dashboards",
                "include_log_files",
                "log_alert_rules",
                "log_slots",
                "metrics_alert_rules",
                "metrics_scrape_jobs",
                "subordinate",
                "tracing_protocols"
            ]
        );
        assert_eq!(value["subordinate"], Value::Null);
        assert_eq!(value["log_slots"], serde_json::json!([]));
    }
}
