//! The metrics endpoint's cost: a `ManagerMetrics` holding 500 runners' worth of
//! activity, served by the manager's own exporter (src/manager/exporter.rs) on
//! 127.0.0.1:0 and scraped over HTTP as Prometheus would; the exposition alone; and the
//! policy service's families. A steady reconcile's requests with and without scrapes
//! are measured in [`super::metrics_requests`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ghr_metrics::{ManagerMetrics, PolicyMetrics, PolicyResult, RunnerState, ScaleSetFigures};
use ghr_types::telemetry::{Api, Call, CallObserver, Outcome, RateLimit};
use github_runner::manager::exporter;
use test_support::exposition::{samples, series_count, total};

use super::pool_watch::percentile;

/// The runners the filled metrics stand for.
const RUNNERS: u64 = 500;

/// GitHub route templates as the client reports them (org and repo forms, the policy
/// checks' reads, the Actions service's scale-set routes): 30.
const GITHUB_ROUTES: [(&str, &str); 30] = [
    ("GET", "/repos/{}/{}/actions/runners"),
    ("GET", "/orgs/{}/actions/runners"),
    ("DELETE", "/repos/{}/{}/actions/runners/{}"),
    ("DELETE", "/orgs/{}/actions/runners/{}"),
    ("POST", "/repos/{}/{}/actions/runners/registration-token"),
    ("POST", "/orgs/{}/actions/runners/registration-token"),
    ("POST", "/repos/{}/{}/actions/runners/remove-token"),
    ("POST", "/orgs/{}/actions/runners/remove-token"),
    ("GET", "/repos/{}/{}/actions/runners/downloads"),
    ("GET", "/orgs/{}/actions/runners/downloads"),
    ("POST", "/repos/{}/{}/actions/runners/generate-jitconfig"),
    ("POST", "/orgs/{}/actions/runners/generate-jitconfig"),
    ("GET", "/orgs/{}/actions/runner-groups"),
    ("POST", "/actions/runner-registration"),
    ("GET", "/repos/{}/{}/branches/{}/protection"),
    ("GET", "/repos/{}/{}/collaborators/{}/permission"),
    ("GET", "/repos/{}/{}/collaborators"),
    ("GET", "/repos/{}/{}/pulls/{}"),
    ("GET", "/repos/{}/{}/issues/{}/comments"),
    ("GET", "/rate_limit"),
    ("GET", "/_apis/runtime/runnerscalesets"),
    ("POST", "/_apis/runtime/runnerscalesets"),
    ("PATCH", "/_apis/runtime/runnerscalesets/{}"),
    ("DELETE", "/_apis/runtime/runnerscalesets/{}"),
    ("GET", "/_apis/runtime/runnergroups"),
    (
        "POST",
        "/_apis/runtime/runnerscalesets/{}/generatejitconfig",
    ),
    ("POST", "/_apis/runtime/runnerscalesets/{}/sessions"),
    ("DELETE", "/_apis/runtime/runnerscalesets/{}/sessions/{}"),
    ("POST", "/_apis/runtime/runnerscalesets/{}/acquirejobs"),
    ("GET", "message-queue"),
];

/// LXD route templates as the client reports them: 10.
const LXD_ROUTES: [(&str, &str); 10] = [
    ("GET", "/1.0/instances"),
    ("POST", "/1.0/instances"),
    ("GET", "/1.0/instances/{}"),
    ("DELETE", "/1.0/instances/{}"),
    ("PUT", "/1.0/instances/{}/state"),
    ("POST", "/1.0/instances/{}/exec"),
    ("POST", "/1.0/instances/{}/files"),
    ("GET", "/1.0/operations/{}/wait"),
    ("GET", "/1.0/profiles/{}"),
    ("GET", "/1.0/instances/{}/logs/{}"),
];

const REASONS: [&str; 7] = ghr_metrics::REMOVAL_REASONS;

/// Every family of the manager with series, as 500 runners' activity leaves them:
/// every label value each family can take, errors of every class on every route.
pub fn filled_manager() -> ManagerMetrics {
    let m = ManagerMetrics::new();
    m.set_runners(&[
        (RunnerState::Idle, 200),
        (RunnerState::Busy, 250),
        (RunnerState::Starting, 30),
        (RunnerState::Offline, 20),
    ]);
    m.set_max_runners(RUNNERS, RUNNERS - 20);
    for i in 0..RUNNERS {
        let x = i as f64;
        m.created(1);
        m.removed(REASONS[i as usize % REASONS.len()], 1);
        m.creation_failed(["instance", "registration"][i as usize % 2], 1);
        m.spawned(3.0 + x % 200.0);
        m.picked_up(0.2 + x % 2000.0);
        m.job_ran(5.0 + x * 40.0);
        m.reconciled(i % 10 != 0, 0.03 + x % 60.0);
        m.job_started();
        m.job_completed();
        m.idle_for(x % 90.0);
        m.message_received();
    }
    m.set_scale_set(&ScaleSetFigures {
        available_jobs: 12,
        acquired_jobs: 10,
        assigned_jobs: 9,
        running_jobs: 250,
        idle_runners: 200,
        busy_runners: 250,
        registered_runners: 500,
    });
    calls(&m);
    m
}

