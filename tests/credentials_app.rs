//! GitHub App authentication end to end on the real LXD test daemon, with no personal
//! access token anywhere (the simulator refuses the lab's): the charm reads the App's
//! key from a Juju secret, trades a JWT for an installation token, registers runners
//! that take a job whose pre-job check the policy service (on the same App, as the
//! charm renders its variables) answers from GitHub. A steady reconcile costs no
//! exchange; a token that expires mid-run is renewed with no failure; a wrong key and a
//! JWT GitHub finds too long block the unit saying so. The key, the installation token
//! and the JWT are nowhere they must not be.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use github_runner::config::{GithubApp, GithubAuth, Token};
use github_runner::host::units::{render_policy_env, PolicySecrets};
use lab::forks::fork_pull_requests;
use lab::leaks::{assert_nowhere, pem_lines};
use lab::{serial, Policy, Sim, Unit, CHARM_TOKEN, PAT};
use serde_json::{json, Value};
use test_support::app_key::AppKeyPair;

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);
const APP_ID: u64 = 424242;
const CLIENT_ID: &str = "Iv23liLabApp0001";
const INSTALLATION: u64 = 77001;
const EXCHANGE: &str = "POST /app/installations/:installation_id/access_tokens";

#[test]
fn an_app_alone_registers_runners_runs_a_checked_job_and_renews_its_token() {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let sim = Sim::start(&["acme"], &[REPO]);
    fork_pull_requests(&sim, REPO);
    let key = sim.add_app(APP_ID, CLIENT_ID, INSTALLATION);
    // The policy service on the same App, with the variables the charm writes for it;
    // the default policy checks a push's actor on GitHub.
    let policy = Policy::start_with(&sim, json!({}), app_vars(&sim, &key.pkcs1_pem));
    sim.delete(&format!("/_sim/tokens/{PAT}"));

    let unit = Unit::new(&lxd, "ghr-app", 0, &sim, json!({}));
    let uri = unit.h.add_secret(&[("private-key", &key.pkcs1_pem)]);
    unit.h.grant_secret(&uri);
    unit.configure(&sim, app_config(&uri));
    unit.run("hooks/config-changed");
    unit.wait_pool(&sim, 1, SETTLE);

    let job = sim.queue_job(REPO, &["ghr-app"], &["true"]);
    let done = sim.wait_job(job, "completed", SETTLE);
    let log = policy.log_text();
    assert_eq!(done["conclusion"], json!("success"), "{done}\n{log}");
    assert!(log.contains(REPO) && log.contains(": pass"), "{log}");
    assert!(
        sim.route_count("GET /repos/:owner/:repo/collaborators") > 0,
        "the policy service asked GitHub: {}",
        sim.get("/_sim/counters")
    );

    steady_reconciles_cost_no_exchange(&sim, &unit);
    an_expired_token_is_renewed_without_a_failure(&sim, &unit);
    refusals_block_saying_why(&sim, &unit, &uri, &key.pkcs1_pem);

    let cache = std::fs::read_to_string(unit.state().join("github-app-token.json")).unwrap();
    let token: Value = serde_json::from_str(&cache).unwrap();
    let token = token["token"].as_str().expect("the cache holds the token");
    let mut secrets = pem_lines(&key.pkcs1_pem);
    secrets.push(token);
    assert_nowhere(&unit, &secrets, &policy.log_text());
}

/// The leak checks' JWT mark is what the client's crate writes first in every JWT.
#[test]
fn every_jwt_begins_with_the_mark_the_leak_checks_look_for() {
    use github_sim::jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let pair = AppKeyPair::generate();
    let key = EncodingKey::from_rsa_pem(pair.pkcs1_pem.as_bytes()).unwrap();
    let claims = json!({"iat": 1, "exp": 2, "iss": "Iv23liMark"});
    let jwt = encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap();
    assert!(
        jwt.starts_with(&format!("{}.", lab::leaks::JWT_HEADER)),
        "{jwt}"
    );
}

