//! Whether the metrics cost the pool anything: a settled static pool's steady
//! reconciles, counted at the GitHub simulator and in LXD's own log, with scrapes of
//! the manager's endpoint between them and without; and the manager's own
//! `github_runner_github_requests_total` and `github_runner_lxd_requests_total` over
//! one steady reconcile against those outside counts.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;
use test_support::exposition::{recorded_endpoint, samples, scrape, total};

use super::pool_watch::lxd_requests;
use crate::firewall_support::{poll, Lxd};
use crate::lab::{Sim, Unit};
use crate::{github_requests, reset_counters, REPO};

const POOL: usize = 2;
const SETTLE: Duration = Duration::from_secs(180);

/// What `k` steady reconciles cost: GitHub requests (the bench's usual count: API
/// routes, `/rate_limit` aside) and LXD requests (any method).
#[derive(Clone, Copy, PartialEq)]
struct Cost {
    github: u64,
    lxd: usize,
}

fn steady(lxd: &Lxd, sim: &Sim, unit: &Unit, k: usize, scrape_between: &dyn Fn()) -> Cost {
    reset_counters(sim);
    let lxd = lxd_requests(lxd, &|| {
        for _ in 0..k {
            scrape_between();
            unit.run("reconcile-runners");
        }
        scrape_between();
    });
    Cost {
        github: github_requests(sim),
        lxd: lxd.len(),
    }
}

/// The manager's own request counters, summed over routes: (GitHub, LXD).
fn own_counts(addr: &str) -> (f64, f64) {
    let s = samples(&scrape(addr).unwrap()).unwrap();
    (
        total(&s, "github_runner_github_requests_total"),
        total(&s, "github_runner_lxd_requests_total"),
    )
}

/// A pool of 2 at rest: both runners online and idle, no other instance, and one
/// reconcile done since (whatever the creating one left to do).
fn settled(lxd: &Lxd, sim: &Sim) -> Unit {
    let unit = Unit::new(
        lxd,
        "ghr-mreq",
        0,
        sim,
        json!({"path": REPO, "virtual-machines": POOL}),
    );
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, POOL, SETTLE);
    poll(SETTLE, "the pool at rest", || {
        (unit.instances().len() == POOL).then_some(())
    });
    unit.run("reconcile-runners");
    unit
}

/// The "Metrics add no requests to a steady reconcile" section, `k` reconciles a round.
pub fn requests(out: &mut String, lxd: &Lxd, sim: &Sim, k: usize) {
    let unit = settled(lxd, sim);
    let record = unit.state().join("metrics-endpoint");
    let addr = recorded_endpoint(&record, Duration::from_secs(10)).unwrap();
    let scrapes = std::cell::Cell::new(0);
    let scraping = || {
        own_counts(&addr);
        scrapes.set(scrapes.get() + 1);
    };
    // Twice each way, interleaved: a difference must show in both pairs.
    let rounds = [
        ("without scrapes", steady(lxd, sim, &unit, k, &|| {})),
        (
            "a scrape before each and after the last",
            steady(lxd, sim, &unit, k, &scraping),
        ),
        ("without scrapes, again", steady(lxd, sim, &unit, k, &|| {})),
        ("with scrapes, again", steady(lxd, sim, &unit, k, &scraping)),
    ];
    let before = own_counts(&addr);
    reset_counters(sim);
    let one = lxd_requests(lxd, &|| {
        unit.run("reconcile-runners");
    });
    let sim_one = github_requests(sim);
    let after = own_counts(&addr);
    let own = (after.0 - before.0, after.1 - before.1);
    write(out, k, scrapes.get(), &rounds, (sim_one, one.len()), own);
}

fn write(
    out: &mut String,
    k: usize,
    scrapes: usize,
    rounds: &[(&str, Cost)],
    outside: (u64, usize),
    own: (f64, f64),
) {
    writeln!(out, "## Metrics add no requests to a steady reconcile\n").unwrap();
    writeln!(
        out,
        "A static pool of {POOL} at rest on the test daemon; rounds of {k} `reconcile-runners` \
         (the timer's event), each round without scrapes or with a `GET /metrics` of the \
         manager's endpoint before each reconcile and after the last ({scrapes} scrapes in \
         all). GitHub: requests at the simulator to API routes, `GET /rate_limit` aside (the \
         policy service's health check, as under \"GitHub requests\"); LXD: every API \
         request in the daemon's debug log (`lxc monitor`), any method.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| round of {k} reconciles | GitHub requests | LXD requests |\n|---|---|---|"
    )
    .unwrap();
    for (what, cost) in rounds {
        writeln!(out, "| {what} | {} | {} |", cost.github, cost.lxd).unwrap();
    }
    let same = rounds.windows(2).all(|w| w[0].1 == w[1].1);
    writeln!(
        out,
        "\nEvery round the same: {}.\n",
        if same { "yes" } else { "NO" }
    )
    .unwrap();
    let agree = |a: f64, b: f64| if a == b { "agree" } else { "DISAGREE" };
    writeln!(
        out,
        "One more steady reconcile: the manager's own `github_runner_github_requests_total` \
         rose by {} and the simulator counted {} ({}); `github_runner_lxd_requests_total` \
         rose by {} and LXD's log shows {} ({}).\n",
        own.0,
        outside.0,
        agree(own.0, outside.0 as f64),
        own.1,
        outside.1,
        agree(own.1, outside.1 as f64),
    )
    .unwrap();
}

/// `GHR_BENCH_ONLY=metrics`: both metrics sections, printed, and written to
/// `GHR_BENCH_OUT` when set (never BENCHMARKS.md).
pub fn only(out: &mut String, lxd: &Lxd, quick: bool) {
    super::metrics::scrape(out, if quick { 20 } else { 200 });
    let sim = Sim::start(&["acme"], &[REPO]);
    let _policy = crate::lab::Policy::start(&sim, crate::lab::permissive_policy());
    requests(out, lxd, &sim, if quick { 2 } else { 5 });
    if let Ok(path) = std::env::var("GHR_BENCH_OUT") {
        std::fs::write(path, &*out).unwrap();
    }
    println!("{out}");
}