/// Calls over every route: successes and each error class (a status per class, and no
/// answer at all).
fn calls(m: &ManagerMetrics) {
    let outcomes = [
        Outcome::Status(200),
        Outcome::Status(404),
        Outcome::Status(429),
        Outcome::Status(502),
        Outcome::Transport,
    ];
    let routes = GITHUB_ROUTES
        .iter()
        .map(|r| (Api::Github, r))
        .chain(LXD_ROUTES.iter().map(|r| (Api::Lxd, r)));
    for (api, (method, route)) in routes {
        for (i, outcome) in outcomes.iter().enumerate() {
            for _ in 0..=(i * 3) {
                m.call(&Call {
                    api,
                    method,
                    route,
                    outcome: *outcome,
                });
            }
        }
    }
    m.rate_limit(&RateLimit {
        limit: 5000,
        remaining: 4321,
        reset_epoch_secs: 1_900_000_000,
    });
}

/// The policy service's families after checks on each of its endpoints, every result.
pub fn filled_policy() -> PolicyMetrics {
    let p = PolicyMetrics::new();
    let endpoints = policy_service::server::CHECK_ENDPOINTS;
    p.zero(&endpoints);
    let results = [
        PolicyResult::Allowed,
        PolicyResult::Refused,
        PolicyResult::Rejected,
        PolicyResult::Error,
    ];
    for i in 0..RUNNERS as usize {
        let result = results[i % results.len()];
        p.check(
            endpoints[i % endpoints.len()],
            result,
            0.002 * (i % 300) as f64,
        );
    }
    p
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median and p95 (nearest rank) of `n` runs of `f`, in ms, after `n / 10` unmeasured.
fn timed(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    (0..n / 10).for_each(|_| f());
    let runs: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            ms(t.elapsed())
        })
        .collect();
    (percentile(&runs, 50.0), percentile(&runs, 95.0))
}

/// The manager's exposition over HTTP from its real exporter, `n` scrapes per way of
/// connecting; the exposition alone; the policy service's: the "Metrics scrape" section.
pub fn scrape(out: &mut String, n: usize) {
    let m = Arc::new(filled_manager());
    let text = m.exposition();
    let s = samples(&text).unwrap();
    assert_eq!(
        total(&s, "github_runner_runners_created_total"),
        RUNNERS as f64
    );
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("metrics-endpoint");
    let local = exporter::addresses(None, 0);
    let bound = exporter::start(m.clone(), &local, &record);
    let url = format!("http://{}/metrics", bound[0]);
    let get = |agent: &ureq::Agent| {
        let body = agent.get(&url).call().unwrap().into_string().unwrap();
        assert_eq!(body.len(), text.len(), "the endpoint serves the exposition");
    };
    // Prometheus keeps its connection to a target open between scrapes.
    let agent = ureq::Agent::new();
    let kept = timed(n, || get(&agent));
    let fresh = timed(n, || get(&ureq::AgentBuilder::new().build()));
    let alone = timed(n, || assert_eq!(m.exposition().len(), text.len()));
    let p = filled_policy();
    let policy = p.exposition();
    let policy_alone = timed(n, || assert_eq!(p.exposition().len(), policy.len()));
    write_scrape(out, n, &text, &policy, [kept, fresh, alone, policy_alone]);
}

fn write_scrape(out: &mut String, n: usize, text: &str, policy: &str, rows: [(f64, f64); 4]) {
    writeln!(out, "## Metrics scrape\n").unwrap();
    writeln!(
        out,
        "The runner manager's families filled with {RUNNERS} runners' worth of activity \
         ({RUNNERS} created, removals over all {} reasons, {RUNNERS} observations in each \
         histogram, the pool of {RUNNERS} by state, calls over {} GitHub and {} LXD route \
         templates with every error class, the scale set's figures), served by the \
         manager's own exporter (src/manager/exporter.rs) on 127.0.0.1:0 and fetched with \
         `GET /metrics`, {n} times after {} unmeasured; request to last byte read. The \
         exposition: {} bytes, {} series ({} families). The policy service's families after \
         {RUNNERS} checks over its 7 endpoints and 4 results: {} bytes, {} series.\n",
        REASONS.len(),
        GITHUB_ROUTES.len(),
        LXD_ROUTES.len(),
        n / 10,
        text.len(),
        series_count(text),
        test_support::exposition::type_names(text).len(),
        policy.len(),
        series_count(policy),
    )
    .unwrap();
    writeln!(out, "| what | median | p95 |\n|---|---|---|").unwrap();
    let names = [
        "scrape over HTTP, connection kept open (as Prometheus does)",
        "scrape over HTTP, a new connection each",
        "`ManagerMetrics::exposition()` alone",
        "`PolicyMetrics::exposition()` alone",
    ];
    for (name, (p50, p95)) in names.iter().zip(rows) {
        writeln!(out, "| {name} | {p50:.3} ms | {p95:.3} ms |").unwrap();
    }
    let verdict = if rows[0].1 < 5.0 && rows[1].1 < 5.0 {
        "met"
    } else {
        "NOT met"
    };
    writeln!(
        out,
        "\nTarget (the observability issue): a scrape under 5 ms: {verdict} (p95 of both ways).\n"
    )
    .unwrap();
}
