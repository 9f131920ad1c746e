//! Check-run outcomes over HTTP: each event's pass, fail and error answers, the policy
//! document's effect and persistence, and the check latency benchmark. The real server
//! on loopback with an in-memory GitHub behind the `RepoApi` trait.

mod policy_support;

use std::sync::Arc;

use policy_service::fake::{comment, FakeRepoApi};
use policy_service::github::ApiError;
use policy_support::{app, github, json, pr_body, request, Service, CHARM_TOKEN, SHA};

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
            json(r#"{"repository_name": "canonical/app", "event_name": "release"}"#),
        );
        assert_eq!(ok.status, 204, "{event}: {}", ok.body);
        let leaky = request(
            s.url(),
            "POST",
            &path,
            Some(&s.one_time_token()),
            json(r#"{"repository_name": "canonical/leaky", "event_name": "release"}"#),
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
            json(r#"{"repository_name": "canonical/none", "event_name": "release"}"#),
        );
        assert_eq!(missing.status, 403, "{event}");
        assert!(
            missing.body.contains("not set up correctly"),
            "{}",
            missing.body
        );
    }
}

/// The default check never passes an event that carries a pull request: one named
/// `pull_request*`, or whose body says its payload carries one. It must be told the
/// event's name.
#[test]
fn default_refuses_events_that_carry_a_pull_request() {
    let s = Service::start(github(), None);
    let default = |body: &str| {
        let token = s.one_time_token();
        request(
            s.url(),
            "POST",
            "/default/check-run",
            Some(&token),
            json(body),
        )
    };
    for event in [
        "pull_request",
        "pull_request_target",
        "pull_request_review",
        "pull_request_review_comment",
    ] {
        let body = format!(r#"{{"repository_name": "canonical/app", "event_name": "{event}"}}"#);
        let r = default(&body);
        assert_eq!(r.status, 403, "{event}: {}", r.body);
        assert!(
            r.body.starts_with("default: the ") && r.body.contains(event),
            "{}",
            r.body
        );
    }
    let carried = default(
        r#"{"repository_name": "canonical/app", "event_name": "issue_comment", "carries_pull_request": true}"#,
    );
    assert_eq!(carried.status, 403, "{}", carried.body);
    let issue = default(
        r#"{"repository_name": "canonical/app", "event_name": "issue_comment", "carries_pull_request": false}"#,
    );
    assert_eq!(issue.status, 204, "{}", issue.body);
    let unnamed = default(r#"{"repository_name": "canonical/app"}"#);
    assert_eq!(unnamed.status, 400);
    assert!(unnamed.body.contains("event_name"), "{}", unnamed.body);
    let odd = default(
        r#"{"repository_name": "canonical/app", "event_name": "x", "carries_pull_request": "no"}"#,
    );
    assert_eq!(odd.status, 400);
}

/// A comment on a pull request names it by number: the open pull request's head is
/// checked (the fork's unapproved commit refused), and a number not open is refused.
#[test]
fn pull_request_check_by_number() {
    let s = Service::start(github(), None);
    let check = |body: &str| {
        let token = s.one_time_token();
        request(
            s.url(),
            "POST",
            "/pull_request/check-run",
            Some(&token),
            json(body),
        )
    };
    let fork = check(r#"{"repository_name": "canonical/app", "pull_request_number": 7}"#);
    assert_eq!(fork.status, 403, "{}", fork.body);
    assert!(fork.body.starts_with("execute_job:"), "{}", fork.body);
    let gone = check(r#"{"repository_name": "canonical/app", "pull_request_number": 8}"#);
    assert_eq!(gone.status, 403);
    assert!(
        gone.body.contains("#8 of canonical/app is not open"),
        "{}",
        gone.body
    );
    let bad = check(r#"{"repository_name": "canonical/app", "pull_request_number": "7"}"#);
    assert_eq!(bad.status, 400);
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
        request(s.charm_url(), "POST", "/policy", None, json(doc)).status,
        401
    );
    assert_eq!(
        request(
            s.charm_url(),
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
            s.charm_url(),
            "POST",
            "/policy",
            Some(CHARM_TOKEN),
            Some(("text/plain", doc))
        )
        .status,
        415
    );
    let bad = request(
        s.charm_url(),
        "POST",
        "/policy",
        Some(CHARM_TOKEN),
        json(r#"{"push": {"colaborators": {"enabled": false}}}"#),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("colaborators"), "{}", bad.body);
    assert!(!path.exists(), "an invalid document is not stored");

    assert_eq!(
        request(
            s.charm_url(),
            "POST",
            "/policy",
            Some(CHARM_TOKEN),
            json(doc)
        )
        .status,
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
    let report = test_support::policy_bench::measure_check_latency(
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
