//! Installation tokens kept, shared and renewed: how many exchanges each situation
//! costs, counted by a loopback GitHub whose tokens expire by the test's clock.

use std::os::unix::fs::PermissionsExt;

use crate::test_server::{api_call, keys, FakeGithub, ECHO};
use crate::token_cache::CachedToken;
use crate::GithubError;

#[test]
fn two_requests_cost_one_exchange() {
    let server = FakeGithub::start(3600);
    let client = server.client(&keys()[0].pkcs1_pem, None).unwrap();
    api_call(&client).unwrap();
    api_call(&client).unwrap();
    assert_eq!(server.exchanges().len(), 1);
    let token = &server.minted()[0];
    assert_eq!(server.api_bearers(), [token.clone(), token.clone()]);
    assert_eq!(client.request_count(), 3, "the exchange is counted");
}

#[test]
fn an_hour_token_is_renewed_five_minutes_before_it_expires() {
    let server = FakeGithub::start(3600);
    let client = server.client(&keys()[0].pkcs1_pem, None).unwrap();
    api_call(&client).unwrap();
    server.advance(3600 - 300);
    api_call(&client).unwrap();
    assert_eq!(server.exchanges().len(), 1, "5 minutes left: still used");
    server.advance(1);
    api_call(&client).unwrap();
    assert_eq!(
        server.exchanges().len(),
        2,
        "under 5 minutes: renewed first"
    );
    let minted = server.minted();
    assert_eq!(server.api_bearers().last(), minted.last());
    assert!(
        !server
            .seen()
            .iter()
            .any(|s| s.method == "GET" && s.bearer.is_empty()),
        "no request went out without a token"
    );
}

#[test]
fn a_short_token_is_renewed_a_quarter_before_it_expires() {
    let server = FakeGithub::start(4);
    let client = server.client(&keys()[0].pkcs8_pem, None).unwrap();
    api_call(&client).unwrap();
    server.advance(3);
    api_call(&client).unwrap();
    assert_eq!(
        server.exchanges().len(),
        1,
        "1 s of 4 left: not under a quarter"
    );
    server.advance(1);
    api_call(&client).unwrap();
    assert_eq!(server.exchanges().len(), 2);
    // Not one 401: each token was renewed before it died.
    assert_eq!(server.api_bearers().len(), 3);
}

#[test]
fn clients_sharing_a_cache_file_share_one_token() {
    let pair = &keys()[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("github-app-token.json");
    let server = FakeGithub::start(3600);
    api_call(&server.client(&pair.pkcs1_pem, Some(path.clone())).unwrap()).unwrap();
    // A later process: a new client, nothing in memory, the same file.
    let second = server.client(&pair.pkcs1_pem, Some(path.clone())).unwrap();
    api_call(&second).unwrap();
    assert_eq!(server.exchanges().len(), 1);
    assert_eq!(
        second.request_count(),
        1,
        "no exchange by the second client"
    );

    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let content = std::fs::read_to_string(&path).unwrap();
    let key_line = pair.pkcs1_pem.lines().nth(3).unwrap();
    assert!(!content.contains(key_line), "no key material in the cache");
    assert!(!content.contains(&server.exchanges()[0].bearer), "no JWT");
    let cached: CachedToken = serde_json::from_str(&content).unwrap();
    assert_eq!(cached.token.expose(), server.minted()[0]);
}

#[test]
fn a_cache_written_for_another_key_or_unreadable_is_replaced() {
    let [ours, theirs] = keys();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    let server = FakeGithub::start(3600);
    api_call(
        &server
            .client(&theirs.pkcs1_pem, Some(path.clone()))
            .unwrap(),
    )
    .unwrap();
    let ours_client = server.client(&ours.pkcs1_pem, Some(path.clone())).unwrap();
    api_call(&ours_client).unwrap();
    assert_eq!(
        server.exchanges().len(),
        2,
        "another App's token is not ours"
    );
    let minted = server.minted();
    assert_eq!(server.api_bearers(), minted);
    let cached: CachedToken = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(cached.token.expose(), minted[1], "the file now holds ours");

    std::fs::write(&path, "{\"half\": ").unwrap();
    api_call(&server.client(&ours.pkcs8_pem, Some(path.clone())).unwrap()).unwrap();
    assert_eq!(server.exchanges().len(), 3, "a broken file is ignored");
    let cached: CachedToken = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(cached.token.expose(), minted_last(&server));
}

fn minted_last(server: &FakeGithub) -> String {
    server.minted().last().unwrap().clone()
}

#[test]
fn a_401_on_a_kept_token_mints_once_and_retries_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    let server = FakeGithub::start(3600);
    let client = server
        .client(&keys()[0].pkcs1_pem, Some(path.clone()))
        .unwrap();
    api_call(&client).unwrap();
    server.revoke_all();
    api_call(&client).unwrap();
    let minted = server.minted();
    assert_eq!(minted.len(), 2, "one re-mint");
    let expected = [&minted[0], &minted[0], &minted[1]].map(String::clone);
    assert_eq!(server.api_bearers(), expected);
    let cached: CachedToken = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        cached.token.expose(),
        minted[1],
        "the file holds the new token"
    );
    // And a new process reads that one, not the revoked one.
    api_call(&server.client(&keys()[0].pkcs1_pem, Some(path)).unwrap()).unwrap();
    assert_eq!(server.exchanges().len(), 2);
}

