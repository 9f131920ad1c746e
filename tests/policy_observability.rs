//! What the real `github-runner policy-server` tells an operator: its checks counted by
//! route and result on `/metrics` of the charm's loopback listener (open, no token;
//! absent from the runners' listener), and one `refused-by-policy` line per refused job
//! in the file `--events-log` names, against the GitHub simulator.

mod policy_binary_support;
// Only the set-up helpers are used here.
#[allow(dead_code)]
#[path = "policy_support/sim_repo.rs"]
mod sim_repo;

use policy_binary_support::{call, PolicyProcess, RUNNER};
use serde_json::Value;
use test_support::exposition;

const CHARM_TOKEN: &str = "charm-token-observability-test";
const UNIT: &str = "github-runner/0";

fn args(events: &str) -> Vec<String> {
    let args = [
        "--bind",
        "127.0.0.1:0",
        "--charm-bind",
        "127.0.0.1:0",
        "--events-log",
        events,
        "--unit",
        UNIT,
    ];
    args.iter().map(|s| s.to_string()).collect()
}

/// A series of the exposition `text` by name and exact labels.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let samples = exposition::samples(text).expect("a well-formed exposition");
    exposition::value(&samples, name, labels)
}

fn checks(text: &str, endpoint: &str, result: &str) -> Option<f64> {
    let labels = [("endpoint", endpoint), ("result", result)];
    sample(text, "github_runner_policy_checks_total", &labels)
}

/// A check of `kind` as runner [`RUNNER`]'s pre-job script sends it, with a fresh
/// one-time token. Returns the status and the token used.
fn check(runners: &str, charm: &str, kind: &str, body: &str) -> (u16, String) {
    let mint = format!("{charm}/one-time-token?runner={RUNNER}");
    let (status, token) = call("GET", &mint, Some(CHARM_TOKEN), None);
    assert_eq!(status, 200, "{token}");
    let url = format!("{runners}/{kind}/check-run");
    (call("POST", &url, Some(&token), Some(body)).0, token)
}

#[test]
fn checks_are_counted_on_loopback_and_refusals_logged_as_events() {
    let sim = sim_repo::start();
    sim_repo::compliant(&sim, "canonical/app");
    sim_repo::compliant(&sim, "canonical/leaky");
    sim_repo::outside_collaborators(&sim, "canonical/leaky", &[("mallory", "write")]);
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: the service makes it (systemd would).
    let events = dir.path().join("logs/events.log");
    let env = [
        ("GITHUB_TOKEN", sim_repo::PAT),
        ("CHARM_TOKEN", CHARM_TOKEN),
        ("GITHUB_URL", sim.url.as_str()),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let mut process = PolicyProcess::start(&[], &args(events.to_str().unwrap()), &env);
    let runners = format!("http://{}", process.listening("listening for runners on"));
    let charm = format!("http://{}", process.listening("listening for the charm on"));

    let app = r#"{"repository_name": "canonical/app"}"#;
    let leaky = r#"{"repository_name": "canonical/leaky"}"#;
    let fork_event = r#"{"repository_name": "canonical/app", "event_name": "pull_request_target"}"#;
    let mut tokens = Vec::new();
    for (kind, body, want) in [
        ("push", app, 204),
        ("push", app, 204),
        ("push", leaky, 403),
        ("default", fork_event, 403),
    ] {
        let (status, token) = check(&runners, &charm, kind, body);
        assert_eq!(status, want, "{kind} {body}");
        tokens.push(token);
    }
    // No token: rejected (not a check), neither a refusal nor an error.
    let push = format!("{runners}/push/check-run");
    assert_eq!(call("POST", &push, None, Some(app)).0, 401);

    // The COS agent's scrape: no token, on loopback.
    let scrape = ureq::get(&format!("{charm}/metrics")).call().unwrap();
    assert_eq!(scrape.status(), 200);
    let content_type = scrape.header("content-type").unwrap().to_string();
    assert_eq!(content_type, ghr_metrics::CONTENT_TYPE);
    let text = scrape.into_string().unwrap();
    let route = "/push/check-run";
    assert_eq!(checks(&text, route, "allowed"), Some(2.0), "{text}");
    assert_eq!(checks(&text, route, "refused"), Some(1.0), "{text}");
    assert_eq!(checks(&text, route, "rejected"), Some(1.0), "{text}");
    assert_eq!(checks(&text, "/default/check-run", "refused"), Some(1.0));
    assert_eq!(checks(&text, "/default/check-run", "allowed"), Some(0.0));
    let duration = "github_runner_policy_check_duration_seconds";
    let at = [("endpoint", route)];
    let count = format!("{duration}_count");
    assert_eq!(sample(&text, &count, &at), Some(4.0), "{text}");
    let all = [("le", "+Inf"), ("endpoint", route)];
    let bucket = format!("{duration}_bucket");
    assert_eq!(sample(&text, &bucket, &all), Some(4.0), "{text}");
    let sum = format!("{duration}_sum");
    assert!(sample(&text, &sum, &at) > Some(0.0));
    assert!(
        !text.contains("canonical/"),
        "no repository in the metrics: {text}"
    );

    // The runners' listener has no /metrics, whatever the token.
    for token in [None, Some(CHARM_TOKEN)] {
        let (status, body) = call("GET", &format!("{runners}/metrics"), token, None);
        assert_eq!(status, 404, "{body}");
    }

    let log = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one line per refusal: {log}");
    let field = |i: usize, key: &str| lines[i][key].as_str().unwrap_or_default().to_string();
    for (i, repository, endpoint, why) in [
        (0, "canonical/leaky", route, "mallory"),
        (
            1,
            "canonical/app",
            "/default/check-run",
            "pull_request_target",
        ),
    ] {
        assert_eq!(field(i, "event"), "refused-by-policy");
        assert_eq!(field(i, "repository"), repository);
        assert_eq!(field(i, "endpoint"), endpoint);
        assert_eq!(field(i, "unit"), UNIT);
        assert!(field(i, "reason").contains(why), "{log}");
    }
    for secret in tokens
        .iter()
        .map(String::as_str)
        .chain([CHARM_TOKEN, sim_repo::PAT])
    {
        assert!(!log.contains(secret) && !text.contains(secret));
    }
    process.stop();
}

/// An event log names its unit: `--events-log` alone is a usage error.
#[test]
fn events_log_needs_the_unit() {
    let env = [("GITHUB_TOKEN", "g"), ("CHARM_TOKEN", CHARM_TOKEN)]
        .map(|(k, v)| (k.to_string(), v.to_string()));
    let mut args = args("/nonexistent/events.log");
    args.truncate(6);
    let mut process = PolicyProcess::start(&[], &args, &env);
    assert!(process.wait_for("--unit").is_some(), "{:?}", process.seen);
    assert_eq!(process.exit_code(), Some(2));
}
