//! Every request of the scale-set client is reported: the registration exchange and the
//! Actions service's admin calls as templates below the service URL (no tenant, scale
//! set, session or runner left), the message queue's poll and acknowledgement under
//! one fixed route; against the simulator on loopback.

mod recorder;

use std::collections::BTreeSet;

use ghr_types::proxy::ProxyConfig;
use ghr_types::telemetry::Outcome;
use ghr_types::{GithubPath, Token};
use github_client::{ActionsService, GithubClient, ScaleSetSpec};
use github_sim::{SimConfig, SimServer};
use recorder::{github, start, take_calls};
use serde_json::{json, Value};

const PAT: &str = "ghp_scalesetCallsCanary91b7";

fn admin(server: &SimServer, path: &str, body: Value) -> Value {
    ureq::post(&format!("{}{path}", server.url))
        .send_json(body)
        .unwrap()
        .into_json()
        .unwrap_or(Value::Null)
}

fn connect(server: &SimServer) -> ActionsService {
    let options = recorder::quick();
    let token = Token::new(PAT);
    let gh = GithubClient::with_options(&server.url, token, &ProxyConfig::default(), options);
    let path = GithubPath::Org {
        org: "zqorg".into(),
        group: "default".into(),
    };
    ActionsService::connect(&gh.unwrap(), &path, &format!("{}/zqorg", server.url)).unwrap()
}

/// Drives a scale set through its life: set up, a runner, a session that takes one
/// job through the queue, an empty poll, then everything taken down again.
fn drive_a_scale_set(server: &SimServer, svc: &ActionsService) {
    let group = svc.runner_group_id("default").unwrap().unwrap();
    let spec = ScaleSetSpec {
        name: "zq-set".into(),
        runner_group_id: group,
        labels: vec![],
    };
    let set = svc.ensure_scale_set(&spec).unwrap().id;
    svc.scale_set_by_id(set).unwrap().unwrap();
    svc.update_scale_set(set, &spec).unwrap();
    let runner = svc.jit_config(set, "zq-runner", "_work").unwrap().runner_id;
    svc.runner_by_name("zq-runner").unwrap().unwrap();

    let mut session = svc.open_session(set, "zq-owner").unwrap();
    let job = json!({"repository": "zqorg/zqapp", "labels": ["zq-set"], "event_name": "push",
        "event": {"ref": "refs/heads/main"}, "steps": ["true"]});
    let job = admin(server, "/_sim/jobs", job)["id"].as_u64().unwrap();
    let message = svc.next_message(&mut session, 0, 1).unwrap().unwrap();
    svc.ack(&session, message.id).unwrap();
    assert_eq!(svc.acquire_jobs(set, &session, &[job]).unwrap(), [job]);
    // The job's later news (assigned), then an empty poll once the short wait ends.
    admin(server, "/_sim/scalesets/long-poll", json!({"secs": 0.1}));
    let mut last = message.id;
    while let Some(news) = svc.next_message(&mut session, last, 0).unwrap() {
        svc.ack(&session, news.id).unwrap();
        last = news.id;
    }
    svc.refresh_session(&mut session).unwrap();
    svc.close_session(&session).unwrap();
    svc.remove_runner(runner).unwrap();
    svc.delete_scale_set(set).unwrap();
}

#[test]
fn every_scale_set_request_reports_a_template_and_the_queue_a_fixed_route() {
    start();
    let mut config = SimConfig::new(PAT);
    config.orgs = vec!["zqorg".into()];
    let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let svc = connect(&server);
    drive_a_scale_set(&server, &svc);

    let calls = take_calls();
    recorder::assert_no_host_query_or_token(&calls, PAT);
    let seen: BTreeSet<String> = calls
        .iter()
        .map(|c| format!("{} {} {:?}", c.method, c.route, c.outcome))
        .collect();
    const SETS: &str = "/_apis/runtime/runnerscalesets";
    const AGENTS: &str = "/_apis/distributedtask/pools/0/agents";
    let expected: BTreeSet<String> = [
        "POST /orgs/{}/actions/runners/registration-token Status(201)".to_string(),
        "POST /actions/runner-registration Status(200)".into(),
        "GET /_apis/runtime/runnergroups/ Status(200)".into(),
        format!("GET {SETS} Status(200)"),
        format!("POST {SETS} Status(200)"),
        format!("GET {SETS}/{{}} Status(200)"),
        format!("PATCH {SETS}/{{}} Status(200)"),
        format!("POST {SETS}/{{}}/generatejitconfig Status(200)"),
        format!("GET {AGENTS} Status(200)"),
        format!("POST {SETS}/{{}}/sessions Status(200)"),
        "GET message-queue Status(200)".into(),
        "DELETE message-queue Status(204)".into(),
        format!("POST {SETS}/{{}}/acquirejobs Status(200)"),
        "GET message-queue Status(202)".into(),
        format!("PATCH {SETS}/{{}}/sessions/{{}} Status(200)"),
        format!("DELETE {SETS}/{{}}/sessions/{{}} Status(204)"),
        format!("DELETE {AGENTS}/{{}} Status(204)"),
        format!("DELETE {SETS}/{{}} Status(204)"),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_queue_that_went_away_reports_its_outcome_under_the_fixed_route() {
    start();
    let mut config = SimConfig::new(PAT);
    config.orgs = vec!["zqorg".into()];
    let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let svc = connect(&server);
    let group = svc.runner_group_id("default").unwrap().unwrap();
    let spec = ScaleSetSpec {
        name: "zq-gone".into(),
        runner_group_id: group,
        labels: vec![],
    };
    let set = svc.ensure_scale_set(&spec).unwrap().id;
    let mut session = svc.open_session(set, "zq-owner").unwrap();
    take_calls();
    admin(
        &server,
        &format!("/_sim/scalesets/{set}/drop-session"),
        json!({}),
    );
    svc.next_message(&mut session, 0, 1).unwrap_err();
    let gone = github("GET", "message-queue", Outcome::Status(404));
    assert_eq!(take_calls(), [gone]);
}
