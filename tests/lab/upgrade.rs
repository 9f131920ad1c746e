//! The single-unit layout of earlier versions, for the upgrade test (issue 14): a unit
//! driven first with the charm of the last such version, then refreshed in place, and
//! removing on drop whatever either version left (instances, profiles, the pool and
//! both tmpfs mounts, both tables, its policy service). `build`: that charm, built from
//! git once per machine, and the charm directory a refresh swaps the binary in;
//! `service`: policy services run as systemd runs their units, and hosts to reach;
//! `beside`: that layout watched while another application's unit joins the machine.

pub mod beside;
mod build;
mod service;

pub use crate::lab::hosts::Host;
pub use build::{old_charm, CharmDir};
pub use service::{bridge_port, PolicyService};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Sim;
use crate::firewall_support::{expect, run, timed_cleanup, Lxd, Reach};
use crate::harness::{Harness, HookRun, Reply};

/// The last commit with the single-unit layout: every file under /var/lib/github-runner,
/// one policy service on 8080, one table for the whole bridge, LXD's MACs on runners.
pub const OLD_COMMIT: &str = "91bc69149e23368eca00eddf70cf1fcaa61d1aeb";
/// What the old layout names once per machine.
pub const OLD_TABLE: &str = "github-runner";
pub const OLD_POLICY_UNIT: &str = "github-runner-policy.service";
pub const OLD_BOOT_UNIT: &str = "github-runner-firewall.service";
pub const OLD_POLICY_STATE: &str = "github-runner-policy";

/// Unit `github-runner/0` on a machine root, first of the old charm, then of the new.
pub struct UpgradeUnit {
    pub h: Harness,
    pub lxd: Lxd,
    pub charm: CharmDir,
    root: PathBuf,
    pub policy: Option<PolicyService>,
}

pub const UNIT: &str = "github-runner/0";
pub const KEY: &str = "github-runner-0";
pub const PREFIX: &str = "github-runner-0-";

/// How an upgrade-charm went, as [`UpgradeUnit::upgrade`] saw it.
pub struct Upgraded {
    pub status: ExitStatus,
    /// The hook's systemctl calls, in order.
    pub systemctl: Vec<String>,
    /// The one-time token file (`DIGEST EXPIRY RUNNER` lines) as the unit's policy
    /// service found it when it started.
    pub tokens_at_start: String,
}

impl UpgradeUnit {
    /// The unit with the old charm, its hooks run as [`super::machine::Machine::unit`]'s.
    pub fn new(root: &Path, lxd: &Lxd, old_binary: &Path) -> UpgradeUnit {
        let charm = CharmDir::new(old_binary);
        let mut h = Harness::with_binary(charm.binary());
        h.unit = UNIT.to_string();
        h.shadow(&["systemctl", "juju-exec", "juju-run"]);
        h.shadow(super::INSTALL_PROGRAMS);
        let installed: String = ["nftables", "cpu-checker", "libvirt-clients", "lxd"]
            .iter()
            .map(|p| format!("{p} installed\n"))
            .collect();
        h.script("dpkg-query", &[], Reply::ok(&installed));
        h.extra_env.insert("LXD_DIR".into(), lxd.dir.clone());
        h.extra_env
            .insert("GITHUB_RUNNER_ROOT".into(), root.display().to_string());
        super::leftovers::clear_before(lxd, PREFIX);
        UpgradeUnit {
            h,
            lxd: lxd.clone(),
            charm,
            root: root.to_path_buf(),
            policy: None,
        }
    }

    pub fn configure(&self, sim: &Sim, overrides: Value) {
        self.h
            .set_config(super::unit_config(&self.lxd, sim, overrides));
    }

    /// Runs an event and insists it succeeded.
    pub fn run(&self, dispatch_path: &str) -> HookRun {
        self.h.run_ok(dispatch_path)
    }

