//! What the fault tests share: faults injected through the simulator's admin API, a
//! unit that gives up on GitHub quickly, the instances its journal says are being made,
//! and the check that no registration or instance leaked.

use std::time::Duration;

use serde_json::{json, Value};

use super::{Lab, Sim, Unit};
use crate::firewall_support::poll;

impl Sim {
    /// Adds a fault (`POST /_sim/faults`: a route or "*", how many requests it hits,
    /// and a status, a latency or a dropped connection).
    pub fn fault(&self, fault: Value) {
        ureq::post(&format!("{}/_sim/faults", self.url))
            .send_json(fault)
            .expect("sim accepts the fault");
    }

    pub fn clear_faults(&self) {
        ureq::delete(&format!("{}/_sim/faults", self.url))
            .call()
            .expect("sim clears faults");
    }

    /// Sets the primary rate limit's figures (`remaining`, `reset_in_secs`).
    pub fn rate_limit(&self, body: Value) {
        ureq::post(&format!("{}/_sim/rate-limit", self.url))
            .send_json(body)
            .expect("sim sets the rate limit");
    }
}

impl Lab {
    /// Unit `app/0` for `repo`, failing fast ([`Unit::fail_fast`]), once config-changed
    /// made its pool of `n` runners (within 120 s).
    pub fn converged(&self, repo: &str, app: &str, n: u32) -> Unit {
        let mut unit = self.unit(app, json!({"path": repo, "virtual-machines": n}));
        unit.fail_fast();
        unit.run("hooks/config-changed");
        unit.wait_pool(&self.sim, n as usize, Duration::from_secs(120));
        unit
    }
}

impl Unit {
    /// Test-only knobs the charm reads (see src/charm/runners.rs): GitHub's timeout 2 s,
    /// the reconcile lock's wait 3 s.
    pub fn fail_fast(&mut self) {
        let env = &mut self.h.extra_env;
        env.insert("GITHUB_RUNNER_TEST_GITHUB_TIMEOUT".into(), "2".into());
        env.insert("GITHUB_RUNNER_TEST_LOCK_WAIT".into(), "3".into());
    }

    /// The instances the unit's journal says are being made, sorted.
    pub fn provisioning(&self) -> Vec<String> {
        let markers = self.state().join("provisioning");
        let mut names: Vec<String> = std::fs::read_dir(markers)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Waits until LXD has an instance the journal says is still being made, and returns
    /// every name the journal marks: what a process stopped now leaves half made.
    pub fn half_made(&self, timeout: Duration) -> Vec<String> {
        poll(timeout, "an instance being made", || {
            let now = self.instances();
            let marked = self.provisioning();
            now.iter().any(|n| marked.contains(n)).then_some(marked)
        })
    }
}

/// Every registration has an instance and every instance a registration.
pub fn assert_no_leaks(unit: &Unit, sim: &Sim) {
    let instances = unit.instances();
    let registered: Vec<String> = sim
        .runners(&unit.prefix)
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    for name in &registered {
        assert!(instances.contains(name), "leaked registration {name}");
    }
    for name in &instances {
        assert!(registered.contains(name), "leaked instance {name}");
    }
}
