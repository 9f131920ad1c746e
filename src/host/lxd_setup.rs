//! LXD's setup on the charm's host, through the typed LXD client (its REST API, as
//! `lxd init` and `lxc` use it themselves): what a fresh daemon lacks for runners (a
//! storage pool and the `lxdbr0` bridge without IPv6, on the default profile), NIC
//! hardening on the default profile, and the daemon's proxy for image downloads. Each
//! step reads LXD's state first and changes only what differs, so a second run changes
//! nothing. Only `lxd waitready` remains a program: the daemon's own readiness wait.

use std::net::Ipv4Addr;

use lxd_client::{ConfigMap, LxdClient, LxdError, Network, Profile, StoragePool};

use super::packages::run_ok;
use super::{Cmd, Commands, HostError};
use ghr_types::proxy::ProxyConfig;

pub const BRIDGE: &str = "lxdbr0";
pub const POOL: &str = "default";
/// The default profile gets the same keys as the runners' own NIC (which is what makes
/// runners safe: they never use `default`); hardening `default` too covers any other
/// instance an operator starts on the bridge.
pub use crate::runner::layout::NIC_HARDENING;

/// LXD as host setup needs it: storage pools, networks, the default profile and the
/// server's settings. [`BlockingLxd`] in production; an in-memory daemon in unit tests.
pub trait LxdSetup {
    /// The pool, or `None` when LXD has none of that name.
    fn storage_pool(&self, name: &str) -> Result<Option<StoragePool>, LxdError>;
    fn create_storage_pool(&self, pool: &StoragePool) -> Result<(), LxdError>;
    /// The network, or `None` when LXD has none of that name.
    fn network(&self, name: &str) -> Result<Option<Network>, LxdError>;
    fn create_network(&self, network: &Network) -> Result<(), LxdError>;
    fn profile(&self, name: &str) -> Result<Profile, LxdError>;
    fn update_profile(&self, profile: &Profile) -> Result<(), LxdError>;
    fn server_config(&self) -> Result<ConfigMap, LxdError>;
    /// Sets the settings named; an empty value unsets one.
    fn patch_server_config(&self, changes: &ConfigMap) -> Result<(), LxdError>;
}

/// The typed LXD client, driven from a (synchronous) hook on a runtime of its own.
pub struct BlockingLxd {
    client: LxdClient,
    runtime: tokio::runtime::Runtime,
}

impl BlockingLxd {
    pub fn new(client: LxdClient) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(BlockingLxd { client, runtime })
    }

    fn block_on<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(call)
    }
}

/// `Ok(None)` for LXD's "not found".
fn found<T>(answer: Result<T, LxdError>) -> Result<Option<T>, LxdError> {
    match answer {
        Err(e) if e.is_not_found() => Ok(None),
        other => other.map(Some),
    }
}

impl LxdSetup for BlockingLxd {
    fn storage_pool(&self, name: &str) -> Result<Option<StoragePool>, LxdError> {
        found(self.block_on(self.client.get_storage_pool(name)))
    }
    fn create_storage_pool(&self, pool: &StoragePool) -> Result<(), LxdError> {
        self.block_on(self.client.create_storage_pool(pool))
    }
    fn network(&self, name: &str) -> Result<Option<Network>, LxdError> {
        found(self.block_on(self.client.get_network(name)))
    }
    fn create_network(&self, network: &Network) -> Result<(), LxdError> {
        self.block_on(self.client.create_network(network))
    }
    fn profile(&self, name: &str) -> Result<Profile, LxdError> {
        self.block_on(self.client.get_profile(name))
    }
    fn update_profile(&self, profile: &Profile) -> Result<(), LxdError> {
        self.block_on(self.client.update_profile(profile))
    }
    fn server_config(&self) -> Result<ConfigMap, LxdError> {
        self.block_on(self.client.server()).map(|s| s.config)
    }
    fn patch_server_config(&self, changes: &ConfigMap) -> Result<(), LxdError> {
        self.block_on(self.client.patch_server_config(changes))
    }
}

fn config(pairs: &[(&str, &str)]) -> ConfigMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The pool a fresh LXD gets: a directory, which every file system can hold.
pub fn default_pool() -> StoragePool {
    StoragePool {
        name: POOL.into(),
        driver: "dir".into(),
        ..StoragePool::default()
    }
}

/// The bridge a fresh LXD gets: IPv4 with NAT to the network, no IPv6 (the firewall
/// drops all IPv6 from runners anyway).
pub fn default_bridge() -> Network {
    Network {
        name: BRIDGE.into(),
        kind: "bridge".into(),
        config: config(&[
            ("ipv4.address", "auto"),
            ("ipv4.nat", "true"),
            ("ipv6.address", "none"),
        ]),
        ..Network::default()
    }
}

