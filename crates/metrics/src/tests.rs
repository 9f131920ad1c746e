use ghr_types::telemetry::{Api, Call, CallObserver, Outcome, RateLimit};

use super::*;

/// The value of the sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[test]
fn the_pool_and_its_changes_are_exported_under_the_prefix() {
    let m = ManagerMetrics::new();
    m.set_runners(&[(RunnerState::Idle, 3), (RunnerState::Busy, 2)]);
    m.set_max_runners(8, 5);
    m.created(4);
    m.removed("ended", 2);
    m.spawned(12.0);
    let text = m.exposition();
    assert_eq!(
        sample(&text, "github_runner_runners{state=\"idle\"}"),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "github_runner_runners{state=\"offline\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "github_runner_max_runners{kind=\"effective\"}"),
        Some(5.0)
    );
    assert_eq!(
        sample(&text, "github_runner_runners_created_total"),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            "github_runner_runners_removed_total{reason=\"ended\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "github_runner_runner_spawn_seconds_count"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "github_runner_runner_spawn_seconds_bucket{le=\"15.0\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "github_runner_runner_spawn_seconds_bucket{le=\"10.0\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn calls_count_by_route_and_errors_by_class() {
    let m = ManagerMetrics::new();
    let call = |outcome| Call {
        api: Api::Github,
        method: "GET",
        route: "/repos/{}/{}/actions/runners",
        outcome,
    };
    m.call(&call(Outcome::Status(200)));
    m.call(&call(Outcome::Status(502)));
    m.rate_limit(&RateLimit {
        limit: 5000,
        remaining: 4990,
        reset_epoch_secs: 1_800_000_000,
    });
    let text = m.exposition();
    let route = "method=\"GET\",route=\"/repos/{}/{}/actions/runners\"";
    assert_eq!(
        sample(
            &text,
            &format!("github_runner_github_requests_total{{{route}}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("github_runner_github_request_errors_total{{{route},class=\"server\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "github_runner_github_rate_limit{kind=\"remaining\"}"),
        Some(4990.0)
    );
    assert_eq!(
        sample(
            &text,
            "github_runner_github_rate_limit_reset_timestamp_seconds"
        ),
        Some(1_800_000_000.0)
    );
}

#[test]
fn policy_checks_count_by_endpoint_and_result() {
    let p = PolicyMetrics::new();
    p.check("/push/check-run", PolicyResult::Refused, 0.02);
    let text = p.exposition();
    assert_eq!(
        sample(
            &text,
            "github_runner_policy_checks_total{endpoint=\"/push/check-run\",result=\"refused\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "github_runner_policy_check_duration_seconds_count{endpoint=\"/push/check-run\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn exported_names_include_each_types_sample_suffixes() {
    let names = exported_names(&ManagerMetrics::new().exposition());
    for name in [
        "github_runner_runners",
        "github_runner_runners_created_total",
        "github_runner_job_pickup_seconds_bucket",
        "github_runner_idle_runner_seconds_total",
        "github_runner_scale_set_jobs",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    assert!(names.iter().all(|n| n.starts_with("github_runner_")));
}
