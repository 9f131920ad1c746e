use std::path::Path;

use axum::body::Body;
use axum::http::Request as HttpRequest;
use axum::Router;
use tower::ServiceExt;

use super::*;
use crate::fake::{collaborator, FakeRepo, FakeRepoApi};
use crate::github::ApiError;
use crate::server::runner_router;

const RUNNER: &str = "test-runner-0-00000001";
const CHARM: &str = "charm-token-observe-test";

#[test]
fn only_a_decision_counts_as_allowed_or_refused() {
    let refused = Verdict::Refused {
        repository: "canonical/app".into(),
        reason: "no".into(),
    };
    assert_eq!(
        classify(Some(&Verdict::Allowed), Some(204)),
        PolicyResult::Allowed
    );
    assert_eq!(classify(Some(&refused), Some(403)), PolicyResult::Refused);
    assert_eq!(
        classify(Some(&Verdict::Error), Some(500)),
        PolicyResult::Error
    );
    assert_eq!(
        classify(None, Some(401)),
        PolicyResult::Rejected,
        "a bad token"
    );
    assert_eq!(
        classify(None, Some(400)),
        PolicyResult::Rejected,
        "a bad body"
    );
    assert_eq!(classify(None, Some(500)), PolicyResult::Error);
    assert_eq!(
        classify(None, None),
        PolicyResult::Error,
        "no answer went out"
    );
}

/// The value of the sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn checks(text: &str, endpoint: &str, result: &str) -> Option<f64> {
    let series =
        format!("github_runner_policy_checks_total{{endpoint=\"{endpoint}\",result=\"{result}\"}}");
    sample(text, &series)
}

/// canonical/app passes every rule; canonical/leaky has an outside collaborator.
fn state(events: &Path) -> Arc<AppState> {
    let mut leaky = FakeRepo::compliant("main");
    leaky.outside_collaborators = vec![collaborator("mallory", "write")];
    let api = FakeRepoApi::new()
        .with_repo("canonical/app", FakeRepo::compliant("main"))
        .with_repo("canonical/leaky", leaky);
    let log = EventLog::new(events.to_path_buf(), "app/0", 1 << 20, 1);
    let state = AppState::new(CHARM, Arc::new(api), None).unwrap();
    Arc::new(state.with_events(log))
}

/// `token`: `None` sends none; `Some("")` a fresh one-time token for [`RUNNER`].
async fn post(app: &Router, state: &AppState, path: &str, token: Option<&str>, body: &str) -> u16 {
    let mut request = HttpRequest::post(path)
        .header("x-runner-name", RUNNER)
        .header("content-type", "application/json");
    let fresh;
    let token = match token {
        Some("") => {
            fresh = state.tokens.issue(RUNNER).unwrap();
            Some(fresh.as_str())
        }
        other => other,
    };
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::from(body.to_string())).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    response.status().as_u16()
}

fn repo(name: &str) -> String {
    format!(r#"{{"repository_name": "{name}"}}"#)
}

#[tokio::test]
async fn checks_are_counted_by_route_and_what_they_decided() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.log");
    let state = state(&events);
    let app = runner_router(state.clone());
    let (push, default) = ("/push/check-run", "/default/check-run");
    let (app_body, leaky_body) = (repo("canonical/app"), repo("canonical/leaky"));
    let fork_event = r#"{"repository_name": "canonical/app", "event_name": "pull_request_target"}"#;
    let fresh = Some("");
    let cases = [
        (push, fresh, app_body.as_str(), 204),
        (push, fresh, leaky_body.as_str(), 403),
        // Turned away before any rule ran: no token, the charm's token, a body that is
        // not a check. The charm's token gets a 403 too, yet it is no refusal.
        (push, None, app_body.as_str(), 401),
        (push, Some(CHARM), app_body.as_str(), 403),
        (push, fresh, "{}", 400),
        (default, fresh, fork_event, 403),
        // A path that is no check: never a label.
        ("/canonical/app/check-run", fresh, "{}", 404),
    ];
    for (path, token, body, want) in cases {
        let got = post(&app, &state, path, token, body).await;
        assert_eq!(got, want, "{path} {token:?} {body}");
    }
    let health = HttpRequest::get("/health").body(Body::empty()).unwrap();
    app.clone().oneshot(health).await.unwrap();

    let text = state.observer().exposition();
    assert_eq!(checks(&text, push, "allowed"), Some(1.0), "{text}");
    assert_eq!(checks(&text, push, "refused"), Some(1.0), "{text}");
    assert_eq!(checks(&text, push, "rejected"), Some(3.0), "{text}");
    assert_eq!(
        checks(&text, push, "error"),
        Some(0.0),
        "a caller's fault is no error: {text}"
    );
    assert_eq!(checks(&text, default, "refused"), Some(1.0));
    let count = "github_runner_policy_check_duration_seconds_count";
    let push_count = format!("{count}{{endpoint=\"{push}\"}}");
    assert_eq!(sample(&text, &push_count), Some(5.0), "{text}");
    assert!(
        !text.contains("canonical/"),
        "no repository in a label: {text}"
    );
    assert!(!text.contains("/health") && !text.contains("app/check-run"));

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one line per refusal: {lines:?}");
    assert_eq!(lines[0]["event"], "refused-by-policy");
    assert_eq!(lines[0]["repository"], "canonical/leaky");
    assert_eq!(lines[0]["endpoint"], push);
    assert!(lines[0]["reason"].as_str().unwrap().contains("mallory"));
    assert_eq!(lines[1]["endpoint"], default);
    assert_eq!(lines[1]["unit"], "app/0");
}

#[tokio::test]
async fn github_failures_and_unanswered_checks_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.log");
    let api = Arc::new(FakeRepoApi::new().with_repo("canonical/app", FakeRepo::compliant("main")));
    api.fail_with(Some(ApiError::RateLimited("resets soon".into())));
    let log = EventLog::new(events.clone(), "app/0", 1 << 20, 1);
    let state = Arc::new(AppState::new(CHARM, api, None).unwrap().with_events(log));
    let app = runner_router(state.clone());
    let push = "/workflow_dispatch/check-run";
    assert_eq!(
        post(&app, &state, push, Some(""), &repo("canonical/app")).await,
        500
    );
    // A check whose answer never went out (time limit, or the runner hung up).
    drop(Pending {
        state: state.clone(),
        endpoint: push.into(),
        started: Instant::now(),
        done: false,
    });
    let text = state.observer().exposition();
    assert_eq!(checks(&text, push, "error"), Some(2.0), "{text}");
    assert_eq!(checks(&text, push, "refused"), Some(0.0), "{text}");
    assert!(!events.exists(), "errors are not refusals");
}

#[tokio::test]
async fn always_fail_refuses_and_names_the_repository_when_given() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.log");
    let state = state(&events);
    let app = runner_router(state.clone());
    let path = "/always-fail/check-run";
    assert_eq!(
        post(&app, &state, path, Some(""), &repo("canonical/app")).await,
        403
    );
    assert_eq!(post(&app, &state, path, Some(""), "not json").await, 403);
    let text = state.observer().exposition();
    assert_eq!(checks(&text, path, "refused"), Some(2.0), "{text}");
    let log = std::fs::read_to_string(&events).unwrap();
    let repositories: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["repository"].to_string())
        .collect();
    assert_eq!(repositories, ["\"canonical/app\"", "\"\""]);
}
