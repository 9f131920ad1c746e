//! One machine shared by several charm units (issue 14): each unit has a hook context
//! of its own but every unit the same `GITHUB_RUNNER_ROOT` (var/lib, etc/systemd/system,
//! /proc/meminfo), the same LXD daemon and the host's nftables, as when Juju puts
//! several units on one machine. No systemd runs here, so each unit's policy service is
//! started from the unit and environment files the charm wrote for it, which also
//! proves those files usable. A [`Member`] removes on drop whatever its unit left:
//! instances, profiles, storage pool and tmpfs, nftables table, policy service.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{binary, permissive_policy, Process, Sim};
use crate::firewall_support::{poll, run, timed_cleanup, Lxd};
use crate::harness::{Harness, HookRun};

pub const GIB: u64 = 1 << 30;

/// The machine's file root, which every unit on it shares.
pub struct Machine {
    root: tempfile::TempDir,
}

impl Machine {
    /// A machine whose /proc/meminfo says `mem_total_kib`.
    pub fn new(mem_total_kib: u64) -> Machine {
        let machine = Machine {
            root: tempfile::tempdir().unwrap(),
        };
        machine.set_mem_total(mem_total_kib);
        machine
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Rewrites /proc/meminfo, which the charm sizes the machine's runners by.
    pub fn set_mem_total(&self, kib: u64) {
        let proc = self.root().join("proc");
        std::fs::create_dir_all(&proc).unwrap();
        let text = format!("MemTotal:       {kib} kB\nMemFree:        {kib} kB\n");
        std::fs::write(proc.join("meminfo"), text).unwrap();
    }

    /// The machine's unit registry (`units.json`), or null before any unit wrote it.
    pub fn registry(&self) -> Value {
        registry(self.root())
    }

    /// Unit `name` (`app/N`) on this machine, configured as [`Member::configure`] does.
    pub fn unit(&self, lxd: &Lxd, name: &str, sim: &Sim, config: Value) -> Member {
        let mut h = Harness::new();
        h.unit = name.to_string();
        // What its hooks would run to change this machine, recorded instead.
        h.shadow(&["systemctl", "juju-exec", "juju-run"]);
        h.shadow(super::INSTALL_PROGRAMS);
        // Package queries answer as an installed host; the rest is only recorded.
        let installed: String = ["nftables", "cpu-checker", "libvirt-clients", "lxd"]
            .iter()
            .map(|p| format!("{p} installed\n"))
            .collect();
        h.script("dpkg-query", &[], crate::harness::Reply::ok(&installed));
        h.extra_env.insert("LXD_DIR".into(), lxd.dir.clone());
        let root = self.root().display().to_string();
        h.extra_env.insert("GITHUB_RUNNER_ROOT".into(), root);
        let key = name.replace('/', "-");
        let member = Member {
            h,
            lxd: lxd.clone(),
            name: name.to_string(),
            prefix: format!("{key}-"),
            key,
            root: self.root().to_path_buf(),
            policy: None,
        };
        super::leftovers::clear_before(&member.lxd, &member.prefix);
        member.configure(sim, config);
        member
    }
}

fn registry(root: &Path) -> Value {
    let path = root.join("var/lib/github-runner/units.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

/// A unit's policy service, started as its systemd unit would run it.
pub struct PolicyService {
    _process: Process,
    /// The runners' listener (`--bind`), on the bridge.
    pub bind: SocketAddr,
    /// The charm's loopback listener's port (`--charm-bind`).
    pub port: u16,
    /// The environment its EnvironmentFile gave it.
    pub env: BTreeMap<String, String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PolicyService {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many checks it passed.
    pub fn passes(&self) -> usize {
        let log = self.log_text();
        log.lines().filter(|l| l.ends_with(": pass")).count()
    }
}

/// One unit on the machine: the real binary under a harness of its own.
pub struct Member {
    pub h: Harness,
    pub lxd: Lxd,
    /// `app/N`
    pub name: String,
    /// `app-N`: what the unit's files, table, pool and services are named by.
    pub key: String,
    /// What its runners' names start with.
    pub prefix: String,
    root: PathBuf,
    policy: Option<PolicyService>,
}

impl Member {
    /// Container runners of 1 CPU, 1 GiB of memory and disk, from the simulator, with
    /// `overrides` on top.
    pub fn configure(&self, sim: &Sim, overrides: Value) {
        self.h
            .set_config(super::unit_config(&self.lxd, sim, overrides));
    }

    /// Runs an event and insists it succeeded.
    pub fn run(&self, dispatch_path: &str) -> HookRun {
        self.h.run_ok(dispatch_path)
    }

    /// This unit's entry in the machine's registry (null when it has none).
    pub fn entry(&self) -> Value {
        registry(&self.root)["units"][&self.name].clone()
    }

    pub fn slot(&self) -> u64 {
        let entry = self.entry();
        entry["slot"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: {entry}", self.name))
    }

    /// The unit's state directory: `var/lib/github-runner/units/<key>`.
    pub fn state_dir(&self) -> PathBuf {
        self.host_path("/var/lib/github-runner/units")
            .join(&self.key)
    }

    /// A host path as the charm sees it under the machine's root.
    pub fn host_path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// A systemd unit file the charm wrote for this unit, e.g. `github-runner-policy`
    /// gives `github-runner-policy-<key>.service`.
    pub fn unit_file(&self, base: &str, suffix: &str) -> PathBuf {
        let name = format!("{base}-{}.{suffix}", self.key);
        self.host_path("/etc/systemd/system").join(name)
    }

    pub fn table_name(&self) -> String {
        format!("github-runner-{}", self.key)
    }

    /// The unit's nftables table as nft lists it, if the kernel holds it.
    pub fn table(&self) -> Option<String> {
        run(&["nft", "list", "table", "inet", &self.table_name()]).ok()
    }

    pub fn pool_name(&self) -> String {
        format!("{}-pool", self.key)
    }

    /// Starts the policy service from the unit file and the environment file the charm
    /// wrote (ExecStart's arguments, EnvironmentFile's variables and nothing else),
    /// with a state directory and permissive policy document of the test's.
    pub fn start_policy(&mut self) -> &PolicyService {
        let unit_path = self.unit_file("github-runner-policy", "service");
        let unit = std::fs::read_to_string(&unit_path)
            .unwrap_or_else(|e| panic!("{}: {e}", unit_path.display()));
        let value = |key: &str| {
            unit.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {unit}"))
                .to_string()
        };
        let exec: Vec<String> = value("ExecStart=")
            .split_whitespace()
            .map(String::from)
            .collect();
        // The service runs the charm's own copy of its binary under the root.
        assert!(self.host_path(&exec[0]).is_file(), "{}", exec[0]);
        let env_text = std::fs::read_to_string(self.host_path(&value("EnvironmentFile=")));
        let env = parse_env(&env_text.expect("the unit's EnvironmentFile"));
        let dir = tempfile::tempdir().unwrap();
        let [doc, state, log] = ["policy.json", "state", "policy.log"].map(|n| dir.path().join(n));
        std::fs::write(&doc, permissive_policy().to_string()).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let child = Command::new(binary())
            .args(rooted_args(&exec[1..], &self.root))
            .env_clear()
            .envs(&env)
            .env("STATE_DIRECTORY", &state)
            .env("POLICY_DOCUMENT", &doc)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let process = Process(child);
        let bind: SocketAddr = flag(&exec, "--bind").parse().unwrap();
        let charm: SocketAddr = flag(&exec, "--charm-bind").parse().unwrap();
        poll(
            Duration::from_secs(10),
            "the policy service listening",
            || std::net::TcpStream::connect(charm).ok(),
        );
        self.policy.insert(PolicyService {
            _process: process,
            bind,
            port: charm.port(),
            env,
            log,
            _dir: dir,
        })
    }

    pub fn policy(&self) -> &PolicyService {
        self.policy
            .as_ref()
            .expect("the policy service was started")
    }

    /// Ends the policy service by its PID, as `systemctl disable --now` would.
    pub fn stop_policy(&mut self) {
        self.policy = None;
    }

    /// This unit's instance names, sorted.
    pub fn instances(&self) -> Vec<String> {
        let mut names = self.lxd_names(&["list", "--format", "json"]);
        names.sort();
        names
    }

    /// The LXD profiles the charm made for this unit's runners.
    pub fn profiles(&self) -> Vec<String> {
        self.lxd_names(&["profile", "list", "--format", "json"])
    }

    fn lxd_names(&self, args: &[&str]) -> Vec<String> {
        super::lxd_names(&self.lxd, args, &self.prefix)
    }

    /// The MAC address LXD gave an instance's eth0.
    pub fn hwaddr(&self, instance: &str) -> String {
        super::hwaddr(&self.lxd, instance)
    }

    /// Runs a command inside one of this unit's instances.
    pub fn exec<'a>(&'a self, instance: &'a str) -> impl Fn(&[&str]) -> Output + 'a {
        super::exec_in(&self.lxd, instance)
    }

    /// Waits for `idle` idle online runners of this unit, each with its instance.
    pub fn wait_pool(&self, sim: &Sim, idle: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while sim.online_idle(&self.prefix) != idle || self.instances().len() < idle {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {idle} idle online runners of {}\nsim: {:?}\ninstances: {:?}\nstatus: {:?}\nlogs: {:#?}",
                    self.name,
                    sim.runners(&self.prefix),
                    self.instances(),
                    self.h.last_status(),
                    self.h.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the unit's tmpfs is mounted.
    pub fn pool_mounted(&self) -> bool {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let dir = self.state_dir().join("pool").display().to_string();
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(dir.as_str()))
    }
}

/// ExecStart's arguments with the file the service writes by path (`--events-log`)
/// moved under `root`, so a test's service never writes the real host's `/var/log`.
pub fn rooted_args(args: &[String], root: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    for arg in args {
        let rooted = match out.last().map(String::as_str) {
            Some("--events-log") => root.join(arg.trim_start_matches('/')),
            _ => PathBuf::from(arg),
        };
        out.push(rooted.display().to_string());
    }
    out
}

/// The value after `name` in an argument list.
pub fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    let at = args.iter().position(|a| a == name);
    let value = at.and_then(|i| args.get(i + 1));
    value.unwrap_or_else(|| panic!("no {name} in {args:?}"))
}

/// `KEY=VALUE` lines as systemd's EnvironmentFile= reads them (quotes removed).
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

impl Drop for Member {
    fn drop(&mut self) {
        self.h.stop_services();
        self.stop_policy();
        timed_cleanup(&format!("unit {}", self.name), || {
            super::leftovers::clear_after(&self.lxd, &self.prefix);
            if self.pool_mounted() {
                let pool = self.state_dir().join("pool").display().to_string();
                if run(&["umount", &pool]).is_err() {
                    let _ = run(&["umount", "-l", &pool]);
                }
            }
            if self.table().is_some() {
                let _ = run(&["nft", "delete", "table", "inet", &self.table_name()]);
            }
        });
    }
}
