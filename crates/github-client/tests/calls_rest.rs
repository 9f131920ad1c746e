//! Every REST request the client sends is reported to the process's call observer with
//! its method, a route template and how it ended (retries included), and GitHub's
//! `x-ratelimit-*` headers reach it too; against the simulator on loopback.

mod recorder;

use std::collections::BTreeSet;

use ghr_types::proxy::ProxyConfig;
use ghr_types::telemetry::Outcome;
use ghr_types::{GithubPath, Token};
use github_client::{GithubClient, JitRequest, RunnerId, RunnerName};
use github_sim::{SimConfig, SimServer};
use recorder::{github, start, take_calls, take_limits};
use serde_json::{json, Value};

const PAT: &str = "ghp_callsCanary4d2e8a";
const LIST: &str = "/orgs/{}/actions/runners";

fn sim(orgs: &[&str]) -> SimServer {
    let mut config = SimConfig::new(PAT);
    config.orgs = orgs.iter().map(|o| o.to_string()).collect();
    SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn client(base: &str) -> GithubClient {
    GithubClient::with_options(
        base,
        Token::new(PAT),
        &ProxyConfig::default(),
        recorder::quick(),
    )
    .unwrap()
}

fn org(name: &str) -> GithubPath {
    GithubPath::Org {
        org: name.into(),
        group: "default".into(),
    }
}

fn admin(server: &SimServer, method: &str, path: &str, body: Value) {
    ureq::request(method, &format!("{}{path}", server.url))
        .send_json(body)
        .unwrap();
}

#[test]
fn a_rest_call_reports_its_method_route_and_status_at_the_root_and_under_ghes() {
    start();
    let server = sim(&["acme"]);
    client(&server.url).list_runners(&org("acme")).unwrap();
    let ghes = format!("{}/api/v3", server.url);
    client(&ghes).list_runners(&org("acme")).unwrap();
    let ok = github("GET", LIST, Outcome::Status(200));
    assert_eq!(take_calls(), [ok.clone(), ok]);
}

#[test]
fn a_404_a_retried_fault_and_a_refused_connection_report_their_outcomes() {
    start();
    let server = sim(&["acme"]);
    let gh = client(&server.url);
    assert_eq!(gh.get_runner(&org("acme"), RunnerId(424242)).unwrap(), None);
    let fault = json!({"route": "GET /orgs/:org/actions/runners", "count": 1, "status": 502});
    admin(&server, "POST", "/_sim/faults", fault);
    gh.list_runners(&org("acme")).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    client(&format!("http://{closed}"))
        .list_runners(&org("acme"))
        .unwrap_err();
    assert_eq!(
        take_calls(),
        [
            github("GET", "/orgs/{}/actions/runners/{}", Outcome::Status(404)),
            github("GET", LIST, Outcome::Status(502)),
            github("GET", LIST, Outcome::Status(200)),
            // Both attempts of the quick policy.
            github("GET", LIST, Outcome::Transport),
            github("GET", LIST, Outcome::Transport),
        ]
    );
}

#[test]
fn the_rate_limit_headers_reach_the_observer() {
    start();
    let server = sim(&["acme"]);
    let gh = client(&server.url);
    gh.list_runners(&org("acme")).unwrap();
    gh.get_runner(&org("acme"), RunnerId(7)).unwrap();
    let limits = take_limits();
    assert_eq!(limits.len(), 2, "{limits:?}");
    let reset = server.sim.lock().budget.reset.timestamp() as u64;
    assert!(limits
        .iter()
        .all(|l| l.limit == 5000 && l.reset_epoch_secs == reset));
    assert_eq!(limits[1].remaining + 1, limits[0].remaining, "{limits:?}");
    assert_eq!(gh.last_rate_limit().unwrap().remaining, limits[1].remaining);
}

/// Runs every REST method of the client once, on names and ids no route may show.
fn call_every_rest_method(gh: &GithubClient, server: &SimServer) {
    let path = org("zqorg");
    let repo = GithubPath::Repo {
        owner: "zqowner".into(),
        repo: "zqrepo".into(),
    };
    gh.registration_token(&path).unwrap();
    gh.remove_token(&repo).unwrap();
    gh.list_runners(&repo).unwrap();
    gh.runner_groups("zqorg").unwrap();
    let request = JitRequest {
        name: RunnerName::new("zq-runner"),
        runner_group_id: 1,
        labels: vec!["zq-label".into()],
        work_folder: "_work".into(),
    };
    let runner = gh.generate_jitconfig(&path, &request).unwrap().runner.id;
    gh.get_runner(&path, runner).unwrap().unwrap();
    gh.delete_runner(&path, runner).unwrap();
    let app = gh.runner_downloads(&path).unwrap().remove(0);
    let dir = tempfile::tempdir().unwrap();
    gh.download_runner_app(&app, &dir.path().join("runner.tgz"))
        .unwrap();

    let branch = json!({"name": "zq-branch"});
    admin(
        server,
        "POST",
        "/_sim/repos/zqowner/zqrepo/branches",
        branch,
    );
    gh.get_repository("zqowner", "zqrepo").unwrap();
    gh.get_branch("zqowner", "zqrepo", "zq-branch").unwrap();
    gh.get_branch_protection("zqowner", "zqrepo", "zq-branch")
        .unwrap();
    gh.list_outside_collaborators("zqowner", "zqrepo").unwrap();
    gh.get_collaborator_permission("zqowner", "zqrepo", "zqowner")
        .unwrap();
    gh.list_open_pull_requests("zqowner", "zqrepo").unwrap();
    gh.list_issue_comments("zqowner", "zqrepo", 4711)
        .unwrap_err();
    gh.verify_token().unwrap();
}

#[test]
fn every_route_is_a_template_with_no_name_or_id_left() {
    start();
    let mut config = SimConfig::new(PAT);
    config.orgs = vec!["zqorg".into()];
    config.repos = vec!["zqowner/zqrepo".into()];
    let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    call_every_rest_method(&client(&format!("{}/api/v3", server.url)), &server);
    let calls = take_calls();
    recorder::assert_no_host_query_or_token(&calls, PAT);
    let routes: BTreeSet<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.route))
        .collect();
    let expected: BTreeSet<String> = [
        "POST /orgs/{}/actions/runners/registration-token",
        "POST /repos/{}/{}/actions/runners/remove-token",
        "GET /repos/{}/{}/actions/runners",
        "GET /orgs/{}/actions/runner-groups",
        "POST /orgs/{}/actions/runners/generate-jitconfig",
        "GET /orgs/{}/actions/runners/{}",
        "DELETE /orgs/{}/actions/runners/{}",
        "GET /orgs/{}/actions/runners/downloads",
        "GET runner-tarball",
        "GET /repos/{}/{}",
        "GET /repos/{}/{}/branches/{}",
        "GET /repos/{}/{}/branches/{}/protection",
        "GET /repos/{}/{}/collaborators",
        "GET /repos/{}/{}/collaborators/{}/permission",
        "GET /repos/{}/{}/pulls",
        "GET /repos/{}/{}/issues/{}/comments",
        "GET /rate_limit",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(routes, expected);
    assert!(calls
        .iter()
        .all(|c| matches!(c.outcome, Outcome::Status(_))));
}
