//! The client as a GitHub App installation against the simulator, which checks the JWT
//! with the App's public key the way GitHub does: the client mints an installation
//! token, shares it through its cache file, renews it, recovers from a revoked one,
//! and reports GitHub's refusals as `AppAuth`. Keys are generated per run.

mod app_lab;
mod recorder;

use app_lab::AppSim;
use ghr_types::telemetry::Outcome;
use ghr_types::GithubPath;
use github_client::GithubError;
use recorder::{assert_no_host_query_or_token, github, start, take_calls};
use serde_json::json;
use test_support::app_key::AppKeyPair;

const PAT: &str = "ghp_appAuthSimUnusedPat00001";
const CLIENT_ID: &str = "Iv23liClientAppAuth1";
const APP_ID: u64 = 2001;
const INSTALLATION: u64 = 6001;

/// App 2001 installed on `acme`.
fn lab() -> AppSim {
    AppSim::start(PAT, APP_ID, CLIENT_ID, INSTALLATION)
}

fn acme() -> GithubPath {
    GithubPath::Org {
        org: "acme".into(),
        group: "default".into(),
    }
}

#[test]
fn clients_sharing_a_cache_file_mint_one_token_at_the_root_and_under_ghes() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("app-token.json");
    let pkcs1 = lab.key(CLIENT_ID, INSTALLATION, &lab.key.pkcs1_pem);
    // GHES 3.13 and older take the numeric app id as the issuer.
    let pkcs8 = lab.key(&APP_ID.to_string(), INSTALLATION, &lab.key.pkcs8_pem);
    let first = lab.client(&lab.server.url, pkcs1, Some(cache.clone()));
    first.list_runners(&acme()).unwrap();
    first.list_runners(&acme()).unwrap();
    assert_eq!(lab.tokens_issued(), 1);
    assert_eq!(first.request_count(), 3, "one exchange, two requests");

    // A key with another issuer is another credential: its own token, then shared.
    let ghes = format!("{}/api/v3", lab.server.url);
    let second = lab.client(&ghes, pkcs8.clone(), Some(cache.clone()));
    second.list_runners(&acme()).unwrap();
    let third = lab.client(&ghes, pkcs8, Some(cache.clone()));
    third.list_runners(&acme()).unwrap();
    assert_eq!(lab.tokens_issued(), 2);
    assert_eq!(third.request_count(), 1, "the cached token, no exchange");

    // The same key towards another API base is another credential too.
    let fourth = lab.client(
        &lab.server.url,
        lab.key(&APP_ID.to_string(), INSTALLATION, &lab.key.pkcs8_pem),
        Some(cache),
    );
    fourth.list_runners(&acme()).unwrap();
    assert_eq!(lab.tokens_issued(), 3);
}

#[test]
fn the_exchange_is_reported_under_its_route() {
    start();
    let lab = lab();
    let client = lab.client(
        &lab.server.url,
        lab.key(CLIENT_ID, INSTALLATION, &lab.key.pkcs1_pem),
        None,
    );
    client.list_runners(&acme()).unwrap();
    let ok = |method, route, status| github(method, route, Outcome::Status(status));
    let calls = take_calls();
    assert_no_host_query_or_token(&calls, "ghs_");
    assert_eq!(
        calls,
        [
            ok("POST", "/app/installations/{}/access_tokens", 201),
            ok("GET", "/orgs/{}/actions/runners", 200),
        ]
    );
}

#[test]
fn an_expired_token_is_replaced_and_the_request_still_succeeds() {
    let lab = lab();
    let dir = tempfile::tempdir().unwrap();
    let cache = Some(dir.path().join("app-token.json"));
    let key = lab.key(CLIENT_ID, INSTALLATION, &lab.key.pkcs1_pem);
    let client = lab.client(&lab.server.url, key.clone(), cache.clone());
    client.list_runners(&acme()).unwrap();
    // Revoked (expired early) behind the client's back: the 401 costs one re-mint.
    lab.admin("POST", "/_sim/apps/expire-tokens", json!({}));
    client.list_runners(&acme()).unwrap();
    assert_eq!(lab.tokens_issued(), 2);
    // The cache now holds the new token: another client mints nothing.
    lab.client(&lab.server.url, key, cache)
        .list_runners(&acme())
        .unwrap();
    assert_eq!(lab.tokens_issued(), 2);
}

#[test]
fn a_token_at_the_end_of_its_life_is_renewed_before_the_request() {
    let lab = lab();
    lab.admin(
        "POST",
        "/_sim/apps/settings",
        json!({"token_lifetime_secs": 4}),
    );
    let client = lab.client(
        &lab.server.url,
        lab.key(CLIENT_ID, INSTALLATION, &lab.key.pkcs8_pem),
        None,
    );
    client.list_runners(&acme()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(4500));
    client.list_runners(&acme()).unwrap();
    assert_eq!(lab.tokens_issued(), 2);
    // Renewed first, so no request was refused: exchange, request, exchange, request.
    assert_eq!(client.request_count(), 4);
}

#[test]
fn githubs_refusals_are_app_auth_errors_naming_no_secret() {
    let lab = lab();
    let stranger = AppKeyPair::generate();
    let cases = [
        // Signed by a key the App does not have.
        (lab.key(CLIENT_ID, INSTALLATION, &stranger.pkcs1_pem), 401),
        (
            lab.key("Iv23liNoSuchApp", INSTALLATION, &lab.key.pkcs1_pem),
            401,
        ),
        // Not this App's installation.
        (lab.key(CLIENT_ID, 9999, &lab.key.pkcs1_pem), 404),
    ];
    for (key, expected) in cases {
        let pem_line = key.private_key.expose().lines().nth(3).unwrap().to_string();
        let client = lab.client(&lab.server.url, key, None);
        let error = client.list_runners(&acme()).unwrap_err();
        let GithubError::AppAuth { status, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*status, expected, "{error}");
        assert!(error.is_credential_rejected());
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains(&pem_line) && !shown.contains("eyJ"),
            "{shown}"
        );
    }
    assert_eq!(lab.tokens_issued(), 0);
}

#[test]
fn a_clock_far_ahead_of_githubs_shows_githubs_reason() {
    let lab = lab();
    // GitHub two minutes behind us: our nine-minute JWT ends eleven minutes ahead.
    lab.admin(
        "POST",
        "/_sim/apps/settings",
        json!({"clock_offset_secs": -120}),
    );
    let key = lab.key(CLIENT_ID, INSTALLATION, &lab.key.pkcs1_pem);
    let error = lab
        .client(&lab.server.url, key, None)
        .list_runners(&acme())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("'exp') is too far in the future"),
        "{error}"
    );
}
