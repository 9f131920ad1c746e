//! The policy service's HTTP contract, case by case: bearer roles, one-time tokens,
//! request bodies, health, listeners and logging. The real server on loopback, driven
//! over HTTP, with an in-memory GitHub behind the `RepoApi` trait.

mod policy_support;

use policy_service::github::ApiError;
use policy_service::server::BODY_LIMIT;
use policy_support::{
    github, json, log_lines, pr_body, request, request_as, Service, CHARM_TOKEN, RUNNER,
};

#[test]
fn one_time_token_needs_the_charm_token() {
    let s = Service::start(github(), None);
    let none = request(s.charm_url(), "GET", "/one-time-token", None, None);
    assert_eq!(
        (none.status, none.www_authenticate.as_deref()),
        (401, Some("Bearer"))
    );
    let wrong = request(s.charm_url(), "GET", "/one-time-token", Some("guess"), None);
    assert_eq!(
        (wrong.status, wrong.www_authenticate.as_deref()),
        (401, Some("Bearer"))
    );
    let basic = ureq::get(&format!("{}/one-time-token", s.charm_url()))
        .set("Authorization", &format!("Basic {CHARM_TOKEN}"))
        .call();
    assert!(matches!(basic, Err(ureq::Error::Status(401, _))));

    let token = s.one_time_token();
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(token, s.one_time_token());

    // A one-time token has the wrong role here: 403, and it is used up by trying.
    let misuse = request(s.charm_url(), "GET", "/one-time-token", Some(&token), None);
    assert_eq!(misuse.status, 403);
    let again = request(
        s.url(),
        "POST",
        "/push/check-run",
        Some(&token),
        json(r#"{"repository_name": "canonical/app"}"#),
    );
    assert_eq!(again.status, 401);
}

#[test]
fn tokens_are_single_use_whatever_the_outcome() {
    let s = Service::start(github(), None);
    let path = "/push/check-run";
    let body = r#"{"repository_name": "canonical/app"}"#;
    let oversized = "x".repeat(BODY_LIMIT + 1);
    // Used up by a pass, a failure, a bad body and a non-JSON body alike, and by
    // requests no handler answers: an unknown path, a wrong method, a body too large.
    let outcomes = [
        ("POST", path, json(body), 204),
        (
            "POST",
            path,
            json(r#"{"repository_name": "canonical/leaky"}"#),
            403,
        ),
        ("POST", path, json("{}"), 400),
        ("POST", path, Some(("text/plain", body)), 415),
        ("POST", "/nope/check-run", json(body), 404),
        ("GET", path, None, 405),
        ("POST", path, json(&oversized), 413),
    ];
    for (method, first_path, first_body, first) in outcomes {
        let token = s.one_time_token();
        let used = request(s.url(), method, first_path, Some(&token), first_body);
        assert_eq!(used.status, first, "{method} {first_path}");
        let replay = request(s.url(), "POST", path, Some(&token), json(body));
        assert_eq!(
            (replay.status, replay.www_authenticate.as_deref()),
            (401, Some("Bearer")),
            "replay after {method} {first_path} answered {first}"
        );
    }
    // The charm token may not run checks.
    assert_eq!(
        request(s.url(), "POST", path, Some(CHARM_TOKEN), json(body)).status,
        403
    );
    assert_eq!(request(s.url(), "POST", path, None, json(body)).status, 401);
}

#[test]
fn bodies_are_validated() {
    let s = Service::start(github(), None);
    let post = |body: Option<(&str, &str)>| {
        request(
            s.url(),
            "POST",
            "/pull_request/check-run",
            Some(&s.one_time_token()),
            body,
        )
    };
    assert_eq!(
        post(Some(("text/plain", &pr_body("canonical/app")))).status,
        415
    );
    assert_eq!(post(None).status, 415);
    assert_eq!(post(json("{not json")).status, 415);
    assert_eq!(post(json("[1]")).status, 400);
    assert_eq!(
        post(Some((
            "application/json; charset=utf-8",
            &pr_body("canonical/app")
        )))
        .status,
        204
    );
    let full: serde_json::Value = serde_json::from_str(&pr_body("canonical/app")).unwrap();
    for field in [
        "repository_name",
        "source_repository_name",
        "target_branch_name",
        "source_branch_name",
        "commit_sha",
    ] {
        let mut missing = full.clone();
        missing.as_object_mut().unwrap().remove(field);
        let r = post(json(&missing.to_string()));
        assert_eq!(r.status, 400, "{field}");
        assert!(r.body.contains(field), "{field}: {}", r.body);
        let mut empty = full.clone();
        empty[field] = "".into();
        let r = post(json(&empty.to_string()));
        assert_eq!(r.status, 400, "{field}");
        assert!(r.body.contains(field), "{field}: {}", r.body);
    }
    let mut extra = full.clone();
    extra["unexpected"] = "ignored".into();
    assert_eq!(post(json(&extra.to_string())).status, 204);
    let mut bad_sha = full.clone();
    bad_sha["commit_sha"] = "main".into();
    assert_eq!(post(json(&bad_sha.to_string())).status, 400);
    let mut bad_repo = full;
    bad_repo["repository_name"] = "../etc".into();
    assert_eq!(post(json(&bad_repo.to_string())).status, 400);
    let r = request(
        s.url(),
        "POST",
        "/push/check-run",
        Some(&s.one_time_token()),
        json(r#"{"repo": "x"}"#),
    );
    assert!(
        r.status == 400 && r.body.contains("repository_name"),
        "{r:?}"
    );
}

#[test]
fn health_follows_github() {
    let s = Service::start(github(), None);
    let before = s.api.calls();
    for _ in 0..20 {
        assert_eq!(request(s.url(), "GET", "/health", None, None).status, 204);
    }
    assert_eq!(
        s.api.calls() - before,
        1,
        "health answers are reused: one GitHub call"
    );

    let s = Service::start(github(), None);
    s.api
        .fail_with(Some(ApiError::Other("HTTP 401 Bad credentials".into())));
    let r = request(s.url(), "GET", "/health", None, None);
    assert_eq!(r.status, 500);
    assert!(r.body.contains("Bad credentials"), "{}", r.body);
}

#[test]
fn serves_every_listener_and_stops_cleanly() {
    let s = Service::start_on(github(), None, 2);
    for url in s.urls.clone() {
        assert_eq!(request(&url, "GET", "/health", None, None).status, 204);
    }
    let token = s.one_time_token();
    // A token issued through one listener works on the other: one state behind both.
    let r = request(
        &s.urls[1],
        "POST",
        "/push/check-run",
        Some(&token),
        json(r#"{"repository_name": "canonical/app"}"#),
    );
    assert_eq!(r.status, 204);
    assert_eq!(request(s.url(), "GET", "/nope", None, None).status, 404);
    s.stop().expect("serve returns Ok after shutdown");
}

#[test]
fn no_token_is_ever_logged() {
    let s = Service::start(github(), None);
    let mut tokens = vec![CHARM_TOKEN.to_string()];
    for body in [
        r#"{"repository_name": "canonical/app"}"#,
        r#"{"repository_name": "canonical/leaky"}"#,
        "{}",
    ] {
        let t = s.one_time_token();
        request(s.url(), "POST", "/push/check-run", Some(&t), json(body));
        request(s.url(), "POST", "/push/check-run", Some(&t), json(body));
        tokens.push(t);
    }
    let unused = s.one_time_token();
    request(s.charm_url(), "GET", "/one-time-token", Some(&unused), None);
    tokens.push(unused);
    request(
        s.charm_url(),
        "GET",
        "/one-time-token",
        Some("not-a-token"),
        None,
    );
    drop(s);
    let lines = log_lines();
    assert!(
        lines.iter().any(|l| l.contains("refused")),
        "the refusals were logged: {lines:?}"
    );
    for line in &lines {
        for t in &tokens {
            assert!(!line.contains(t.as_str()), "token in log line {line:?}");
        }
        assert!(
            !line.contains("not-a-token"),
            "presented token in log line {line:?}"
        );
    }
}

#[test]
fn charm_client_gets_tokens_sets_policy_and_checks_health() {
    use github_runner::config::Token;
    use policy_service::client::{ClientError, PolicyClient};
    use policy_service::document::PolicyDocument;

    let s = Service::start(github(), None);
    let client = PolicyClient::new(&format!("{}/", s.charm_url()), Token::new(CHARM_TOKEN));
    let token = client.one_time_token(RUNNER).unwrap();
    let r = request(
        s.url(),
        "POST",
        "/push/check-run",
        Some(token.expose()),
        json(r#"{"repository_name": "canonical/app"}"#),
    );
    assert_eq!(r.status, 204);
    let doc =
        PolicyDocument::parse(r#"{"schedule": {"collaborators": {"enabled": false}}}"#).unwrap();
    client.set_policy(&doc).unwrap();
    // A revoked token is refused; revoking a runner without one is no error.
    let token = client.one_time_token(RUNNER).unwrap();
    client.revoke_one_time_token(RUNNER).unwrap();
    client.revoke_one_time_token(RUNNER).unwrap();
    let r = request(
        s.url(),
        "POST",
        "/push/check-run",
        Some(token.expose()),
        json(r#"{"repository_name": "canonical/app"}"#),
    );
    assert_eq!(r.status, 401);
    client.health().unwrap();

    let wrong = PolicyClient::new(s.charm_url(), Token::new("wrong"));
    match wrong.one_time_token(RUNNER) {
        Err(ClientError::Status { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    let failing = Service::start(github(), None);
    failing
        .api
        .fail_with(Some(ApiError::Other("HTTP 401 Bad credentials".into())));
    let client = PolicyClient::new(failing.charm_url(), Token::new(CHARM_TOKEN));
    assert!(matches!(
        client.health(),
        Err(ClientError::Status { status: 500, .. })
    ));
    drop(s);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gone = PolicyClient::new(&format!("http://{closed}"), Token::new(CHARM_TOKEN));
    match gone.one_time_token(RUNNER) {
        Err(e @ ClientError::Unreachable { .. }) => assert!(!e.to_string().contains(CHARM_TOKEN)),
        other => panic!("{other:?}"),
    }
}

/// A token is issued for one runner, accepted only from it (anyone else's use spends
/// it), and revoked by the charm alone.
#[test]
fn one_time_tokens_are_bound_to_their_runner_and_revocable() {
    let s = Service::start(github(), None);
    let push = |runner: Option<&str>, token: &str| {
        let body = json(r#"{"repository_name": "canonical/app"}"#);
        request_as(
            runner,
            s.url(),
            "POST",
            "/push/check-run",
            Some(token),
            body,
        )
        .status
    };
    let token = s.one_time_token();
    assert_eq!(push(Some("test-runner-0-00000002"), &token), 401);
    assert_eq!(
        push(Some(RUNNER), &token),
        401,
        "used up by the other runner"
    );
    let token = s.one_time_token();
    assert_eq!(push(None, &token), 401, "no runner named");
    assert_eq!(push(Some(RUNNER), &token), 401);
    let token = s.one_time_token();
    assert_eq!(push(Some(RUNNER), &token), 204);
    assert!(
        log_lines().iter().any(|l| l.contains(&format!(
            "one-time token of runner {RUNNER} was presented as test-runner-0-00000002"
        ))),
        "the misuse was logged"
    );

    // Issuing and revoking name a runner, and only the charm may do either.
    let bare = request(
        s.charm_url(),
        "GET",
        "/one-time-token",
        Some(CHARM_TOKEN),
        None,
    );
    assert_eq!(bare.status, 400);
    assert!(bare.body.contains("runner"), "{}", bare.body);
    let bad = request(
        s.charm_url(),
        "GET",
        "/one-time-token?runner=a%20b",
        Some(CHARM_TOKEN),
        None,
    );
    assert_eq!(bad.status, 400);
    let revoke = format!("/one-time-token?runner={RUNNER}");
    let token = s.one_time_token();
    let other = s.one_time_token();
    let by_runner = request(s.charm_url(), "DELETE", &revoke, Some(&other), None);
    assert_eq!(by_runner.status, 403, "a runner cannot revoke");
    assert_eq!(
        request(s.charm_url(), "DELETE", &revoke, None, None).status,
        401
    );
    assert_eq!(
        request(s.charm_url(), "DELETE", &revoke, Some(CHARM_TOKEN), None).status,
        204
    );
    assert_eq!(push(Some(RUNNER), &token), 401, "revoked");
    // Not on the runners' listener at all.
    let token = s.one_time_token();
    let on_bridge = request(s.url(), "DELETE", &revoke, Some(CHARM_TOKEN), None);
    assert_eq!(on_bridge.status, 404);
    assert_eq!(push(Some(RUNNER), &token), 204, "nothing revoked there");
}

/// A client that sent half a request: the stop still completes (bounded drain).
#[test]
fn a_stuck_client_does_not_hold_the_stop_up() {
    use std::io::Write;
    let s = Service::start(github(), None);
    let mut stuck = std::net::TcpStream::connect(s.url().trim_start_matches("http://")).unwrap();
    stuck
        .write_all(b"POST /push/check-run HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = std::time::Instant::now();
    s.stop().unwrap();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(15), "{took:?}");
}
