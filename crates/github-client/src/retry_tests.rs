//! Retry, backoff and rate-limit decisions, with a clock that only moves when slept on.

use super::*;

use ghr_types::clock::ManualClock as FakeClock;

const T0: i64 = 1_800_000_000;

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> RawResponse {
    RawResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    }
}

/// Plays back `script` one attempt at a time, counting calls.
fn run_script(
    policy: &RetryPolicy,
    clock: &FakeClock,
    script: Vec<Attempt>,
) -> (Result<RawResponse, GithubError>, usize) {
    let mut script = script.into_iter();
    let mut calls = 0;
    let result = run_with_retry(policy, clock, &mut || 0.5, "test", &mut || {
        calls += 1;
        script.next().expect("script ran out")
    });
    (result, calls)
}

#[test]
fn backoff_grows_exponentially_with_bounded_jitter() {
    let p = RetryPolicy::default();
    assert_eq!(backoff(&p, 1, 0.0), Duration::from_millis(250));
    assert_eq!(backoff(&p, 1, 1.0), Duration::from_millis(500));
    assert_eq!(backoff(&p, 3, 1.0), Duration::from_secs(2));
    assert_eq!(backoff(&p, 30, 1.0), p.max_delay, "capped, no overflow");
    assert_eq!(backoff(&p, 30, 0.0), p.max_delay / 2);
}

#[test]
fn retries_5xx_and_connection_errors_then_succeeds() {
    let clock = FakeClock::at(T0 as u64);
    let script = vec![
        Attempt::Transport("connection refused".into()),
        Attempt::Response(response(502, &[], "")),
        Attempt::Response(response(200, &[], "{}")),
    ];
    let (result, calls) = run_script(&RetryPolicy::default(), &clock, script);
    assert_eq!(result.unwrap().status, 200);
    assert_eq!(calls, 3);
    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(375), Duration::from_millis(750)]
    );
}

#[test]
fn gives_up_after_max_attempts() {
    let clock = FakeClock::at(T0 as u64);
    let script = (0..4)
        .map(|_| Attempt::Response(response(503, &[], "")))
        .collect();
    let (result, calls) = run_script(&RetryPolicy::default(), &clock, script);
    assert!(matches!(
        result,
        Err(GithubError::Server {
            status: 503,
            attempts: 4
        })
    ));
    assert_eq!(calls, 4);
    assert_eq!(clock.sleeps().len(), 3);
}

#[test]
fn total_time_bounds_retries_before_the_count_does() {
    let clock = FakeClock::at(T0 as u64);
    let policy = RetryPolicy {
        max_attempts: 100,
        max_total: Duration::from_secs(3),
        ..Default::default()
    };
    let script = (0..100)
        .map(|_| Attempt::Transport("timed out".into()))
        .collect();
    let (result, calls) = run_script(&policy, &clock, script);
    assert!(matches!(result, Err(GithubError::Transport { .. })));
    let total: Duration = clock.sleeps().iter().sum();
    assert!(total <= Duration::from_secs(3), "slept {total:?}");
    assert!(calls < 10);
}

#[test]
fn client_errors_are_accepted_not_retried() {
    let clock = FakeClock::at(T0 as u64);
    for status in [200, 201, 204, 401, 404, 422] {
        let (result, calls) = run_script(
            &RetryPolicy::default(),
            &clock,
            vec![Attempt::Response(response(status, &[], ""))],
        );
        assert_eq!(result.unwrap().status, status);
        assert_eq!(calls, 1);
    }
    assert!(clock.sleeps().is_empty());
}

#[test]
fn short_primary_rate_limit_waits_for_reset() {
    let clock = FakeClock::at(T0 as u64);
    let reset = (T0 + 3).to_string();
    let limited = response(
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ],
        "",
    );
    let script = vec![
        Attempt::Response(limited),
        Attempt::Response(response(200, &[], "")),
    ];
    let (result, calls) = run_script(&RetryPolicy::default(), &clock, script);
    assert_eq!(result.unwrap().status, 200);
    assert_eq!(calls, 2);
    assert_eq!(clock.sleeps(), [Duration::from_secs(4)]);
}

#[test]
fn long_primary_rate_limit_fails_at_once_with_the_reset_time() {
    let clock = FakeClock::at(T0 as u64);
    let reset = (T0 + 1800).to_string();
    let limited = response(
        429,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ],
        "",
    );
    let (result, calls) = run_script(
        &RetryPolicy::default(),
        &clock,
        vec![Attempt::Response(limited)],
    );
    let err = result.unwrap_err();
    assert_eq!(calls, 1);
    assert!(clock.sleeps().is_empty());
    assert_eq!(
        err.to_string(),
        "GitHub rate limit exhausted until 2027-01-15T08:30:00Z"
    );
    assert!(err.is_transient());
}

#[test]
fn secondary_rate_limit_honours_retry_after_within_bound() {
    let clock = FakeClock::at(T0 as u64);
    let limited = response(
        403,
        &[("retry-after", "2")],
        r#"{"message":"You have exceeded a secondary rate limit"}"#,
    );
    let script = vec![
        Attempt::Response(limited),
        Attempt::Response(response(201, &[], "")),
    ];
    let (result, _) = run_script(&RetryPolicy::default(), &clock, script);
    assert_eq!(result.unwrap().status, 201);
    assert_eq!(clock.sleeps(), [Duration::from_secs(2)]);

    let clock = FakeClock::at(T0 as u64);
    let long = response(429, &[("retry-after", "120")], "");
    let (result, _) = run_script(
        &RetryPolicy::default(),
        &clock,
        vec![Attempt::Response(long)],
    );
    assert!(
        matches!(result, Err(GithubError::SecondaryRateLimited { retry_after }) if retry_after.as_secs() == 120)
    );
    assert!(clock.sleeps().is_empty());
}

#[test]
fn secondary_limit_without_retry_after_means_a_minute() {
    let r = response(
        403,
        &[],
        r#"{"message":"You have exceeded a secondary rate limit."}"#,
    );
    assert_eq!(
        rate_limit_hit(&r, Utc::now()),
        Some(RateLimitHit::Secondary {
            retry_after: Duration::from_secs(60)
        })
    );
    let plain = response(
        403,
        &[("x-ratelimit-remaining", "4999")],
        r#"{"message":"Resource not accessible"}"#,
    );
    assert_eq!(rate_limit_hit(&plain, Utc::now()), None);
}

#[test]
fn parses_rate_limit_headers() {
    let r = response(
        200,
        &[
            ("X-RateLimit-Limit", "5000"),
            ("x-ratelimit-remaining", "4990"),
            ("x-ratelimit-used", "10"),
            ("x-ratelimit-reset", "1800000000"),
            ("x-ratelimit-resource", "core"),
        ],
        "",
    );
    let rl = parse_rate_limit(&r).unwrap();
    assert_eq!((rl.limit, rl.remaining, rl.used), (5000, 4990, 10));
    assert_eq!(rl.reset.timestamp(), T0);
    assert!(parse_rate_limit(&response(200, &[], "")).is_none());
}