    /// A host path under the machine's root.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    pub fn unit_file(&self, name: &str) -> PathBuf {
        self.path("/etc/systemd/system").join(name)
    }

    /// Where systemd keeps a DynamicUser service's `StateDirectory=name`.
    pub fn private_state(&self, name: &str) -> PathBuf {
        self.path("/var/lib/private").join(name)
    }

    /// Starts the policy service of unit file `unit` with its state in `state`, making
    /// first what systemd makes when a DynamicUser service starts: its private state
    /// directory (unless there) and the link to it under the `StateDirectory=` name.
    pub fn start_policy(&mut self, unit: &str, state: &str) -> &PolicyService {
        use std::os::unix::fs::{symlink, DirBuilderExt};
        let private = self.private_state(state);
        let mut dir = fs::DirBuilder::new();
        dir.recursive(true).mode(0o700).create(&private).unwrap();
        let link = self.path("/var/lib").join(state);
        if link.symlink_metadata().is_err() {
            symlink(Path::new("private").join(state), link).unwrap();
        }
        let service = PolicyService::start(&self.root, &self.unit_file(unit), &private);
        self.policy.insert(service)
    }

    /// The lines (`DIGEST EXPIRY RUNNER`) of the one-time token file in a policy
    /// service's private state directory `state`.
    pub fn token_lines(&self, state: &str) -> Vec<String> {
        let file = self.private_state(state).join("one-time-tokens");
        let text = fs::read_to_string(file).unwrap_or_default();
        text.lines().map(String::from).collect()
    }

    /// Ends the policy service by its PID, as `systemctl stop` would.
    pub fn stop_policy(&mut self) {
        self.policy = None;
    }

    /// Refreshes to `binary` and runs upgrade-charm, playing systemd's part meanwhile:
    /// `disable --now` of the old policy unit ends its process, and a restart of
    /// `new_unit` starts it again from the unit file the charm wrote, its state in
    /// `new_state`. Returns how the hook ended, the systemctl calls it made and the
    /// one-time token file the unit's service first started with.
    pub fn upgrade(&mut self, binary: &Path, new_unit: &str, new_state: &str) -> Upgraded {
        self.charm.refresh(binary);
        self.h.clear_calls();
        let mut hook = Hook(self.h.spawn("hooks/upgrade-charm"));
        let deadline = Instant::now() + Duration::from_secs(600);
        let (disable_old, restart_new) = (
            format!("disable --now {OLD_POLICY_UNIT}"),
            format!("restart {new_unit}"),
        );
        let mut tokens_at_start = None;
        let mut seen = 0;
        loop {
            let ended = hook.0.try_wait().unwrap();
            let calls: Vec<String> = self
                .h
                .calls_of("systemctl")
                .map(|c| c.args.join(" "))
                .collect();
            for call in &calls[seen..] {
                if *call == disable_old {
                    self.stop_policy();
                } else if *call == restart_new {
                    self.stop_policy();
                    // What the service loads: the reconcile after it changes the file.
                    let file = self.private_state(new_state).join("one-time-tokens");
                    let text = fs::read_to_string(file).unwrap_or_default();
                    tokens_at_start.get_or_insert(text);
                    self.start_policy(new_unit, new_state);
                }
            }
            seen = calls.len();
            if let Some(status) = ended {
                return Upgraded {
                    status,
                    systemctl: calls,
                    tokens_at_start: tokens_at_start.unwrap_or_default(),
                };
            }
            assert!(
                Instant::now() < deadline,
                "upgrade-charm still running: {:#?}",
                self.h.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The unit's instance names, sorted.
    pub fn instances(&self) -> Vec<String> {
        let mut names = self.lxd_names(&["list", "--format", "json"]);
        names.sort();
        names
    }

    fn lxd_names(&self, args: &[&str]) -> Vec<String> {
        super::lxd_names(&self.lxd, args, PREFIX)
    }

    /// The MAC address of an instance's eth0.
    pub fn hwaddr(&self, instance: &str) -> String {
        super::hwaddr(&self.lxd, instance)
    }

    /// Runs a command inside one of the unit's instances.
    pub fn exec<'a>(&'a self, instance: &'a str) -> impl Fn(&[&str]) -> Output + 'a {
        super::exec_in(&self.lxd, instance)
    }

    /// From `runner`, by packets: X (denylisted) refused, Y answering.
    pub fn judged(&self, runner: &str, x: &Host, y: &Host) {
        let exec = self.exec(runner);
        expect(&exec, "X, denylisted", x.addr(), Reach::Refused);
        expect(&exec, "Y, allowed", y.addr(), Reach::Answered("y".into()));
    }

    /// Where LXD keeps the unit's storage pool.
    pub fn pool_source(&self) -> String {
        let out = self
            .lxd
            .lxc(&["query", &format!("/1.0/storage-pools/{PREFIX}pool")]);
        let pool: Value = serde_json::from_str(&out.unwrap()).unwrap();
        pool["config"]["source"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits for `idle` idle online runners of the unit, each with its instance.
    pub fn wait_pool(&self, sim: &Sim, idle: usize, timeout: Duration) {
        let what = format!("{idle} idle online runners of {UNIT}");
        let ready = || sim.online_idle(PREFIX) == idle && self.instances().len() >= idle;
        let deadline = Instant::now() + timeout;
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nsim: {:?}\ninstances: {:?}\nlogs: {:#?}",
                sim.runners(PREFIX),
                self.instances(),
                self.h.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A hook run in the background, killed if the test fails while it runs. std's `kill`
/// sends nothing once the child was reaped, so a recycled PID is never hit.
struct Hook(std::process::Child);

impl Drop for Hook {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The simulator's registration named `name`, if any.
pub fn registration(sim: &Sim, name: &str) -> Option<Value> {
    let mut runners = sim.runners(PREFIX).into_iter();
    runners.find(|r| r["name"] == name)
}

/// A table of the host's nftables as nft lists it, if the kernel holds it.
pub fn table(name: &str) -> Option<String> {
    run(&["nft", "list", "table", "inet", name]).ok()
}

fn mounted(dir: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let dir = dir.display().to_string();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(dir.as_str()))
}

impl Drop for UpgradeUnit {
    fn drop(&mut self) {
        self.h.stop_services();
        self.stop_policy();
        timed_cleanup(&format!("unit {UNIT}"), || {
            super::leftovers::clear_after(&self.lxd, PREFIX);
            let unit_state = format!("/var/lib/github-runner/units/{KEY}/pool");
            for pool in [
                self.path("/var/lib/github-runner/pool"),
                self.path(&unit_state),
            ] {
                let pool_arg = pool.display().to_string();
                if mounted(&pool) && run(&["umount", &pool_arg]).is_err() {
                    let _ = run(&["umount", "-l", &pool_arg]);
                }
            }
            for name in [OLD_TABLE.to_string(), format!("github-runner-{KEY}")] {
                if table(&name).is_some() {
                    let _ = run(&["nft", "delete", "table", "inet", &name]);
                }
            }
        });
    }
}
