//! In-memory [`Commands`] (scripted answers matched by program and argument prefix, and
//! a record of every call), an in-memory LXD for host setup, and the test clock, for
//! unit tests.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use lxd_client::{ConfigMap, LxdError, Network, Profile, StoragePool};

use super::lxd_setup::LxdSetup;
use super::{Cmd, CmdOutput, CommandError, Commands};

struct Rule {
    program: String,
    prefix: Vec<String>,
    /// Answers in order; the last one repeats.
    answers: VecDeque<CmdOutput>,
}

#[derive(Default)]
pub struct FakeCommands {
    rules: RefCell<Vec<Rule>>,
    pub calls: RefCell<Vec<Cmd>>,
}

impl FakeCommands {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers for `program` with args starting with `prefix`, in order; the last repeats.
    /// Earlier rules win. Unscripted calls succeed with empty output.
    pub fn on(&self, program: &str, prefix: &[&str], answers: Vec<CmdOutput>) -> &Self {
        self.rules.borrow_mut().push(Rule {
            program: program.into(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            answers: answers.into(),
        });
        self
    }

    /// `program args...` of every call, for sequence assertions.
    pub fn lines(&self) -> Vec<String> {
        self.calls.borrow().iter().map(|c| c.to_string()).collect()
    }

    pub fn clear(&self) {
        self.calls.borrow_mut().clear();
    }
}

impl Commands for FakeCommands {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, CommandError> {
        self.calls.borrow_mut().push(cmd.clone());
        let mut rules = self.rules.borrow_mut();
        let rule = rules
            .iter_mut()
            .find(|r| r.program == cmd.program && cmd.args.starts_with(&r.prefix));
        Ok(match rule {
            Some(r) if r.answers.len() > 1 => r.answers.pop_front().unwrap(),
            Some(r) => r.answers.front().cloned().unwrap_or_default(),
            None => CmdOutput::ok(""),
        })
    }
}

/// The clock for unit tests: moves only when slept on.
pub use ghr_types::clock::ManualClock as FakeClock;

/// An in-memory LXD for host setup: pools, networks, profiles and server settings as
/// the API shows them, and a record of every write.
#[derive(Default)]
pub struct FakeLxd {
    pub pools: RefCell<BTreeMap<String, StoragePool>>,
    pub networks: RefCell<BTreeMap<String, Network>>,
    pub profiles: RefCell<BTreeMap<String, Profile>>,
    pub config: RefCell<ConfigMap>,
    /// `create pool NAME`, `create network NAME`, `update profile NAME`,
    /// `patch server KEY=VALUE ...`.
    pub writes: RefCell<Vec<String>>,
}

impl FakeLxd {
    /// A daemon as LXD starts: a default profile without devices, nothing else.
    pub fn fresh() -> Self {
        let lxd = FakeLxd::default();
        lxd.profiles.borrow_mut().insert(
            "default".into(),
            Profile {
                name: "default".into(),
                ..Profile::default()
            },
        );
        lxd
    }

    /// A daemon after host setup: the pool, `lxdbr0` at `address`, the default profile
    /// with a root disk and a hardened NIC.
    pub fn initialised(address: &str) -> Self {
        let lxd = FakeLxd::fresh();
        crate::host::lxd_setup::ensure_initialised(&lxd).unwrap();
        crate::host::lxd_setup::ensure_nic_hardening(&lxd).unwrap();
        let mut nets = lxd.networks.borrow_mut();
        let bridge = nets.get_mut("lxdbr0").unwrap();
        bridge
            .config
            .insert("ipv4.address".into(), format!("{address}/24"));
        drop(nets);
        lxd.writes.borrow_mut().clear();
        lxd
    }
}

impl FakeLxd {
    fn record(&self, write: String) {
        self.writes.borrow_mut().push(write);
    }
}

fn not_found(what: &str) -> LxdError {
    LxdError::NotFound {
        message: format!("{what} not found"),
    }
}

impl LxdSetup for FakeLxd {
    fn storage_pool(&self, name: &str) -> Result<Option<StoragePool>, LxdError> {
        Ok(self.pools.borrow().get(name).cloned())
    }
    fn create_storage_pool(&self, pool: &StoragePool) -> Result<(), LxdError> {
        self.record(format!("create pool {}", pool.name));
        let mut pools = self.pools.borrow_mut();
        pools.insert(pool.name.clone(), pool.clone());
        Ok(())
    }
    fn network(&self, name: &str) -> Result<Option<Network>, LxdError> {
        Ok(self.networks.borrow().get(name).cloned())
    }
    fn create_network(&self, network: &Network) -> Result<(), LxdError> {
        self.record(format!("create network {}", network.name));
        let mut made = network.clone();
        // LXD picks a free subnet for `auto`.
        if made.config.get("ipv4.address").map(String::as_str) == Some("auto") {
            made.config
                .insert("ipv4.address".into(), "10.5.6.1/24".into());
        }
        self.networks.borrow_mut().insert(made.name.clone(), made);
        Ok(())
    }
    fn profile(&self, name: &str) -> Result<Profile, LxdError> {
        let profiles = self.profiles.borrow();
        profiles.get(name).cloned().ok_or_else(|| not_found(name))
    }
    fn update_profile(&self, profile: &Profile) -> Result<(), LxdError> {
        self.record(format!("update profile {}", profile.name));
        let mut profiles = self.profiles.borrow_mut();
        match profiles.get_mut(&profile.name) {
            Some(p) => *p = profile.clone(),
            None => return Err(not_found(&profile.name)),
        }
        Ok(())
    }
    fn server_config(&self) -> Result<ConfigMap, LxdError> {
        Ok(self.config.borrow().clone())
    }
    fn patch_server_config(&self, changes: &ConfigMap) -> Result<(), LxdError> {
        let shown: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.record(format!("patch server {}", shown.join(" ")));
        let mut config = self.config.borrow_mut();
        for (k, v) in changes {
            if v.is_empty() {
                config.remove(k);
            } else {
                config.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }
}
