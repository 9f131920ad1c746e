//! Every metric name the dashboard's panels and the Prometheus alert rules query is one
//! the runner manager or the policy service exports (or Prometheus's own `up`): a
//! renamed metric would otherwise leave a panel empty or an alert silent, unseen.
//!
//! The names come from a small PromQL scan: identifiers outside quotes, `{...}` and
//! `[...]`, not followed by `(` (functions), not keywords or aggregations, and not the
//! label lists after `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`.

use std::collections::BTreeSet;

use serde_json::Value;

/// Words of PromQL that are not metric names even when no `(` follows them.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "inf",
    "nan",
    "Inf",
    "NaN",
];

/// Keywords whose parenthesised list holds label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

/// `expr` with quoted strings, label matchers and range selectors blanked out.
fn blank_out(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut closing: Option<char> = None;
    for c in expr.chars() {
        match closing {
            Some(end) if c == end => {
                closing = None;
                out.push(' ');
            }
            Some(_) => out.push(' '),
            None => {
                closing = match c {
                    '"' | '\'' | '`' => Some(c),
                    '{' => Some('}'),
                    '[' => Some(']'),
                    _ => None,
                };
                out.push(if closing.is_some() { ' ' } else { c });
            }
        }
    }
    out
}

/// The metric names `expr` (PromQL) selects.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let text: Vec<char> = blank_out(expr).chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_list = false;
    while i < text.len() {
        let c = text[i];
        if skip_list && c == ')' {
            skip_list = false;
        }
        // A number (0.95, 1e3, 5m) is no name, whatever letters it holds.
        let starts_number = c.is_ascii_digit() || c == '.';
        if !is_ident_start(c) && !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && (is_ident(text[i]) || (starts_number && text[i] == '.')) {
            i += 1;
        }
        if starts_number {
            continue;
        }
        let word: String = text[start..i].iter().collect();
        let next = text[i..].iter().find(|c| !c.is_whitespace());
        if LABEL_LISTS.contains(&word.as_str()) && next == Some(&'(') {
            skip_list = true;
        } else if !skip_list && next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
            names.insert(word);
        }
    }
    names
}

/// Names of `queried` that are in none of `exported`.
pub fn unknown_names(queried: &BTreeSet<String>, exported: &BTreeSet<String>) -> Vec<String> {
    queried.difference(exported).cloned().collect()
}

/// Every PromQL expression of the dashboard's Prometheus panels.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        // The log panel queries Loki (LogQL), whose names are labels, not metrics.
        if panel["datasource"]["type"] == "loki" {
            continue;
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.extend(target["expr"].as_str().map(String::from));
        }
    }
    exprs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cos::{dashboards, rules, Topology};

    fn exported() -> BTreeSet<String> {
        let manager = ghr_metrics::ManagerMetrics::new().exposition();
        let policy = ghr_metrics::PolicyMetrics::new().exposition();
        let mut names: BTreeSet<String> = ghr_metrics::exported_names(&manager)
            .into_iter()
            .chain(ghr_metrics::exported_names(&policy))
            .collect();
        // Prometheus's own series for every scrape target.
        names.insert("up".into());
        names
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_scan_finds_selected_names_only() {
        let expr = r#"histogram_quantile(0.95, sum by (le, endpoint) (rate(a_seconds_bucket{route=~"x|y", kind="b"}[$__rate_interval])))
            / ignoring(kind) group_left (state) b_total offset 5m > bool 1e3 and on (instance) absent(up)"#;
        assert_eq!(
            metric_names(expr),
            set(&["a_seconds_bucket", "b_total", "up"])
        );
        assert_eq!(
            metric_names(r#"sum without (cause) (increase(c_total{x="up"}[30m])) >= 3"#),
            set(&["c_total"])
        );
        assert_eq!(metric_names("max(x)"), set(&["x"]));
    }

    /// The check fails on a misspelt name: proof that it can.
    #[test]
    fn a_wrong_name_is_reported() {
        let queried = metric_names(r#"sum by (state) (github_runner_runnerz{state="idle"})"#);
        assert_eq!(
            unknown_names(&queried, &exported()),
            ["github_runner_runnerz"]
        );
        let right = metric_names(r#"sum by (state) (github_runner_runners{state="idle"})"#);
        assert!(unknown_names(&right, &exported()).is_empty());
    }

    #[test]
    fn every_dashboard_panel_queries_exported_metrics() {
        let exported = exported();
        let mut panels_checked = 0;
        for (path, json) in dashboards::DASHBOARDS {
            let dashboard: Value = serde_json::from_str(json).unwrap();
            for expr in dashboard_exprs(&dashboard) {
                let names = metric_names(&expr);
                assert!(!names.is_empty(), "{path}: no metric in {expr}");
                let unknown = unknown_names(&names, &exported);
                assert!(unknown.is_empty(), "{path}: {unknown:?} in {expr}");
                panels_checked += 1;
            }
        }
        assert!(panels_checked >= 20, "only {panels_checked} queries");
    }

    #[test]
    fn every_alert_rule_queries_exported_metrics() {
        let topology = Topology::from_lookup("github-runner/0", |_| None);
        let rules = rules::metrics_alert_rules(&topology).unwrap();
        let exported = exported();
        let mut checked = 0;
        for group in rules["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                let expr = rule["expr"].as_str().unwrap();
                let names = metric_names(expr);
                assert!(!names.is_empty(), "no metric in {expr}");
                let unknown = unknown_names(&names, &exported);
                assert!(unknown.is_empty(), "{unknown:?} in {expr}");
                checked += 1;
            }
        }
        assert!(checked >= 7, "only {checked} rules");
    }

    /// Counters reset when their service restarts: a raw counter on a panel would
    /// drop to zero, so each is read through rate() or increase().
    #[test]
    fn counters_are_only_read_through_rate_or_increase() {
        for (_, json) in dashboards::DASHBOARDS {
            let dashboard: Value = serde_json::from_str(json).unwrap();
            for expr in dashboard_exprs(&dashboard) {
                for name in metric_names(&expr) {
                    if name.ends_with("_total") || name.ends_with("_bucket") {
                        let wrapped = ["rate(", "increase("]
                            .iter()
                            .any(|f| expr.split(f).skip(1).any(|after| after.starts_with(&name)));
                        assert!(wrapped, "{name} not under rate()/increase() in {expr}");
                    }
                }
            }
        }
    }
}
