use serde_json::json;

use super::*;

fn message(message_type: &str, body: Value, statistics: Value) -> Message {
    let wire = json!({
        "messageId": 7,
        "messageType": message_type,
        "body": body.to_string(),
        "statistics": statistics,
    });
    Message::from(serde_json::from_value::<WireMessage>(wire).unwrap())
}

#[test]
fn a_job_message_body_is_a_json_string_of_events_in_order() {
    let body = json!([
        {"messageType": "JobAvailable", "runnerRequestId": 11, "acquireJobUrl": "u",
         "requestLabels": ["linux"], "queueTime": "2026-01-01T00:00:00Z"},
        {"messageType": "JobAssigned", "runnerRequestId": 11},
        {"messageType": "JobStarted", "runnerRequestId": 11, "runnerId": 4, "runnerName": "r-1"},
        {"messageType": "JobCompleted", "runnerRequestId": 11, "runnerId": 4,
         "runnerName": "r-1", "result": "succeeded"},
    ]);
    let stats = json!({"totalAvailableJobs": 1, "totalAcquiredJobs": 2, "totalAssignedJobs": 3,
        "totalRunningJobs": 4, "totalRegisteredRunners": 5, "totalBusyRunners": 6,
        "totalIdleRunners": 7});
    let m = message(JOB_MESSAGES, body, stats);
    assert_eq!(m.id, 7);
    assert_eq!(
        m.jobs,
        vec![
            JobEvent::Available { request_id: 11 },
            JobEvent::Assigned { request_id: 11 },
            JobEvent::Started {
                request_id: 11,
                runner_name: "r-1".into(),
                runner_id: 4
            },
            JobEvent::Completed {
                request_id: 11,
                runner_name: "r-1".into(),
                result: "succeeded".into()
            },
        ]
    );
    let expected = Statistics {
        available: 1,
        acquired: 2,
        assigned: 3,
        running: 4,
        registered_runners: 5,
        busy_runners: 6,
        idle_runners: 7,
    };
    assert_eq!(m.statistics, Some(expected));
}

#[test]
fn unknown_and_unreadable_events_do_not_lose_the_batch() {
    let body = json!([
        {"messageType": "JobStarted", "runnerRequestId": "not a number"},
        {"messageType": "SomethingNew", "runnerRequestId": 3},
        {"no type": true},
        {"messageType": "JobAssigned", "runnerRequestId": 4},
    ]);
    let m = message(JOB_MESSAGES, body, json!({}));
    assert_eq!(
        m.jobs,
        vec![
            JobEvent::Other("JobStarted".into()),
            JobEvent::Other("SomethingNew".into()),
            JobEvent::Other(String::new()),
            JobEvent::Assigned { request_id: 4 },
        ]
    );
}

#[test]
fn a_message_we_cannot_read_still_has_its_id_and_statistics() {
    let stats = json!({"totalAssignedJobs": 2});
    for (kind, body) in [
        ("Other", "[]".to_string()),
        (JOB_MESSAGES, "not json".to_string()),
        (JOB_MESSAGES, String::new()),
    ] {
        let wire = json!({"messageId": 9, "messageType": kind, "body": body, "statistics": stats});
        let m = Message::from(serde_json::from_value::<WireMessage>(wire).unwrap());
        assert_eq!(
            (m.id, m.jobs.len(), m.statistics.map(|s| s.assigned)),
            (9, 0, Some(2)),
            "{kind}"
        );
    }
    let bare: WireMessage = serde_json::from_str(r#"{"messageId": 3}"#).unwrap();
    assert_eq!(
        Message::from(bare).statistics,
        None,
        "no statistics is no news"
    );
}

#[test]
fn negative_counts_read_as_zero() {
    let w: WireStatistics =
        serde_json::from_str(r#"{"totalAssignedJobs": -1, "totalIdleRunners": 3}"#).unwrap();
    let s = Statistics::from(w);
    assert_eq!((s.assigned, s.idle_runners, s.running), (0, 3, 0));
}

#[test]
fn a_scale_set_keeps_label_names_and_statistics() {
    let wire = json!({"id": 1001, "name": "ghr", "runnerGroupId": 2, "runnerGroupName": "ci",
        "labels": [{"name": "linux", "type": "System"}, {"name": "x64", "type": "System"}],
        "RunnerSetting": {"disableUpdate": false}, "statistics": {"totalIdleRunners": 1}});
    let set = ScaleSet::from(serde_json::from_value::<WireScaleSet>(wire).unwrap());
    assert_eq!(
        (set.id, set.name.as_str(), set.runner_group_id),
        (1001, "ghr", 2)
    );
    assert_eq!(set.labels, ["linux", "x64"]);
    assert_eq!(set.statistics.unwrap().idle_runners, 1);
    let bare: WireScaleSet = serde_json::from_str(r#"{"id": 5}"#).unwrap();
    assert_eq!(ScaleSet::from(bare).statistics, None);
}

#[test]
fn spec_bodies_name_labels_as_system_labels() {
    let spec = ScaleSetSpec {
        name: "ghr".into(),
        runner_group_id: 3,
        labels: vec!["linux".into(), "x64".into()],
    };
    assert_eq!(
        spec.body(true),
        json!({"name": "ghr", "runnerGroupId": 3,
            "labels": [{"name": "linux", "type": "System"}, {"name": "x64", "type": "System"}],
            "RunnerSetting": {"disableUpdate": false}})
    );
    assert!(spec.body(false).get("RunnerSetting").is_none());
    let unlabelled = ScaleSetSpec {
        labels: vec![],
        ..spec
    };
    assert_eq!(
        unlabelled.body(false)["labels"],
        json!([{"name": "ghr", "type": "System"}])
    );
}

#[test]
fn a_scale_set_differs_on_labels_as_a_set_or_on_group() {
    let set = ScaleSet {
        id: 1,
        name: "ghr".into(),
        runner_group_id: 1,
        labels: vec!["x64".into(), "linux".into()],
        statistics: None,
    };
    let spec = ScaleSetSpec {
        name: "ghr".into(),
        runner_group_id: 1,
        labels: vec!["linux".into(), "x64".into(), "linux".into()],
    };
    assert!(!set.differs_from(&spec));
    let relabelled = ScaleSetSpec {
        labels: vec!["linux".into()],
        ..spec.clone()
    };
    assert!(set.differs_from(&relabelled));
    let moved = ScaleSetSpec {
        runner_group_id: 2,
        ..spec
    };
    assert!(set.differs_from(&moved));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let jit: WireJit = serde_json::from_value(json!({
        "runner": {"id": 12, "name": "r", "runnerScaleSetId": 1001},
        "encodedJITConfig": "SECRETCONFIG"
    }))
    .unwrap();
    let shown = ScaleSetJit {
        runner_id: jit.runner.map(|r| ServiceRunner::from(r).id).unwrap(),
        encoded: jit.encoded,
    };
    assert_eq!(shown.runner_id, 12);
    assert!(!format!("{shown:?}").contains("SECRET"));
    assert_eq!(shown.encoded.expose(), "SECRETCONFIG");
}

#[test]
fn runners_outside_a_scale_set_have_no_scale_set_id() {
    let inside: WireRunner =
        serde_json::from_value(json!({"id": 4, "name": "a", "runnerScaleSetId": 9})).unwrap();
    let outside: WireRunner = serde_json::from_value(json!({"id": 5, "name": "b"})).unwrap();
    assert_eq!(ServiceRunner::from(inside).scale_set_id, Some(9));
    assert_eq!(ServiceRunner::from(outside).scale_set_id, None);
}
