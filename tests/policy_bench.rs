//! The service's own time per check with the real GitHub client against the simulator
//! on loopback. For BENCHMARKS.md run it in a release build:
//! `cargo test --release --test policy_bench -- --nocapture`.

use std::time::Duration;

#[test]
fn check_latency_with_the_simulator() {
    // 250 outside collaborators and 250 comments: three pages each.
    let scenarios = test_support::policy_bench_sim::measure_with_simulator(100, 250, 250).unwrap();
    for s in &scenarios {
        println!("policy check latency (simulator, {}): {}", s.name, s.report);
        assert!(s.report.github_calls >= 1, "{}", s.report);
        if !cfg!(debug_assertions) {
            assert!(s.report.own_p50 < Duration::from_millis(50), "{}", s.report);
        }
    }
}
