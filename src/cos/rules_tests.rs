use super::*;

fn topology() -> Topology {
    Topology {
        model: "ci-prod".into(),
        model_uuid: "4f0d2a6e-1c3b-4e8a-9b7d-2c5e8f1a6b3d".into(),
        application: "runners-a".into(),
        unit: "runners-a/3".into(),
        charm: "github-runner".into(),
    }
}

#[test]
fn group_names_carry_the_identifier_and_are_sanitized() {
    let id = topology().identifier();
    assert_eq!(
        group_name(&id, "github-runner"),
        "ci_prod_4f0d2a6e_runners_a_github_runner_rules"
    );
    // Already renamed by a library on the way: not prefixed twice.
    assert_eq!(
        group_name(&id, "m_0123abcd_app_x_rules"),
        "m_0123abcd_app_x_rules"
    );
    // Eight characters that are not all lowercase hex do not count, and a name that
    // ends in the suffix gets no second one.
    assert_eq!(
        group_name("i", "m_0123ABCD_app_rules"),
        "i_m_0123ABCD_app_rules"
    );
    assert_eq!(group_name("i", "x_alerts"), "i_x_alerts_rules");
}

#[test]
fn the_topology_mark_goes_as_the_library_takes_it_out() {
    let promql = r#"up{%%juju_topology%%, job=~".+_manager"} == 0"#;
    assert_eq!(
        without_topology(promql, Query::PromQl),
        r#"up{ job=~".+_manager"} == 0"#
    );
    let logql = r#"count_over_time({%%juju_topology%%} |= "x" [5m])"#;
    assert_eq!(
        without_topology(logql, Query::LogQl),
        r#"count_over_time({job=~".+"} |= "x" [5m])"#
    );
    assert_eq!(without_topology("up", Query::PromQl), "up");
}

#[test]
fn every_rule_gets_the_topology_labels_it_lacks() {
    let doc = json!({"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "up == 0"},
        {"alert": "B", "expr": "up == 0", "labels": {"juju_model": "other", "severity": "x"}},
    ]}]});
    let groups = prepare_groups(doc, Query::PromQl, &topology(), "file").unwrap();
    let rules = groups[0]["rules"].as_array().unwrap();
    assert_eq!(
        rules[0]["labels"],
        json!({"juju_model": "ci-prod", "juju_model_uuid": "4f0d2a6e-1c3b-4e8a-9b7d-2c5e8f1a6b3d",
               "juju_application": "runners-a", "juju_charm": "github-runner"})
    );
    assert_eq!(rules[1]["labels"]["juju_model"], "other", "kept");
    assert_eq!(rules[1]["labels"]["severity"], "x");
}

#[test]
fn a_single_rule_file_becomes_a_group_named_after_the_file() {
    let doc = json!({"alert": "A", "expr": "up == 0"});
    let groups = prepare_groups(doc, Query::PromQl, &topology(), "lonely").unwrap();
    assert_eq!(groups[0]["name"], "ci_prod_4f0d2a6e_runners_a_lonely_rules");
    assert_eq!(groups[0]["rules"][0]["alert"], "A");
}

#[test]
fn something_else_is_refused() {
    for doc in [json!([]), json!({"name": "x"}), json!({"groups": {"a": 1}})] {
        assert!(
            prepare_groups(doc.clone(), Query::PromQl, &topology(), "f").is_err(),
            "{doc}"
        );
    }
}

#[test]
fn the_charms_files_give_labelled_groups_and_host_health() {
    let metrics = metrics_alert_rules(&topology()).unwrap();
    let names: Vec<&str> = metrics["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ci_prod_4f0d2a6e_runners_a_HostHealth_rules"),
        "{names:?}"
    );
    let logs = log_alert_rules(&topology()).unwrap();
    for set in [&metrics, &logs] {
        for group in set["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                let expr = rule["expr"].as_str().unwrap();
                assert!(!expr.contains("%%"), "{expr}");
                assert_eq!(rule["labels"]["juju_application"], "runners-a");
                assert!(rule["alert"].is_string() && rule["labels"]["severity"].is_string());
            }
        }
    }
}
