//! A lab for end-to-end runner tests on the real LXD test daemon: the GitHub simulator
//! in a network namespace of its own (runners reach it through the host, as they would
//! reach GitHub), the policy service on the bridge (`policy`), and charm units driven
//! by the hook-tool harness; [`Lab`] starts the usual set at once. Everything is removed
//! by Drop guards, also when a test fails.
#![allow(dead_code, unused_imports)]

pub mod daemon;
pub mod faults;
pub mod forks;
pub mod hosts;
pub mod leaks;
pub mod leftovers;
pub mod machine;
mod policy;
mod sim;
pub mod upgrade;

pub use policy::{permissive_policy, Policy};
pub use sim::{each_once, Sim};

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};

use crate::firewall_support::{free_octet, poll, run, Lxd, Netns};
use crate::harness::{Harness, HookRun};

pub const PAT: &str = "ghp_labTokenForRunnerTests0001";
/// Well formed (64 hex characters): the charm keeps it rather than making its own.
pub const CHARM_TOKEN: &str = "1ab0123456789abcdef0123456789abcdef0123456789abcdefc4a2e0f1d9b87";
/// The testbed's bridge, where the policy service listens for runners.
pub const BRIDGE_IP: &str = "10.216.1.1";

/// One end-to-end test at a time: they share the host's policy port and 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The test LXD daemon, or None (skip) outside CI when it is missing.
pub fn lxd() -> Option<Lxd> {
    match Lxd::from_env() {
        Ok(l) => Some(l),
        Err(reason) => {
            crate::firewall_support::skip(&reason);
            None
        }
    }
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_github-runner")
}

/// A child process ended by PID on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

/// What most end-to-end tests start from: the lab to themselves ([`serial`]), the test
/// LXD daemon, the simulator serving org `acme` and `repos`, and the policy service with
/// every rule off.
pub struct Lab {
    // Fields drop in this order: the policy service, the simulator, the lock last.
    pub policy: Policy,
    pub sim: Sim,
    pub lxd: Lxd,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    /// The lab, or None (skip) outside CI when the LXD daemon is missing.
    pub fn new(repos: &[&str]) -> Option<Lab> {
        let serial = serial();
        let lxd = lxd()?;
        let sim = Sim::start(&["acme"], repos);
        let policy = Policy::start(&sim, permissive_policy());
        Some(Lab {
            policy,
            sim,
            lxd,
            _serial: serial,
        })
    }

    /// Unit `app/0` of this lab, configured with `config` (see [`Unit::configure`]).
    pub fn unit(&self, app: &str, config: Value) -> Unit {
        Unit::new(&self.lxd, app, 0, &self.sim, config)
    }
}

/// Container runners of 1 CPU, 1 GiB of memory and disk, from the simulator, with
/// `overrides` on top.
pub fn unit_config(lxd: &Lxd, sim: &Sim, overrides: Value) -> Value {
    let mut config = json!({
        "token": PAT, "github-url": sim.url, "runner-instance-type": "container",
        "runner-image": lxd.image, "test-mode": "insecure", "vm-cpu": 1,
        "vm-memory": "1GiB", "vm-disk": "1GiB", "reconcile-interval": 5,
    });
    for (k, v) in overrides.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

/// Programs an install runs that would change the machine (packages, the snap, kernel
/// modules and settings, LXD's own program): tests record them with stand-ins; nft and
/// LXD's API stay real.
pub const INSTALL_PROGRAMS: &[&str] = &[
    "apt-get",
    "dpkg",
    "dpkg-query",
    "snap",
    "modprobe",
    "sysctl",
    "lxd",
];

/// Names starting with `prefix` in an `lxc ... --format json` list.
pub fn lxd_names(lxd: &Lxd, args: &[&str], prefix: &str) -> Vec<String> {
    let out = lxd.lxc(args).unwrap_or_default();
    let list: Value = serde_json::from_str(&out).unwrap_or_default();
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str())
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect()
}

/// Runs a command inside `instance` (`lxc exec`).
pub fn exec_in<'a>(lxd: &'a Lxd, instance: &'a str) -> impl Fn(&[&str]) -> Output + 'a {
    move |argv| {
        let mut args = vec!["exec", instance, "--"];
        args.extend_from_slice(argv);
        lxd.lxc_output(&args).expect("lxc exec")
    }
}

/// The MAC address LXD gave an instance's eth0.
pub fn hwaddr(lxd: &Lxd, instance: &str) -> String {
    let out = lxd.lxc(&["query", &format!("/1.0/instances/{instance}")]);
    let instance: Value = serde_json::from_str(&out.unwrap()).unwrap();
    let mac = instance["config"]["volatile.eth0.hwaddr"].as_str();
    mac.unwrap_or_else(|| panic!("no hwaddr: {instance}"))
        .to_string()
}

/// Unit `unit`'s state directory on a machine whose root is `root`.
pub fn unit_state(root: &Path, unit: &str) -> std::path::PathBuf {
    github_runner::host::HostPaths::for_unit(root, unit).state_dir()
}

