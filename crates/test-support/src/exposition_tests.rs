use super::*;

/// A histogram as prometheus-client writes one: cumulative buckets, out of bound order
/// after `_sum`/`_count`, the last one `+Inf`.
const PICKUP: &str = "\
# HELP github_runner_job_pickup_seconds From a job queued to a runner assigned.
# TYPE github_runner_job_pickup_seconds histogram
# UNIT github_runner_job_pickup_seconds seconds
github_runner_job_pickup_seconds_sum 19.5
github_runner_job_pickup_seconds_count 10
github_runner_job_pickup_seconds_bucket{le=\"0.5\"} 2
github_runner_job_pickup_seconds_bucket{le=\"1.0\"} 9
github_runner_job_pickup_seconds_bucket{le=\"2.0\"} 9
github_runner_job_pickup_seconds_bucket{le=\"+Inf\"} 10
# TYPE github_runner_github_requests counter
github_runner_github_requests_total{method=\"GET\",route=\"/repos/{}/{}/actions/runners\"} 4
github_runner_github_requests_total{method=\"POST\",route=\"/a,b/\\\"q\\\"\"} 3
# EOF
";

#[test]
fn cumulative_buckets_become_per_bucket_counts() {
    let s = samples(PICKUP).unwrap();
    let b = buckets(&s, "github_runner_job_pickup_seconds").unwrap();
    assert_eq!(b, vec![(0.5, 2), (1.0, 7), (2.0, 0), (f64::INFINITY, 1)]);
    // Every observation is in exactly one bucket.
    let count = total(&s, "github_runner_job_pickup_seconds_count");
    assert_eq!(b.iter().map(|x| x.1).sum::<u64>() as f64, count);
}

#[test]
fn the_bar_chart_has_a_line_per_bucket_scaled_to_the_fullest() {
    let s = samples(PICKUP).unwrap();
    let b = buckets(&s, "github_runner_job_pickup_seconds").unwrap();
    let chart = bar_chart(&b, 7);
    let want = "\
<= 0.5s  ## 2
<= 1s    ####### 7
<= 2s     0
> 2s     # 1
";
    assert_eq!(chart, want);
    // Room to spare: a mark per observation; too little: scaled down, none lost.
    assert_eq!(bar_chart(&b, 14), want);
    let narrow = bar_chart(&b, 3);
    assert!(
        narrow.starts_with("<= 0.5s  # 2\n<= 1s    ### 7\n"),
        "{narrow}"
    );
    assert!(narrow.ends_with("> 2s     # 1\n"), "{narrow}");
}

#[test]
fn a_bucket_series_that_falls_is_an_error() {
    let text = "h_bucket{le=\"1.0\"} 5\nh_bucket{le=\"2.0\"} 3\nh_bucket{le=\"+Inf\"} 5\n";
    let err = buckets(&samples(text).unwrap(), "h").unwrap_err();
    assert!(err.contains("le=2"), "{err}");
    assert!(buckets(&samples(text).unwrap(), "other").is_err());
}

#[test]
fn labels_may_hold_braces_commas_and_escaped_quotes() {
    let s = samples(PICKUP).unwrap();
    let get = value(
        &s,
        "github_runner_github_requests_total",
        &[("method", "GET"), ("route", "/repos/{}/{}/actions/runners")],
    );
    assert_eq!(get, Some(4.0));
    let post = s
        .iter()
        .find(|x| x.label("method") == Some("POST"))
        .unwrap();
    assert_eq!(post.label("route"), Some("/a,b/\"q\""));
    assert_eq!(total(&s, "github_runner_github_requests_total"), 7.0);
    assert_eq!(format!("{}", total(&s, "absent_total")), "0");
    assert_eq!(series_count(PICKUP), 8);
    let names: Vec<String> = type_names(PICKUP).into_iter().collect();
    assert_eq!(
        names,
        [
            "github_runner_github_requests",
            "github_runner_job_pickup_seconds"
        ]
    );
}

#[test]
fn a_line_that_is_not_a_sample_is_an_error() {
    assert!(samples("metric_without_value\n").is_err());
    assert!(samples("m{le=\"1\" 3\n").is_err());
    assert!(samples("m 1 1700000000\n").is_ok());
}

/// The real families, read back: what the demo and the bench rely on.
#[test]
fn the_managers_own_exposition_reads_back() {
    let m = ghr_metrics::ManagerMetrics::new();
    for s in [0.2, 0.7, 0.8, 3.0, 4000.0] {
        m.picked_up(s);
    }
    m.created(5);
    let text = m.exposition();
    let s = samples(&text).unwrap();
    let b = buckets(&s, "github_runner_job_pickup_seconds").unwrap();
    let counts: Vec<u64> = b.iter().map(|x| x.1).collect();
    assert_eq!(counts, [1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(total(&s, "github_runner_runners_created_total"), 5.0);
    assert!(type_names(&text).contains("github_runner_runners_created"));
}
