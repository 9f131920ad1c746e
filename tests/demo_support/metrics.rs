//! The demo's last words: what the unit's runner manager serves on its own metrics
//! endpoint (the address it recorded in its state directory), scraped over HTTP as
//! Prometheus would: a short excerpt, the job pickup histogram as a text bar chart, and
//! check-runners' figures of the last hour. It checks the scrape agrees with what the
//! demo saw, so a dead endpoint cannot pass as an empty excerpt.

use std::time::Duration;

use test_support::exposition::{bar_chart, buckets, recorded_endpoint, samples, scrape};
use test_support::exposition::{total, value, Sample};

use crate::lab::Unit;

const PICKUP: &str = "github_runner_job_pickup_seconds";

/// Scrapes the manager of `unit`; returns its address and samples.
fn read(unit: &Unit) -> (String, Vec<Sample>) {
    let record = unit.state().join("metrics-endpoint");
    let addr = recorded_endpoint(&record, Duration::from_secs(10)).unwrap();
    let text = scrape(&addr).unwrap();
    let parsed = samples(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(!parsed.is_empty(), "an empty exposition from {addr}");
    (addr, parsed)
}

/// `name`'s series as `label value` pairs, the zero ones left out.
fn by_label(s: &[Sample], name: &str, label: &str) -> String {
    let parts: Vec<String> = s
        .iter()
        .filter(|x| x.name == name && x.value != 0.0)
        .map(|x| format!("{} {}", x.label(label).unwrap_or("?"), x.value))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The excerpt: the pool, its changes, the jobs, idle time and GitHub requests.
fn excerpt(s: &[Sample]) -> String {
    let runners = |state: &str| value(s, "github_runner_runners", &[("state", state)]);
    let n = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v}"));
    [
        format!(
            "runners by state: idle {}, busy {}, starting {}, offline {}",
            n(runners("idle")),
            n(runners("busy")),
            n(runners("starting")),
            n(runners("offline"))
        ),
        format!(
            "runners created {}; removed by reason: {}",
            total(s, "github_runner_runners_created_total"),
            by_label(s, "github_runner_runners_removed_total", "reason")
        ),
        format!(
            "jobs started {}, completed {}",
            total(s, "github_runner_jobs_started_total"),
            total(s, "github_runner_jobs_completed_total")
        ),
        format!(
            "job pickup: {} samples, {:.1} s in all; idle runner-seconds {:.0}",
            total(s, &format!("{PICKUP}_count")),
            total(s, &format!("{PICKUP}_sum")),
            total(s, "github_runner_idle_runner_seconds_total")
        ),
        format!(
            "GitHub requests {} ({} errors)",
            total(s, "github_runner_github_requests_total"),
            total(s, "github_runner_github_request_errors_total")
        ),
    ]
    .iter()
    .map(|line| format!("   {line}\n"))
    .collect()
}

/// Prints the metrics of the unit on demand, which ran `jobs` jobs, and checks them:
/// every job counted as completed, each one's pickup observed from GitHub's timestamps.
pub fn show(unit: &Unit, jobs: usize) {
    let (addr, s) = read(unit);
    println!("\n== metrics: GET http://{addr}/metrics (the runner manager's endpoint)");
    print!("{}", excerpt(&s));
    println!("   job pickup, queued to runner assigned (GitHub's timestamps):");
    let chart = buckets(&s, PICKUP).unwrap();
    for line in bar_chart(&chart, 30).lines() {
        println!("     {line}");
    }
    unit.run("actions/check-runners");
    let results = unit.h.action_results();
    let key = |k: &str| results.get(k).cloned().unwrap_or_else(|| "-".into());
    println!(
        "   check-runners: pickup p50 {} s, p95 {} s over {} samples in the last hour; \
         idle runner-seconds {}",
        key("pickup-p50-seconds-last-hour"),
        key("pickup-p95-seconds-last-hour"),
        key("pickup-samples-last-hour"),
        key("idle-runner-seconds-last-hour")
    );
    let picked = total(&s, &format!("{PICKUP}_count"));
    assert_eq!(picked, jobs as f64, "pickups observed per the endpoint");
    let charted: u64 = chart.iter().map(|b| b.1).sum();
    assert_eq!(charted as f64, picked, "the chart holds every pickup");
    assert_eq!(
        key("pickup-samples-last-hour"),
        jobs.to_string(),
        "{results:?}"
    );
    let completed = total(&s, "github_runner_jobs_completed_total");
    assert_eq!(
        completed, jobs as f64,
        "jobs completed per the endpoint, against the {jobs} jobs the simulator completed"
    );
}
