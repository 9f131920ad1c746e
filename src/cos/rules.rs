//! Alert rules as the `cos_agent` library sends them (cos-lib's `AlertRules`): every
//! group renamed `<topology identifier>_<group>_rules` (characters outside
//! `[A-Za-z0-9_:]` become `_`), every rule labelled with the application's Juju
//! topology, and `%%juju_topology%%` taken out of each expression as the library does
//! without `cos-tool` (the requirer injects the matchers from those labels).
//!
//! The suffix is current cos-lib's (1.11): older releases (1.3) wrote `_alerts`. Group
//! names need only be unique; a requirer with either release keeps them apart.

use serde_json::{json, Map, Value};

use super::{CosError, Topology};

/// Prometheus (PromQL) rule files: path relative to the charm's root, and content.
pub const METRICS_RULES: &[(&str, &str)] = &[(
    "cos/prometheus_alert_rules/github-runner.rules",
    include_str!("../../cos/prometheus_alert_rules/github-runner.rules"),
)];

/// Loki (LogQL) rule files.
pub const LOG_RULES: &[(&str, &str)] = &[(
    "cos/loki_alert_rules/github-runner.rules",
    include_str!("../../cos/loki_alert_rules/github-runner.rules"),
)];

/// The query language of a rule set: what stands in for `%%juju_topology%%`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    PromQl,
    /// A LogQL stream selector may not be empty: the library puts `job=~".+"` there.
    LogQl,
}

impl Query {
    fn topology_stand_in(self) -> &'static str {
        match self {
            Query::PromQl => "",
            Query::LogQl => r#"job=~".+""#,
        }
    }
}

/// The Prometheus rules, with the library's generic `HostHealth` group added.
pub fn metrics_alert_rules(topology: &Topology) -> Result<Value, CosError> {
    let mut groups = from_files(METRICS_RULES, Query::PromQl, topology)?;
    groups.extend(prepare_groups(
        host_health(),
        Query::PromQl,
        topology,
        "HostHealth",
    )?);
    Ok(as_rules(groups))
}

pub fn log_alert_rules(topology: &Topology) -> Result<Value, CosError> {
    from_files(LOG_RULES, Query::LogQl, topology).map(as_rules)
}

/// `{"groups": [...]}`, or `{}` when there are none (the library's `as_dict`).
fn as_rules(groups: Vec<Value>) -> Value {
    if groups.is_empty() {
        json!({})
    } else {
        json!({ "groups": groups })
    }
}

fn from_files(
    files: &[(&str, &str)],
    query: Query,
    topology: &Topology,
) -> Result<Vec<Value>, CosError> {
    let mut groups = Vec::new();
    for (path, text) in files {
        let bad = |reason: String| CosError::Rules {
            path: path.to_string(),
            reason,
        };
        let doc: Value = serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let stem = file_stem(path);
        groups.extend(
            prepare_groups(doc, query, topology, stem).map_err(|e| match e {
                CosError::Rules { reason, .. } => bad(reason),
                other => other,
            })?,
        );
    }
    Ok(groups)
}

fn file_stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').map_or(name, |(stem, _)| stem)
}

/// One file's groups: the official `groups:` form, or a single rule (`alert` and
/// `expr`) that becomes a group named after the file.
fn prepare_groups(
    doc: Value,
    query: Query,
    topology: &Topology,
    stem: &str,
) -> Result<Vec<Value>, CosError> {
    let bad = |reason: &str| CosError::Rules {
        path: stem.to_string(),
        reason: reason.to_string(),
    };
    let groups = match doc {
        Value::Object(mut map) if map.contains_key("groups") => map.remove("groups"),
        Value::Object(map) if map.contains_key("alert") && map.contains_key("expr") => {
            Some(json!([{ "name": stem, "rules": [map] }]))
        }
        _ => None,
    };
    let Some(Value::Array(mut groups)) = groups else {
        return Err(bad("neither a `groups:` list nor one rule"));
    };
    for group in &mut groups {
        let group = group
            .as_object_mut()
            .ok_or_else(|| bad("a group is not a map"))?;
        let name = group
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = group_name(&topology.identifier(), name);
        group.insert("name".into(), Value::String(name));
        let rules = group.get_mut("rules").and_then(Value::as_array_mut);
        for rule in rules.ok_or_else(|| bad("a group has no rules list"))? {
            let rule = rule
                .as_object_mut()
                .ok_or_else(|| bad("a rule is not a map"))?;
            label(rule, topology).map_err(|reason| bad(&reason))?;
            if let Some(Value::String(expr)) = rule.get_mut("expr") {
                *expr = without_topology(expr, query);
            }
        }
    }
    Ok(groups)
}

/// The suffix cos-lib gives every group it renamed.
const GROUP_SUFFIX: &str = "rules";

/// `<identifier>_<name>_rules` (no second suffix when `name` ends in one), sanitized; a
/// name the library already renamed (`^.*?_[0-9a-f]{8}_.*?rules$`) is only sanitized.
pub fn group_name(identifier: &str, name: &str) -> String {
    let full = if already_renamed(name) {
        name.to_string()
    } else {
        let mut full = [identifier, name]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("_");
        if !full.ends_with(&format!("_{GROUP_SUFFIX}")) {
            full = format!("{full}_{GROUP_SUFFIX}");
        }
        full
    };
    full.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `_XXXXXXXX_` (8 of `0-9a-f`) somewhere, with `rules` ending the name after it.
fn already_renamed(name: &str) -> bool {
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(9)).any(|i| {
        bytes[i] == b'_'
            && bytes[i + 1..i + 9]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            && bytes[i + 9] == b'_'
            && name.len() >= i + 10 + GROUP_SUFFIX.len()
            && name.ends_with(GROUP_SUFFIX)
    })
}

/// Adds each topology label the rule does not have yet.
fn label(rule: &mut Map<String, Value>, topology: &Topology) -> Result<(), String> {
    let labels = rule
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    let labels = labels
        .as_object_mut()
        .ok_or_else(|| "a rule's labels are not a map".to_string())?;
    for (key, value) in topology.rule_labels() {
        labels
            .entry(key)
            .or_insert_with(|| Value::String(value.to_string()));
    }
    Ok(())
}

/// Every `%%juju_topology%%` (and one comma right after it) replaced by the
/// language's stand-in.
pub fn without_topology(expr: &str, query: Query) -> String {
    const MARK: &str = "%%juju_topology%%";
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        out.push_str(query.topology_stand_in());
        rest = &rest[at + MARK.len()..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    out.push_str(rest);
    out
}

/// cos-lib's generic rules, added to every charm's Prometheus rules since the
/// library's patch 20: the host is down, or its metrics stopped coming.
fn host_health() -> Value {
    let rule = |alert: &str, expr: &str, severity: &str, summary: &str| {
        json!({
            "alert": alert,
            "expr": expr,
            "for": "5m",
            "labels": {"severity": severity},
            "annotations": {"summary": summary},
        })
    };
    json!({"groups": [{
        "name": "HostHealth",
        "rules": [
            rule("HostDown", "up < 1", "critical",
                 "'{{ $labels.instance }}' of {{ $labels.juju_application }} has not been scraped for 5 minutes"),
            rule("HostMetricsMissing", "absent(up)", "warning",
                 "No metrics of {{ $labels.juju_application }} arrive (unit down or not remote-writing)"),
        ],
    }]})
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