/// The machine's memory as the charm reads it (`/proc/meminfo` under the root).
pub fn write_meminfo(root: &Path, bytes: u64) {
    std::fs::create_dir_all(root.join("proc")).unwrap();
    let text = format!("MemTotal: {} kB\n", bytes >> 10);
    std::fs::write(root.join("proc/meminfo"), text).unwrap();
}

/// A charm unit: the real binary under the harness, with its own file root.
pub struct Unit {
    pub h: Harness,
    pub lxd: Lxd,
    root: tempfile::TempDir,
    pub prefix: String,
}

impl Unit {
    pub fn new(lxd: &Lxd, app: &str, number: u32, sim: &Sim, config: Value) -> Unit {
        let mut h = Harness::new();
        h.unit = format!("{app}/{number}");
        h.shadow(&["systemctl", "juju-exec", "juju-run"]);
        let root = tempfile::tempdir().unwrap();
        let state = unit_state(root.path(), &h.unit);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("charm-token"), CHARM_TOKEN).unwrap();
        write_meminfo(root.path(), 64 << 30);
        h.extra_env.insert("LXD_DIR".into(), lxd.dir.clone());
        h.extra_env.insert(
            "GITHUB_RUNNER_ROOT".into(),
            root.path().display().to_string(),
        );
        let unit = Unit {
            h,
            lxd: lxd.clone(),
            root,
            prefix: format!("{app}-{number}-"),
        };
        leftovers::clear_before(&unit.lxd, &unit.prefix);
        unit.configure(sim, config);
        unit
    }

    pub fn configure(&self, sim: &Sim, overrides: Value) {
        self.h.set_config(unit_config(&self.lxd, sim, overrides));
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The unit's own state directory under its root.
    pub fn state(&self) -> std::path::PathBuf {
        unit_state(self.root.path(), &self.h.unit)
    }

    /// The unit's policy service as systemd names it (the lab's units have slot 0).
    pub fn policy_unit(&self) -> String {
        github_runner::host::site::UnitSite::new(&self.h.unit, 0, false).policy_unit()
    }

    /// The unit's runner manager as systemd names it.
    pub fn manager_unit(&self) -> String {
        let key = github_runner::host::site::UnitKey::from_unit(&self.h.unit);
        format!("github-runner-manager-{}.service", key.as_str())
    }

    /// Kills the runner manager with SIGKILL (a crash, the OOM killer), waits until it
    /// is gone, then starts it again as systemd's `Restart=always` would.
    pub fn crash_manager(&self) {
        use nix::sys::signal::{kill, Signal};
        let pids = self.h.service_pids();
        assert_eq!(pids.len(), 1, "one manager runs: {pids:?}");
        let pid = nix::unistd::Pid::from_raw(pids[0]);
        kill(pid, Signal::SIGKILL).unwrap();
        while kill(pid, None).is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.h.systemctl(&["start", &self.manager_unit()]);
    }

    /// The unit's nftables table (named after the unit).
    pub fn table(&self) -> String {
        github_runner::host::site::UnitSite::new(&self.h.unit, 0, false).table()
    }

    /// Runs an event and insists it succeeded.
    pub fn run(&self, dispatch_path: &str) -> HookRun {
        self.h.run_ok(dispatch_path)
    }

    /// This unit's instance names.
    pub fn instances(&self) -> Vec<String> {
        let out = self.lxd.lxc(&["list", "--format", "json"]).unwrap();
        let list: Value = serde_json::from_str(&out).unwrap();
        let mut names: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["name"].as_str())
            .filter(|n| n.starts_with(&self.prefix))
            .map(String::from)
            .collect();
        names.sort();
        names
    }

    pub fn wait_pool(&self, sim: &Sim, idle: usize, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        // The simulator answers in well under a millisecond, so it is polled as finely
        // as the LXD floor polls `exec true` (20 ms); `lxc list` (slow) only on a match.
        while sim.online_idle(&self.prefix) != idle || self.instances().len() < idle {
            if std::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {idle} idle online runners of {}\nsim: {:?}\ninstances: {:?}\nstatus: {:?}\nlogs: {:#?}",
                    self.prefix,
                    sim.runners(&self.prefix),
                    self.instances(),
                    self.h.last_status(),
                    self.h.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Unit {
    /// The LXD profiles the charm made for this unit's runners.
    pub fn profiles(&self) -> Vec<String> {
        let out = self
            .lxd
            .lxc(&["profile", "list", "--format", "json"])
            .unwrap_or_default();
        let list: Value = serde_json::from_str(&out).unwrap_or_default();
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .filter(|n| n.starts_with(&self.prefix))
            .map(String::from)
            .collect()
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        // The runner manager first: it would make runners while they are removed.
        self.h.stop_services();
        leftovers::clear_after(&self.lxd, &self.prefix);
        let pool = self.state().join("pool");
        let _ = run(&["umount", &pool.display().to_string()]);
        // config-changed put the charm's firewall on the shared test bridge.
        let nft = github_runner::firewall::Nft::new(&github_runner::host::SystemCommands);
        if let Ok(table) = github_runner::firewall::TableName::new(&self.table()) {
            let _ = nft.remove(&table);
        }
    }
}