#[test]
fn a_second_401_is_the_answer() {
    let server = FakeGithub::start(3600);
    let client = server.client(&keys()[0].pkcs1_pem, None).unwrap();
    api_call(&client).unwrap();
    server.script_api(401, r#"{"message": "Bad credentials"}"#);
    server.script_api(401, r#"{"message": "Bad credentials"}"#);
    let error = api_call(&client).unwrap_err();
    assert!(matches!(error, GithubError::TokenRejected), "{error:?}");
    assert_eq!(server.exchanges().len(), 2, "one re-mint, no loop");
    assert_eq!(server.api_bearers().len(), 3);
}

#[test]
fn a_401_on_a_token_minted_for_the_request_is_not_retried() {
    let server = FakeGithub::start(3600);
    server.script_api(401, r#"{"message": "Bad credentials"}"#);
    let client = server.client(&keys()[0].pkcs1_pem, None).unwrap();
    let error = api_call(&client).unwrap_err();
    assert!(matches!(error, GithubError::TokenRejected), "{error:?}");
    assert_eq!(server.exchanges().len(), 1);
}

#[test]
fn an_exchange_that_fails_with_5xx_is_retried() {
    let server = FakeGithub::start(3600);
    server.script_exchange(502, r#"{"message": "Bad gateway"}"#);
    let client = server.client(&keys()[0].pkcs1_pem, None).unwrap();
    api_call(&client).unwrap();
    assert_eq!(server.exchanges().len(), 2);
    assert_eq!(server.minted().len(), 1);
    assert_eq!(
        server.clock.sleeps().len(),
        1,
        "one backoff, on the manual clock"
    );
}

#[test]
fn concurrent_requests_of_one_client_mint_once() {
    let server = FakeGithub::start(3600);
    let client = server.client(&keys()[0].pkcs1_pem, None).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..6 {
            let client = client.clone();
            scope.spawn(move || api_call(&client).unwrap());
        }
    });
    assert_eq!(server.exchanges().len(), 1);
    assert_eq!(server.api_bearers().len(), 6);
}

#[test]
fn server_text_is_scrubbed_of_the_installation_token() {
    let pair = &keys()[0];
    let server = FakeGithub::start(3600);
    let client = server.client(&pair.pkcs1_pem, None).unwrap();
    api_call(&client).unwrap();
    server.script_api(
        403,
        &format!(r#"{{"message": "token {ECHO} lacks a scope"}}"#),
    );
    let error = api_call(&client).unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(matches!(error, GithubError::Forbidden { .. }), "{shown}");
    assert!(shown.contains("token <redacted> lacks a scope"), "{shown}");
    for secret in [&server.minted()[0], &server.exchanges()[0].bearer] {
        assert!(!shown.contains(secret.as_str()), "{shown}");
    }
    assert!(!shown.contains(pair.pkcs1_pem.lines().nth(3).unwrap()));
}
