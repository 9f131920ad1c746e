//! The policy service's behaviour table, case by case: the real server on loopback,
//! driven over HTTP, with an in-memory GitHub behind the `RepoApi` trait.

mod policy_support;

use std::sync::Arc;

use github_runner::policy::fake::{collaborator, comment, pull, FakeRepo, FakeRepoApi};
use github_runner::policy::github::{ApiError, Permission};
use policy_support::{json, log_lines, request, Service, CHARM_TOKEN};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// canonical/app: compliant, with an open pull request from the fork alice/app.
fn app() -> FakeRepo {
    let mut app = FakeRepo::compliant("main");
    app.pulls.push(pull(
        7,
        "alice/app",
        "feature",
        SHA,
        "canonical/app",
        "main",
    ));
    app.permissions.insert("maint".into(), Permission::Write);
    app
}

fn github() -> Arc<FakeRepoApi> {
    let mut leaky = FakeRepo::compliant("main");
    leaky.outside_collaborators = vec![collaborator("mallory", "write")];
    Arc::new(
        FakeRepoApi::new()
            .with_repo("canonical/app", app())
            .with_repo("canonical/leaky", leaky),
    )
}

fn pr_body(source: &str) -> String {
    format!(
        r#"{{"repository_name": "canonical/app", "source_repository_name": "{source}",
            "target_branch_name": "main", "source_branch_name": "feature", "commit_sha": "{SHA}"}}"#
    )
}