/// `profile` with what it lacks for runners: a root disk on [`POOL`] and `eth0` on
/// [`BRIDGE`]; `None` when it has both (whatever pool and bridge they use, so an LXD an
/// operator set up keeps its own).
pub fn complete_profile(profile: &Profile) -> Option<Profile> {
    let mut out = profile.clone();
    if !profile.has_root_disk() {
        let root = config(&[("type", "disk"), ("path", "/"), ("pool", POOL)]);
        out.devices.insert("root".into(), root);
    }
    if profile.nic().is_none() {
        let nic = config(&[("type", "nic"), ("name", "eth0"), ("network", BRIDGE)]);
        out.devices.insert("eth0".into(), nic);
    }
    (out != *profile).then_some(out)
}

/// `lxd waitready`, bounded by LXD's own timeout.
pub fn wait_ready(commands: &dyn Commands) -> Result<(), HostError> {
    run_ok(
        commands,
        &Cmd::new("lxd", &["waitready", "--timeout", "120"]),
    )?;
    Ok(())
}

/// Gives the default profile a root disk and a NIC when it lacks them, making the pool
/// and the bridge they name first when LXD has none of those names. Returns whether
/// anything changed.
pub fn ensure_initialised(lxd: &dyn LxdSetup) -> Result<bool, HostError> {
    let profile = lxd.profile("default")?;
    let Some(completed) = complete_profile(&profile) else {
        return Ok(false);
    };
    if !profile.has_root_disk() && lxd.storage_pool(POOL)?.is_none() {
        lxd.create_storage_pool(&default_pool())?;
    }
    if profile.nic().is_none() && lxd.network(BRIDGE)?.is_none() {
        lxd.create_network(&default_bridge())?;
    }
    lxd.update_profile(&completed)?;
    Ok(true)
}

/// The profile with every hardening key `true` on its NIC, or `None` when they are.
pub fn harden(profile: &Profile) -> Result<Option<Profile>, HostError> {
    let Some((name, nic)) = profile.nic() else {
        return Err(HostError::Lxd(format!(
            "the {} profile has no NIC device",
            profile.name
        )));
    };
    let mut nic = nic.clone();
    let name = name.clone();
    for key in NIC_HARDENING {
        nic.insert(key.into(), "true".into());
    }
    if profile.devices.get(&name) == Some(&nic) {
        return Ok(None);
    }
    let mut out = profile.clone();
    out.devices.insert(name, nic);
    Ok(Some(out))
}

/// Sets the NIC hardening keys on the default profile that are not set yet.
pub fn ensure_nic_hardening(lxd: &dyn LxdSetup) -> Result<bool, HostError> {
    match harden(&lxd.profile("default")?)? {
        Some(hardened) => {
            lxd.update_profile(&hardened)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The `core.proxy_*` settings that differ from `proxy`, each with its new value (empty
/// to unset it).
pub fn proxy_changes(current: &ConfigMap, proxy: &ProxyConfig) -> ConfigMap {
    let desired = [
        ("core.proxy_http", &proxy.http),
        ("core.proxy_https", &proxy.https),
        ("core.proxy_ignore_hosts", &proxy.no_proxy),
    ];
    desired
        .into_iter()
        .filter(|(k, want)| current.get(*k) != want.as_ref())
        .map(|(k, want)| (k.to_string(), want.clone().unwrap_or_default()))
        .collect()
}

/// Points LXD's image downloads at the model's proxy (in the request body: a proxy
/// URL with credentials never shows in a process list).
pub fn ensure_core_proxy(lxd: &dyn LxdSetup, proxy: &ProxyConfig) -> Result<bool, HostError> {
    let changes = proxy_changes(&lxd.server_config()?, proxy);
    if changes.is_empty() {
        return Ok(false);
    }
    lxd.patch_server_config(&changes)?;
    Ok(true)
}

/// The bridge the default profile's NIC is on, and the host's address on it: where the
/// firewall and the policy service go, as the runners (which use the same bridge) see it.
pub fn runner_bridge(lxd: &dyn LxdSetup) -> Result<(String, Ipv4Addr), HostError> {
    let profile = lxd.profile("default")?;
    let name = profile
        .nic_network()
        .ok_or_else(|| HostError::Lxd("the default profile has no bridged NIC".into()))?;
    let address = lxd
        .network(name)?
        .and_then(|n| n.ipv4_address())
        .ok_or_else(|| HostError::Lxd(format!("{name} has no IPv4 address")))?;
    Ok((name.to_string(), address))
}

#[cfg(test)]
#[path = "lxd_setup_tests.rs"]
mod tests;
