//! The runner manager's metrics endpoint as a scraper sees it, on the real LXD test
//! daemon: a lab unit's manager, started by the charm's own hooks, serves over HTTP an
//! exposition that declares exactly the families `ManagerMetrics` registers (so the
//! dashboard and alert rules, checked against the registry, are checked against what
//! the endpoint really offers), and its figures follow the unit's real reconciles.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use ghr_metrics::ManagerMetrics;
use lab::Lab;
use serde_json::json;
use test_support::exposition::{samples, scrape, total, type_names, value};

const REPO: &str = "acme/widgets";
const RUNNERS: usize = 2;
const SETTLE: Duration = Duration::from_secs(180);

/// Every address the manager recorded (loopback first, then the unit's own if any).
fn endpoints(unit: &lab::Unit) -> Vec<String> {
    let record = unit.state().join("metrics-endpoint");
    let first = test_support::exposition::recorded_endpoint(&record, Duration::from_secs(10));
    first.unwrap();
    let text = std::fs::read_to_string(&record).unwrap();
    text.lines().map(|l| l.trim().to_string()).collect()
}

#[test]
fn the_managers_endpoint_serves_the_registrys_families_and_the_reconciles_figures() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.unit(
        "ghr-metrics",
        json!({"path": REPO, "virtual-machines": RUNNERS}),
    );
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, RUNNERS, SETTLE);
    // The timer's reconcile, now that the runners are online: the pool gauge's turn.
    unit.run("reconcile-runners");

    let registry = type_names(&ManagerMetrics::new().exposition());
    assert!(registry.len() > 10, "{registry:?}");
    let addrs = endpoints(&unit);
    assert!(addrs[0].starts_with("127.0.0.1:"), "{addrs:?}");
    for addr in &addrs {
        let text = scrape(addr).unwrap();
        assert_eq!(type_names(&text), registry, "{addr}:\n{text}");
        let s = samples(&text).unwrap();
        let created = total(&s, "github_runner_runners_created_total");
        assert!(
            created >= RUNNERS as f64,
            "{addr}: {created} created\n{text}"
        );
        let configured = value(&s, "github_runner_max_runners", &[("kind", "configured")]);
        assert_eq!(configured, Some(RUNNERS as f64), "{addr}:\n{text}");
        let idle = value(&s, "github_runner_runners", &[("state", "idle")]);
        assert_eq!(idle, Some(RUNNERS as f64), "{addr}:\n{text}");
        let reconciles = value(&s, "github_runner_reconciles_total", &[("outcome", "ok")]);
        assert!(reconciles >= Some(2.0), "{addr}: {reconciles:?}\n{text}");
    }
}
