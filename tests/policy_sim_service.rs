//! The service's behaviour table (issue 5) row by row, with the GitHub simulator behind
//! the shared client instead of an in-memory fake: roles and tokens, bodies, every
//! endpoint, health, and GitHub's errors (rate limits, missing repository, 5xx).

mod policy_support;

use std::sync::Arc;

use policy_support::sim_repo::{self, admin, client, PAT};
use policy_support::{json, request, Service, CHARM_TOKEN};
use serde_json::json;

const APP: &str = "canonical/app";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Who presents what.
#[derive(Clone, Copy, Debug)]
enum Auth {
    None,
    Wrong,
    Charm,
    /// A fresh one-time token.
    OneTime,
}

/// method, path, who asks, body (content type, text), status, text the answer holds.
type Row<'a> = (
    &'a str,
    &'a str,
    Auth,
    Option<(&'a str, &'a str)>,
    u16,
    &'a str,
);

fn pr_body(repo: &str) -> String {
    format!(
        r#"{{"repository_name": "{repo}", "source_repository_name": "{repo}",
            "target_branch_name": "main", "source_branch_name": "fix", "commit_sha": "{SHA}", "extra": 1}}"#
    )
}

#[test]
fn behaviour_table_against_the_simulator() {
    let sim = sim_repo::start();
    sim_repo::compliant(&sim, APP);
    sim_repo::compliant(&sim, "canonical/leaky");
    sim_repo::outside_collaborators(&sim, "canonical/leaky", &[("mallory", "write")]);
    let s = Service::over(Arc::new(client(&sim.url, PAT)), None);
    // The event's name matters to the default check alone (the others ignore it).
    let push = |repo: &str| format!(r#"{{"repository_name": "{repo}", "event_name": "release"}}"#);
    let review = format!(r#"{{"repository_name": "{APP}", "event_name": "pull_request_review"}}"#);
    let app_pr = pr_body(APP);
    let leaky_pr = pr_body("canonical/leaky");
    let (app_push, leaky_push) = (push(APP), push("canonical/leaky"));
    let valid_policy = r#"{"pull_request": {"disallow_fork": {"enabled": false}}}"#;
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("GET", "/one-time-token", Auth::None, None, 401, ""),
        ("GET", "/one-time-token", Auth::Wrong, None, 401, ""),
        ("GET", "/one-time-token", Auth::OneTime, None, 403, ""),
        ("POST", "/policy", Auth::Charm, json(valid_policy), 204, ""),
        ("POST", "/policy", Auth::Charm, json(r#"{"push": {"collaborators": {"on": true}}}"#), 400, ""),
        ("POST", "/policy", Auth::Charm, json(r#"{"nonsense": {}}"#), 400, "nonsense"),
        ("POST", "/policy", Auth::OneTime, json(valid_policy), 403, ""),
        ("POST", "/pull_request/check-run", Auth::OneTime, json(&app_pr), 204, ""),
        ("POST", "/check-run", Auth::OneTime, json(&app_pr), 204, ""),
        ("POST", "/pull_request/check-run", Auth::OneTime, json(&leaky_pr), 403, "collaborators: "),
        ("POST", "/check-run", Auth::OneTime, json(&leaky_pr), 403, "mallory (write)"),
        ("POST", "/pull_request/check-run", Auth::Charm, json(&app_pr), 403, ""),
        ("POST", "/pull_request/check-run", Auth::None, json(&app_pr), 401, ""),
        ("POST", "/pull_request/check-run", Auth::OneTime, Some(("text/plain", &app_pr)), 415, ""),
        ("POST", "/pull_request/check-run", Auth::OneTime, json(&app_push), 400, "source_repository_name"),
        ("POST", "/push/check-run", Auth::OneTime, json(r#"{"repository_name": ""}"#), 400, "repository_name"),
        ("POST", "/always-fail/check-run", Auth::OneTime, None, 403, ""),
        ("POST", "/always-fail/check-run", Auth::None, None, 401, ""),
        ("GET", "/health", Auth::None, None, 204, ""),
        ("POST", "/default/check-run", Auth::OneTime, json(&review), 403, "default: the pull_request_review event"),
    ];
    let mut rows = rows;
    let events: Vec<String> = ["workflow_dispatch", "push", "schedule", "default"]
        .iter()
        .map(|e| format!("/{e}/check-run"))
        .collect();
    for path in events.iter().map(String::as_str) {
        rows.push(("POST", path, Auth::OneTime, json(&app_push), 204, ""));
        rows.push((
            "POST",
            path,
            Auth::OneTime,
            json(&leaky_push),
            403,
            "mallory (write)",
        ));
        rows.push(("POST", path, Auth::Wrong, json(&app_push), 401, ""));
    }
    for (method, path, auth, body, status, needle) in rows {
        let token = match auth {
            Auth::None => None,
            Auth::Wrong => Some("0".repeat(64)),
            Auth::Charm => Some(CHARM_TOKEN.to_string()),
            Auth::OneTime => Some(s.one_time_token()),
        };
        // The charm's routes are on its own (loopback) listener.
        let charm_route = matches!(path, "/one-time-token" | "/policy");
        let base = if charm_route { s.charm_url() } else { s.url() };
        let r = request(base, method, path, token.as_deref(), body);
        let row = format!("{method} {path} {auth:?} -> {} {}", r.status, r.body);
        assert_eq!(r.status, status, "{row}");
        assert!(r.body.contains(needle), "{row}");
        if status == 401 {
            assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"), "{row}");
        }
    }
}

#[test]
fn github_errors_through_the_simulator() {
    let sim = sim_repo::start();
    sim_repo::compliant(&sim, APP);
    let s = Service::over(Arc::new(client(&sim.url, PAT)), None);
    let check = |body: &str| {
        request(
            s.url(),
            "POST",
            "/push/check-run",
            Some(&s.one_time_token()),
            json(body),
        )
    };
    let app = format!(r#"{{"repository_name": "{APP}"}}"#);
    // A repository the token cannot see: 403, "not set up correctly".
    let missing = check(r#"{"repository_name": "canonical/missing"}"#);
    assert_eq!(missing.status, 403, "{}", missing.body);
    assert!(
        missing.body.contains("not set up correctly"),
        "{}",
        missing.body
    );
    // A server error that outlasts the retries: 500.
    admin(
        &sim,
        "POST",
        "/_sim/faults",
        json!({"route": "GET /repos/:owner/:repo/collaborators", "count": 10, "status": 502}),
    );
    let broken = check(&app);
    assert_eq!(broken.status, 500, "{}", broken.body);
    assert!(broken.body.contains("502"), "{}", broken.body);
    admin(&sim, "DELETE", "/_sim/faults", json!(null));
    assert_eq!(check(&app).status, 204);
    // The primary rate limit exhausted for an hour: 500 naming the rate limit.
    admin(
        &sim,
        "POST",
        "/_sim/rate-limit",
        json!({"remaining": 0, "reset_in_secs": 3600}),
    );
    let limited = check(&app);
    assert_eq!(limited.status, 500, "{}", limited.body);
    assert_eq!(
        request(s.url(), "GET", "/health", None, None).status,
        204,
        "/rate_limit is free and answers with the budget spent"
    );
    assert!(limited.body.contains("rate limit"), "{}", limited.body);
    let pr = request(
        s.url(),
        "POST",
        "/pull_request/check-run",
        Some(&s.one_time_token()),
        json(&pr_body(APP)),
    );
    assert_eq!(pr.status, 500, "{}", pr.body);
    assert!(pr.body.contains("rate limit"), "{}", pr.body);
    // A secondary limit: the same.
    admin(&sim, "POST", "/_sim/rate-limit", json!({"remaining": 5000}));
    admin(
        &sim,
        "POST",
        "/_sim/faults",
        json!({"route": "*", "count": 1, "status": 429,
        "retry_after": 600, "message": "You have exceeded a secondary rate limit"}),
    );
    let secondary = check(&app);
    assert_eq!(secondary.status, 500, "{}", secondary.body);
    assert!(secondary.body.contains("rate limit"), "{}", secondary.body);
    assert_eq!(check(&app).status, 204, "and passes once the limit is gone");
}

#[test]
fn health_follows_the_simulator() {
    let sim = sim_repo::start();
    let good = Service::over(Arc::new(client(&sim.url, PAT)), None);
    assert_eq!(
        request(good.url(), "GET", "/health", None, None).status,
        204
    );
    let bad = Service::over(Arc::new(client(&sim.url, "ghp_revoked")), None);
    assert_eq!(request(bad.url(), "GET", "/health", None, None).status, 500);
    let counted = sim_repo::counters(&sim);
    assert_eq!(counted["GET /rate_limit"], 2, "{counted}");
}
