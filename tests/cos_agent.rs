//! The `cos-agent` relation driven as Juju drives it: the real charm binary runs the
//! relation's hooks, config-changed and upgrade-charm with the stand-in relation tools,
//! and what it set is read back with `relation-get` and checked field by field against
//! what the `cos_agent` library's provider writes (../helpers' format note: unit
//! databag key `config`, dashboards xz + base64 with a SHAKE-256 uid and the charm tag,
//! scrape jobs with their own `job_name`, rules with the topology labels and group
//! names). No LXD: every program the charm runs is a stand-in.

mod harness;

use std::collections::BTreeSet;
use std::io::Read;

use base64::Engine;
use harness::{Harness, MODEL_UUID};
use serde_json::{json, Value};
use sha3::digest::{ExtendableOutput, Update, XofReader};

const UNIT: &str = "github-runner/0";
const RELATION_ID: &str = "cos-agent:3";
const DASHBOARD_PATH: &str = "cos/grafana_dashboards/github-runner.json";

/// A unit related to a grafana-agent subordinate, whose machine registry already holds
/// another unit in slot 0: its ports must be slot 1's. Its LXD is a folder where no
/// daemon listens: a hook that gets that far fails there, and never reaches a real one.
fn related_unit() -> Harness {
    let mut h = Harness::new();
    h.isolate();
    let root = h.relocate_root();
    let lxd = h.path().join("no-lxd").display().to_string();
    h.extra_env.insert("LXD_DIR".into(), lxd);
    let machine = root.join("var/lib/github-runner");
    std::fs::create_dir_all(&machine).unwrap();
    std::fs::write(
        machine.join("units.json"),
        json!({"units": {"other/0": {"slot": 0}}}).to_string(),
    )
    .unwrap();
    h.set_relations(json!({"cos-agent": [RELATION_ID]}));
    for (k, v) in [
        ("JUJU_RELATION", "cos-agent"),
        ("JUJU_RELATION_ID", RELATION_ID),
        ("JUJU_REMOTE_UNIT", "grafana-agent/0"),
        ("JUJU_REMOTE_APP", "grafana-agent"),
    ] {
        h.extra_env.insert(k.into(), v.into());
    }
    h
}

/// The `config` value this unit set, parsed; the databag must hold that key only.
fn sent_config(h: &Harness) -> Value {
    let bag = h.relation_get(RELATION_ID, UNIT);
    let keys: Vec<&String> = bag.as_object().expect("a map").keys().collect();
    assert_eq!(keys, ["config"], "the unit databag: {bag}");
    serde_json::from_str(bag["config"].as_str().expect("a string value")).unwrap()
}