#[test]
fn one_time_token_needs_the_charm_token() {
    let s = Service::start(github(), None);
    let none = request(s.url(), "GET", "/one-time-token", None, None);
    assert_eq!(
        (none.status, none.www_authenticate.as_deref()),
        (401, Some("Bearer"))
    );
    let wrong = request(s.url(), "GET", "/one-time-token", Some("guess"), None);
    assert_eq!(
        (wrong.status, wrong.www_authenticate.as_deref()),
        (401, Some("Bearer"))
    );
    let basic = ureq::get(&format!("{}/one-time-token", s.url()))
        .set("Authorization", &format!("Basic {CHARM_TOKEN}"))
        .call();
    assert!(matches!(basic, Err(ureq::Error::Status(401, _))));

    let token = s.one_time_token();
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(token, s.one_time_token());

    // A one-time token has the wrong role here: 403, and it is used up by trying.
    let misuse = request(s.url(), "GET", "/one-time-token", Some(&token), None);
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
fn pull_request_check_run_pass_fail_and_alias() {
    let s = Service::start(github(), None);
    for path in ["/pull_request/check-run", "/check-run"] {
        let pass = request(
            s.url(),
            "POST",
            path,
            Some(&s.one_time_token()),
            json(&pr_body("canonical/app")),
        );
        assert_eq!(pass.status, 204, "{path}: {}", pass.body);
        // A fork's pull request without approval: 403 with the rule and the fix.
        let fork = request(
            s.url(),
            "POST",
            path,
            Some(&s.one_time_token()),
            json(&pr_body("alice/app")),
        );
        assert_eq!(fork.status, 403, "{path}");
        assert!(fork.body.starts_with("execute_job:"), "{}", fork.body);
        assert!(
            fork.body
                .contains("/canonical/self-hosted-runners/run-workflows"),
            "{}",
            fork.body
        );
    }
    // A maintainer approves this commit: the fork's job may run.
    let mut approved = app();
    approved.comments.insert(
        7,
        vec![comment(
            "maint",
            &format!("/canonical/self-hosted-runners/run-workflows {SHA}"),
        )],
    );
    s.api.set_repo("canonical/app", approved);
    let r = request(
        s.url(),
        "POST",
        "/pull_request/check-run",
        Some(&s.one_time_token()),
        json(&pr_body("alice/app")),
    );
    assert_eq!(r.status, 204, "{}", r.body);
}

#[test]
fn repository_events_check_collaborators() {
    let s = Service::start(github(), None);
    for event in ["workflow_dispatch", "push", "schedule", "default"] {
        let path = format!("/{event}/check-run");
        let ok = request(
            s.url(),
            "POST",
            &path,
            Some(&s.one_time_token()),
            json(r#"{"repository_name": "canonical/app"}"#),
        );
        assert_eq!(ok.status, 204, "{event}: {}", ok.body);
        let leaky = request(
            s.url(),
            "POST",
            &path,
            Some(&s.one_time_token()),
            json(r#"{"repository_name": "canonical/leaky"}"#),
        );
        assert_eq!(leaky.status, 403, "{event}");
        assert!(
            leaky.body.contains("collaborators:") && leaky.body.contains("mallory (write)"),
            "{}",
            leaky.body
        );
        let missing = request(
            s.url(),
            "POST",
            &path,
            Some(&s.one_time_token()),
            json(r#"{"repository_name": "canonical/none"}"#),
        );
        assert_eq!(missing.status, 403, "{event}");
        assert!(
            missing.body.contains("not set up correctly"),
            "{}",
            missing.body
        );
    }
}

#[test]
fn always_fail_refuses() {
    let s = Service::start(github(), None);
    assert_eq!(
        request(s.url(), "POST", "/always-fail/check-run", None, None).status,
        401
    );
    let r = request(
        s.url(),
        "POST",
        "/always-fail/check-run",
        Some(&s.one_time_token()),
        None,
    );
    assert_eq!(r.status, 403);
}

#[test]
fn tokens_are_single_use_whatever_the_outcome() {
    let s = Service::start(github(), None);
    let path = "/push/check-run";
    let body = r#"{"repository_name": "canonical/app"}"#;
    // Used up by a pass, a failure, a bad body and a non-JSON body alike.
    let outcomes = [
        (path, json(body), 204),
        (path, json(r#"{"repository_name": "canonical/leaky"}"#), 403),
        (path, json("{}"), 400),
        (path, Some(("text/plain", body)), 415),
    ];
    for (path, body_first, first) in outcomes {
        let token = s.one_time_token();
        assert_eq!(
            request(s.url(), "POST", path, Some(&token), body_first).status,
            first
        );
        let replay = request(s.url(), "POST", path, Some(&token), json(body));
        assert_eq!(
            (replay.status, replay.www_authenticate.as_deref()),
            (401, Some("Bearer"))
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
fn github_errors_map_to_statuses() {
    let s = Service::start(github(), None);
    let body = r#"{"repository_name": "canonical/app"}"#;
    s.api.fail_with(Some(ApiError::RateLimited(
        "resets at 2026-01-01 00:00:00 UTC".into(),
    )));
    let r = request(
        s.url(),
        "POST",
        "/push/check-run",
        Some(&s.one_time_token()),
        json(body),
    );
    assert_eq!(r.status, 500);
    assert!(r.body.contains("rate limit"), "{}", r.body);
    s.api.fail_with(Some(ApiError::Other("HTTP 502".into())));
    let r = request(
        s.url(),
        "POST",
        "/pull_request/check-run",
        Some(&s.one_time_token()),
        json(&pr_body("canonical/app")),
    );
    assert_eq!(r.status, 500);
    assert!(r.body.contains("HTTP 502"), "{}", r.body);
}

#[test]
fn health_follows_github() {
    let s = Service::start(github(), None);
    assert_eq!(request(s.url(), "GET", "/health", None, None).status, 204);
    s.api
        .fail_with(Some(ApiError::Other("HTTP 401 Bad credentials".into())));
    let r = request(s.url(), "GET", "/health", None, None);
    assert_eq!(r.status, 500);
    assert!(r.body.contains("Bad credentials"), "{}", r.body);
}

#[test]
fn policy_document_is_validated_applied_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    let leaky = r#"{"repository_name": "canonical/leaky"}"#;
    let s = Service::start(github(), Some(path.clone()));
    assert_eq!(
        request(
            s.url(),
            "POST",
            "/push/check-run",
            Some(&s.one_time_token()),
            json(leaky)
        )
        .status,
        403
    );

    let doc = r#"{"push": {"collaborators": {"enabled": false}}}"#;
    assert_eq!(
        request(s.url(), "POST", "/policy", None, json(doc)).status,
        401
    );
    assert_eq!(
        request(
            s.url(),
            "POST",
            "/policy",
            Some(&s.one_time_token()),
            json(doc)
        )
        .status,
        403
    );
    assert_eq!(
        request(
            s.url(),
            "POST",
            "/policy",
            Some(CHARM_TOKEN),
            Some(("text/plain", doc))
        )
        .status,
        415
    );
    let bad = request(
        s.url(),
        "POST",
        "/policy",
        Some(CHARM_TOKEN),
        json(r#"{"push": {"colaborators": {"enabled": false}}}"#),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("colaborators"), "{}", bad.body);
    assert!(!path.exists(), "an invalid document is not stored");

    assert_eq!(
        request(s.url(), "POST", "/policy", Some(CHARM_TOKEN), json(doc)).status,
        204
    );
    assert_eq!(
        request(
            s.url(),
            "POST",
            "/push/check-run",
            Some(&s.one_time_token()),
            json(leaky)
        )
        .status,
        204
    );
    // Other events keep their rule.
    assert_eq!(
        request(
            s.url(),
            "POST",
            "/schedule/check-run",
            Some(&s.one_time_token()),
            json(leaky)
        )
        .status,
        403
    );
    s.stop().unwrap();

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let s = Service::start(github(), Some(path));
    assert_eq!(
        request(
            s.url(),
            "POST",
            "/push/check-run",
            Some(&s.one_time_token()),
            json(leaky)
        )
        .status,
        204
    );
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
    request(s.url(), "GET", "/one-time-token", Some(&unused), None);
    tokens.push(unused);
    request(s.url(), "GET", "/one-time-token", Some("not-a-token"), None);
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

/// The service's own time per check, on the heaviest path (a fork's pull request
/// approved by comment: every rule runs). `cargo test --test policy_service
/// check_latency -- --nocapture` prints the numbers for BENCHMARKS.md.
#[test]
fn check_latency() {
    let mut approved = app();
    let approval = format!("/canonical/self-hosted-runners/run-workflows {SHA}");
    approved
        .comments
        .insert(7, vec![comment("maint", &approval)]);
    let api = Arc::new(FakeRepoApi::new().with_repo("canonical/app", approved));
    let report = github_runner::policy::bench::measure_check_latency(
        api,
        "/pull_request/check-run",
        &pr_body("alice/app"),
        204,
        200,
    )
    .unwrap();
    println!("policy check latency (in-memory GitHub): {report}");
    assert!(report.github_calls >= 7, "{report}");
    assert!(
        report.own_p50 < std::time::Duration::from_millis(50),
        "{report}"
    );
}
