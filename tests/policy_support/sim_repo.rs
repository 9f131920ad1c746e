//! The GitHub simulator set up for the policy tests through its admin API, and the
//! shared client pointed at it (directly or through Prism).

use github_client::{ClientOptions, GithubClient};
use github_runner::config::Token;
use github_runner::proxy::ProxyConfig;
use github_sim::{SimConfig, SimServer};
use serde_json::{json, Value};

pub const PAT: &str = "ghp_policySimToken000000000001";

/// A simulator with the PAT accepted and no repositories yet.
pub fn start() -> SimServer {
    SimServer::start(SimConfig::new(PAT), "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// One admin call; panics unless it succeeds.
pub fn admin(sim: &SimServer, method: &str, path: &str, body: Value) -> Value {
    let response = ureq::request(method, &format!("{}{path}", sim.url))
        .send_json(body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    response.into_json().unwrap_or(Value::Null)
}

/// The client with the service's bounds, at `base` (the sim, `/api/v3` on it, or Prism).
pub fn client(base: &str, token: &str) -> GithubClient {
    GithubClient::with_options(
        base,
        Token::new(token),
        &ProxyConfig::default(),
        ClientOptions {
            retry: github_client::RetryPolicy {
                max_total: std::time::Duration::from_secs(4),
                ..Default::default()
            },
            ..policy_service::client_options()
        },
    )
    .unwrap()
}

/// Protection requiring reviews, with these bypass allowances.
pub fn reviews(users: &[&str], teams: &[&str], apps: &[&str]) -> Value {
    json!({"required_reviews": {"bypass": {"users": users, "teams": teams, "apps": apps}}})
}

pub fn branch(sim: &SimServer, repo: &str, name: &str, protection: Value) {
    admin(
        sim,
        "POST",
        &format!("/_sim/repos/{repo}/branches"),
        json!({"name": name, "protection": protection}),
    );
}

/// A repository that passes every rule: `main` protected with reviews, no bypass,
/// no outside collaborators.
pub fn compliant(sim: &SimServer, repo: &str) {
    branch(sim, repo, "main", reviews(&[], &[], &[]));
}

pub fn outside_collaborators(sim: &SimServer, repo: &str, people: &[(&str, &str)]) {
    let list: Vec<Value> = people
        .iter()
        .map(|(login, role)| json!({"login": login, "role": role}))
        .collect();
    admin(
        sim,
        "PUT",
        &format!("/_sim/repos/{repo}/outside-collaborators"),
        Value::Array(list),
    );
}

pub fn roles(sim: &SimServer, repo: &str, people: &[(&str, &str)]) {
    let list: Vec<Value> = people
        .iter()
        .map(|(login, role)| json!({"login": login, "role": role}))
        .collect();
    admin(
        sim,
        "PUT",
        &format!("/_sim/repos/{repo}/roles"),
        Value::Array(list),
    );
}

/// An open pull request from `head_repo:head_ref` at `sha` into `base_ref`; its number.
pub fn pull(
    sim: &SimServer,
    repo: &str,
    head_repo: &str,
    head_ref: &str,
    sha: &str,
    base_ref: &str,
) -> u64 {
    let v = admin(
        sim,
        "POST",
        &format!("/_sim/repos/{repo}/pulls"),
        json!({"head_repo": head_repo, "head_ref": head_ref, "head_sha": sha, "base_ref": base_ref}),
    );
    v["number"].as_u64().unwrap()
}

pub fn comments(sim: &SimServer, repo: &str, number: u64, list: &[(&str, String)]) {
    let list: Vec<Value> = list
        .iter()
        .map(|(user, body)| json!({"user": user, "body": body}))
        .collect();
    admin(
        sim,
        "POST",
        &format!("/_sim/repos/{repo}/issues/{number}/comments"),
        Value::Array(list),
    );
}

/// Requests per route the simulator counted.
pub fn counters(sim: &SimServer) -> Value {
    ureq::get(&format!("{}/_sim/counters", sim.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}