fn shake256_40(text: &str) -> String {
    let mut shake = sha3::Shake256::default();
    shake.update(text.as_bytes());
    let mut digest = [0u8; 20];
    XofReader::read(&mut shake.finalize_xof(), &mut digest);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_dashboard(encoded: &str) -> Value {
    assert!(encoded.starts_with("/Td6WFoAAA"), "xz magic in base64");
    let xz = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("standard base64 with padding");
    let mut json = String::new();
    liblzma::read::XzDecoder::new(&xz[..])
        .read_to_string(&mut json)
        .expect("an xz stream");
    serde_json::from_str(&json).expect("JSON")
}

/// The model's fields and their JSON types (the library's `CosAgentProviderUnitData`).
fn check_field_types(config: &Value) {
    let fields = config.as_object().unwrap();
    let known: BTreeSet<&str> = [
        "metrics_alert_rules",
        "log_alert_rules",
        "dashboards",
        "metrics_scrape_jobs",
        "log_slots",
        "subordinate",
        "tracing_protocols",
        "include_log_files",
    ]
    .into();
    for key in fields.keys() {
        assert!(known.contains(key.as_str()), "unknown field {key}");
    }
    assert!(config["metrics_alert_rules"].is_object());
    assert!(config["log_alert_rules"].is_object());
    let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    assert!(
        strings(&config["dashboards"]),
        "dashboards: list of strings"
    );
    let jobs = config["metrics_scrape_jobs"].as_array().expect("a list");
    assert!(jobs.iter().all(Value::is_object));
    assert_eq!(config["log_slots"], json!([]));
    assert!(config["subordinate"].is_null() || config["subordinate"].is_boolean());
    assert!(config["tracing_protocols"].is_null() || strings(&config["tracing_protocols"]));
    assert!(strings(&config["include_log_files"]));
}

fn check_dashboards(config: &Value) {
    let dashboards = config["dashboards"].as_array().unwrap();
    assert_eq!(dashboards.len(), 1);
    let dashboard = decode_dashboard(dashboards[0].as_str().unwrap());
    let uid = dashboard["uid"].as_str().unwrap();
    assert_eq!(uid, shake256_40(&format!("github-runner-{DASHBOARD_PATH}")));
    assert!(uid.len() == 40 && uid.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    let tags = dashboard["tags"].as_array().unwrap();
    assert!(tags.contains(&json!("charm: github-runner")), "{tags:?}");
    assert!(!dashboard["title"].as_str().unwrap_or_default().is_empty());
    assert!(dashboard["panels"].as_array().unwrap().len() > 10);
}

fn check_scrape_jobs(config: &Value, slot: u16) {
    let manager = github_runner::host::site::METRICS_PORT + slot;
    let policy = policy_service::POLICY_PORT + slot;
    let jobs = config["metrics_scrape_jobs"].as_array().unwrap();
    let mut names = BTreeSet::new();
    let mut targets = Vec::new();
    for job in jobs {
        let name = job["job_name"].as_str().expect("every job has a job_name");
        assert!(!name.is_empty());
        assert!(names.insert(name), "job_name {name} twice");
        assert_eq!(job["metrics_path"], "/metrics");
        for config in job["static_configs"].as_array().unwrap() {
            for t in config["targets"].as_array().unwrap() {
                targets.push(t.as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(
        targets,
        [
            format!("localhost:{manager}"),
            format!("localhost:{policy}")
        ]
    );
    assert!(names.contains("github-runner_0_manager"), "{names:?}");
}

/// Group names as cos-lib makes them, sanitized; the four topology labels on each rule.
fn check_rules(rules: &Value, loki: bool) -> Vec<String> {
    let prefix = format!("test_model_{}_github_runner_", &MODEL_UUID[..8]);
    let mut names = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        let name = group["name"].as_str().unwrap();
        assert!(
            name.starts_with(&prefix) && name.ends_with("_rules"),
            "{name}"
        );
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        names.push(name.to_string());
        for rule in group["rules"].as_array().unwrap() {
            let labels = &rule["labels"];
            assert_eq!(labels["juju_model"], "test-model", "{rule}");
            assert_eq!(labels["juju_model_uuid"], MODEL_UUID);
            assert_eq!(labels["juju_application"], "github-runner");
            assert_eq!(labels["juju_charm"], "github-runner");
            assert!(labels.get("juju_unit").is_none(), "never the unit");
            let expr = rule["expr"].as_str().unwrap();
            assert!(!expr.contains("%%juju_topology%%"), "{expr}");
            if loki {
                assert!(expr.contains(r#"{job=~".+"}"#), "{expr}");
            }
        }
    }
    names
}

#[test]
fn relation_joined_sends_the_library_format_through_stdin() {
    let h = related_unit();
    h.run_ok("hooks/cos-agent-relation-joined");
    let config = sent_config(&h);
    check_field_types(&config);
    check_dashboards(&config);
    check_scrape_jobs(&config, 1);
    let metric_groups = check_rules(&config["metrics_alert_rules"], false);
    assert!(metric_groups.contains(&format!(
        "test_model_{}_github_runner_HostHealth_rules",
        &MODEL_UUID[..8]
    )));
    let log_groups = check_rules(&config["log_alert_rules"], true);
    assert!(!log_groups.is_empty());
    let root = h.path().join("root");
    assert_eq!(
        config["include_log_files"],
        json!([
            format!(
                "{}/var/log/github-runner/github-runner-0/events.log*",
                root.display()
            ),
            format!(
                "{}/var/log/github-runner-policy-github-runner-0/events.log*",
                root.display()
            ),
        ])
    );

    let ids: Vec<_> = h.calls_of("relation-ids").map(|c| c.args).collect();
    assert_eq!(ids, [["cos-agent", "--format=json"]]);
    let sets = h.relation_sets();
    assert_eq!(sets.len(), 1);
    let (args, stdin) = &sets[0];
    assert_eq!(
        args,
        &["-r", RELATION_ID, "--file", "-"],
        "data never in argv"
    );
    let stdin: Value = serde_json::from_str(stdin.as_deref().unwrap()).unwrap();
    assert!(stdin["config"].as_str().unwrap().contains("dashboards"));
}

/// A valid config whose hooks fail on their first systemctl call (the reconcile
/// timer's), before anything else.
fn failing_at_systemctl(h: &Harness) {
    h.set_config(json!({"path": "acme/widgets", "token": "ghp_cosAgentTestToken0123456789"}));
    h.fail_tool("systemctl", "Failed to connect to bus");
}

fn status_names_systemctl(h: &Harness) {
    let (_, message) = h.last_status().expect("a status");
    assert!(message.contains("Failed to connect to bus"), "{message}");
}

#[test]
fn config_changed_and_upgrade_send_it_again_even_when_their_own_work_fails() {
    let h = related_unit();
    h.run_ok("hooks/cos-agent-relation-changed");
    let first = sent_config(&h);
    failing_at_systemctl(&h);
    for event in ["hooks/config-changed", "hooks/upgrade-charm"] {
        std::fs::remove_file(h.path().join("relation-data.json")).unwrap();
        // Written anew each time, so the timer's systemctl call comes each time.
        let _ = std::fs::remove_dir_all(h.path().join("root/etc/systemd"));
        h.clear_calls();
        h.run(event);
        status_names_systemctl(&h);
        assert_eq!(sent_config(&h), first, "{event} wrote the same data again");
        assert_eq!(h.relation_sets().len(), 1, "{event}");
    }
}

#[test]
fn a_failing_relation_set_is_logged_and_changes_no_outcome() {
    let h = related_unit();
    h.fail_tool(
        "relation-set",
        r#"ERROR cannot read relation settings: unit "github-runner/0": settings not found"#,
    );
    h.run_ok("hooks/cos-agent-relation-joined");
    let logged = h.logs().into_iter().any(|(level, m)| {
        level == "ERROR" && m.contains("cos-agent") && m.contains("settings not found")
    });
    assert!(logged, "{:#?}", h.logs());

    // config-changed ends as it does on a unit whose relation works.
    failing_at_systemctl(&h);
    let failing = h.run("hooks/config-changed");
    status_names_systemctl(&h);
    let working_unit = related_unit();
    failing_at_systemctl(&working_unit);
    let working = working_unit.run("hooks/config-changed");
    assert_eq!(failing.output.status, working.output.status);
    assert_eq!(h.last_status(), working_unit.last_status());
    assert_eq!(working_unit.relation_sets().len(), 1, "sent there");
    assert!(
        h.relation_get(RELATION_ID, UNIT) == json!({}),
        "nothing stored here"
    );
}

#[test]
fn an_invalid_config_sends_nothing_and_no_relation_means_no_write() {
    let h = related_unit();
    // config.yaml's defaults: no token, no path.
    h.run("hooks/config-changed");
    assert_eq!(h.last_status().unwrap().0, "blocked");
    assert_eq!(h.calls_of("relation-ids").count(), 0);
    assert_eq!(h.relation_get(RELATION_ID, UNIT), json!({}));

    let h = related_unit();
    h.set_relations(json!({}));
    h.run_ok("hooks/cos-agent-relation-joined");
    assert_eq!(h.calls_of("relation-ids").count(), 1);
    assert!(h.relation_sets().is_empty());
}
