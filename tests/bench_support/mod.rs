//! The measurements of tests/bench.rs that need neither LXD nor the simulator's
//! network namespace: the hook's overhead, the planner's scaling and the policy check's
//! latency; and the median every table reports. [`binaries`] reports the binaries'
//! sizes and the workspace's clean build time; [`demand`] and [`demand_idle`] measure
//! runners on demand, watching the pool with [`pool_watch`]; [`metrics`] the metrics
//! endpoint's scrape and [`metrics_requests`] what it adds to a steady reconcile.

pub mod binaries;
pub mod credentials;
pub mod demand;
pub mod demand_idle;
pub mod metrics;
pub mod metrics_requests;
pub mod pool_watch;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use github_runner::runner::RunnerName;
use reconcile::plan::{plan, Desired, Flush, Observed, ObservedInstance, ObservedRegistration};
use serde_json::json;

use crate::harness;
use crate::REPO;

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Peak RSS in KiB of one run, from GNU time's report.
fn rss_kib(report: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(report).unwrap();
    text.lines().last().unwrap().trim().parse().unwrap()
}

pub fn hook_overhead(out: &mut String, runs: usize) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let report_path = report.path().display().to_string();
    let time = ["/usr/bin/time", "-f", "%M", "-o", report_path.as_str()];
    let (mut truth, mut true_rss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        assert!(std::process::Command::new("/bin/true")
            .status()
            .unwrap()
            .success());
        truth.push(t.elapsed().as_secs_f64() * 1000.0);
        let timed = std::process::Command::new(time[0])
            .args(&time[1..])
            .arg("/bin/true")
            .status();
        assert!(timed.unwrap().success());
        true_rss.push(rss_kib(report.path()) as f64);
    }
    let dispatch = std::env::var("GHR_BENCH_DISPATCH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_BIN_EXE_github-runner")).to_path_buf()
        });
    let mut h = harness::Harness::with_binary(dispatch.clone());
    h.set_config(json!({"path": REPO, "token": "ghp_benchToken"}));
    let root = tempfile::tempdir().unwrap();
    let state = github_runner::host::HostPaths::for_unit(root.path(), &h.unit).state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let summary = r#"{"idle":3,"busy":1,"starting":0,"failed":[],"at":0}"#;
    std::fs::write(state.join("last-reconcile.json"), summary).unwrap();
    h.extra_env.insert(
        "GITHUB_RUNNER_ROOT".into(),
        root.path().display().to_string(),
    );
    let (mut wall, mut rss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        h.clear_calls();
        let t = Instant::now();
        let run = h.run("hooks/update-status");
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(run.success(), "{}", run.stderr());
        let measured = h.run_wrapped("hooks/update-status", &time);
        assert!(measured.success(), "{}", measured.stderr());
        rss.push(rss_kib(report.path()) as f64);
    }
    assert_eq!(h.last_status().unwrap().1, "4 runners: 3 idle, 1 busy");
    writeln!(out, "## Hook overhead (update-status)\n").unwrap();
    writeln!(
        out,
        "The charm's `dispatch` (as packed: the script beside the binary) for"
    )
    .unwrap();
    writeln!(
        out,
        "`hooks/update-status` under the hook-tool harness, {runs} runs; the wall time"
    )
    .unwrap();
    writeln!(
        out,
        "includes the two hook-tool stand-ins it calls (config-get, status-set).\n"
    )
    .unwrap();
    writeln!(
        out,
        "| command | median wall | median peak RSS (GNU time) |\n|---|---|---|"
    )
    .unwrap();
    writeln!(
        out,
        "| /bin/true | {:.2} ms | {:.0} KiB |",
        median(truth),
        median(true_rss)
    )
    .unwrap();
    writeln!(
        out,
        "| dispatch update-status | {:.2} ms | {:.0} KiB |",
        median(wall),
        median(rss)
    )
    .unwrap();
    writeln!(out, "\nTarget: under 10 ms and under 8 MiB.\n").unwrap();
}

pub fn planner(out: &mut String, sizes: &[usize]) {
    writeln!(out, "## Planner scaling\n").unwrap();
    writeln!(
        out,
        "`plan()` over n observed runners (every one healthy, a third busy), best of 5.\n"
    )
    .unwrap();
    writeln!(out, "| runners | plan time |\n|---|---|").unwrap();
    for &n in sizes {
        let name = |i: usize| RunnerName::new(format!("app-0-{i:08x}"));
        let observed = Observed {
            instances: (0..n)
                .map(|i| ObservedInstance {
                    name: name(i),
                    running: true,
                    age_secs: 900,
                })
                .collect(),
            registrations: (0..n)
                .map(|i| ObservedRegistration {
                    id: i as u64,
                    name: name(i),
                    online: true,
                    busy: i % 3 == 0,
                })
                .collect(),
        };
        let desired = Desired {
            runners: n as u32,
            grace_secs: 300,
            max_idle_secs: 72_000,
            flush: Flush::None,
            keep: Default::default(),
        };
        let best = (0..5)
            .map(|_| {
                let t = Instant::now();
                let p = plan(&desired, &observed);
                let took = t.elapsed();
                assert!(p.is_empty());
                took
            })
            .min()
            .unwrap();
        writeln!(out, "| {n} | {:.3} ms |", best.as_secs_f64() * 1000.0).unwrap();
    }
    writeln!(out, "\nTarget: linear, under 5 ms at 10,000.\n").unwrap();
}

pub fn policy_latency(out: &mut String, samples: usize) {
    let scenarios =
        test_support::policy_bench_sim::measure_with_simulator(samples, 250, 250).unwrap();
    writeln!(out, "## Policy check latency\n").unwrap();
    writeln!(
        out,
        "The service's own time per check (round trip minus time inside GitHub calls), the"
    )
    .unwrap();
    writeln!(out, "simulator on loopback with 250 outside collaborators and 250 comments, {samples} checks.\n").unwrap();
    writeln!(
        out,
        "| check | own p50 | own p95 | round trip p50 | GitHub calls |\n|---|---|---|---|---|"
    )
    .unwrap();
    for s in scenarios {
        let r = s.report;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            out,
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
            s.name,
            ms(r.own_p50),
            ms(r.own_p95),
            ms(r.total_p50),
            r.github_calls
        )
        .unwrap();
    }
    writeln!(out, "\nTarget: under 50 ms of its own time.\n").unwrap();
}

/// The machine the figures come from: cores and CPU model.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}