/// The App options, and no token.
fn app_config(uri: &str) -> Value {
    json!({"path": REPO, "virtual-machines": 1, "token": "",
           "github-app-client-id": CLIENT_ID, "github-app-installation-id": INSTALLATION,
           "github-app-private-key": uri})
}

/// What the charm's policy environment file says for the App, as `(name, value)`.
fn app_vars(sim: &Sim, pem: &str) -> Vec<(&'static str, String)> {
    let auth = GithubAuth::App(GithubApp {
        issuer: CLIENT_ID.into(),
        installation_id: INSTALLATION,
        private_key: Token::new(pem),
    });
    let charm = Token::new(CHARM_TOKEN);
    let file = render_policy_env(&PolicySecrets {
        github: &auth,
        charm_token: &charm,
        github_url: &sim.url,
    })
    .unwrap();
    let names = [
        "GITHUB_APP_ISSUER",
        "GITHUB_APP_INSTALLATION_ID",
        "GITHUB_APP_PRIVATE_KEY",
    ];
    let vars: Vec<(&'static str, String)> = file
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| names.iter().find(|n| **n == k).map(|n| (*n, v.to_string())))
        .collect();
    assert_eq!(vars.len(), 3, "{vars:?}");
    assert!(!file.contains("GITHUB_TOKEN"), "no token beside the App");
    vars
}

fn assert_active(unit: &Unit) {
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}\n{:#?}", unit.h.logs());
}

/// An hour's token serves every reconcile: hooks and the manager share it.
fn steady_reconciles_cost_no_exchange(sim: &Sim, unit: &Unit) {
    let (issued, exchanges) = (sim.tokens_issued(APP_ID), sim.route_count(EXCHANGE));
    for _ in 0..3 {
        unit.run("reconcile-runners");
        assert_active(unit);
    }
    assert_eq!(sim.tokens_issued(APP_ID), issued);
    assert_eq!(sim.route_count(EXCHANGE), exchanges);
}

/// Tokens of 3 s: the one in use stops working mid-run (GitHub revoked it), the next
/// reconcile mints one and succeeds; one that lapsed is renewed before it is used.
fn an_expired_token_is_renewed_without_a_failure(sim: &Sim, unit: &Unit) {
    sim.app_settings(Some(3), None);
    sim.post("/_sim/apps/expire-tokens", json!({}));
    let issued = sim.tokens_issued(APP_ID);
    unit.run("reconcile-runners");
    assert_active(unit);
    assert!(
        sim.tokens_issued(APP_ID) > issued,
        "a new token after the 401"
    );
    std::thread::sleep(Duration::from_secs(4));
    let issued = sim.tokens_issued(APP_ID);
    unit.run("reconcile-runners");
    assert_active(unit);
    assert!(
        sim.tokens_issued(APP_ID) > issued,
        "renewed after it lapsed"
    );
    sim.app_settings(Some(3600), None);
    unit.wait_pool(sim, 1, SETTLE);
}

/// Another key in the secret, then a JWT the simulator's clock finds too long: each
/// blocks naming the cause; the right key and clock bring the unit back.
fn refusals_block_saying_why(sim: &Sim, unit: &Unit, uri: &str, pem: &str) {
    let runners = unit.instances();
    unit.h
        .update_secret(uri, &[("private-key", &AppKeyPair::generate().pkcs1_pem)]);
    let run = unit.h.secret_changed(uri);
    assert!(run.success(), "{}", run.stderr());
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(
        message.contains("GitHub refused an installation token for the GitHub App (401)")
            && message.contains("github-app-private-key"),
        "{message}"
    );
    assert_eq!(unit.instances(), runners, "nothing is lost");

    unit.h.update_secret(uri, &[("private-key", pem)]);
    assert!(unit.h.secret_changed(uri).success());
    assert_active(unit);

    sim.app_settings(None, Some(-120));
    sim.post("/_sim/apps/expire-tokens", json!({}));
    unit.h.run("reconcile-runners");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(message.contains("too far in the future"), "{message}");
    sim.app_settings(None, Some(0));
    unit.run("reconcile-runners");
    assert_active(unit);
}
