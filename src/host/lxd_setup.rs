//! LXD's one-time setup through the `lxd` and `lxc` command-line tools: wait for the
//! daemon, `lxd init --preseed` with only what is missing (a storage pool and the
//! `lxdbr0` bridge without IPv6), NIC hardening on the default profile, and the daemon's
//! proxy for image downloads. Each step reads LXD's state first and changes only what
//! differs, so a second run changes nothing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_yaml::Value;

use super::packages::run_ok;
use super::{Cmd, Commands, HostError};
use ghr_types::proxy::ProxyConfig;

pub const BRIDGE: &str = "lxdbr0";
pub const POOL: &str = "default";
/// The default profile gets the same keys as the runners' own NIC (which is what makes
/// runners safe: they never use `default`); hardening `default` too covers any other
/// instance an operator starts on the bridge.
pub use crate::runner::layout::NIC_HARDENING;

/// The first column of `lxc ... list --format csv`.
pub fn csv_names(csv: &str) -> Vec<String> {
    csv.lines()
        .filter_map(|l| l.split(',').next())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The preseed for what is missing, or `None` when LXD already has both. The default
/// profile gets a root disk on the pool and `eth0` on the bridge (`lxd init` merges
/// these into an existing profile).
pub fn render_preseed(need_pool: bool, need_bridge: bool) -> Option<String> {
    if !need_pool && !need_bridge {
        return None;
    }
    let mut out = String::new();
    if need_pool {
        out.push_str(&format!("storage_pools:\n- name: {POOL}\n  driver: dir\n"));
    }
    if need_bridge {
        out.push_str(&format!(
            "networks:\n- name: {BRIDGE}\n  type: bridge\n  config:\n    ipv4.address: auto\n    ipv4.nat: \"true\"\n    ipv6.address: none\n"
        ));
    }
    out.push_str(&format!(
        "profiles:\n- name: default\n  devices:\n    root:\n      type: disk\n      path: /\n      pool: {POOL}\n    eth0:\n      type: nic\n      name: eth0\n      network: {BRIDGE}\n"
    ));
    Some(out)
}

/// `lxd waitready`, bounded by LXD's own timeout.
pub fn wait_ready(commands: &dyn Commands) -> Result<(), HostError> {
    run_ok(
        commands,
        &Cmd::new("lxd", &["waitready", "--timeout", "120"]),
    )?;
    Ok(())
}

/// Runs `lxd init --preseed` for whatever of the pool and bridge is missing.
pub fn ensure_initialised(commands: &dyn Commands) -> Result<bool, HostError> {
    let pools = run_ok(
        commands,
        &Cmd::new("lxc", &["storage", "list", "--format", "csv"]),
    )?;
    let nets = run_ok(
        commands,
        &Cmd::new("lxc", &["network", "list", "--format", "csv"]),
    )?;
    let need_pool = !csv_names(&pools.stdout).iter().any(|n| n == POOL);
    let need_bridge = !csv_names(&nets.stdout).iter().any(|n| n == BRIDGE);
    match render_preseed(need_pool, need_bridge) {
        None => Ok(false),
        Some(preseed) => {
            run_ok(
                commands,
                &Cmd::new("lxd", &["init", "--preseed"]).stdin(preseed),
            )?;
            Ok(true)
        }
    }
}

/// The default profile's NIC device name and the hardening keys not yet `true` on it.
pub fn missing_hardening(profile_yaml: &str) -> Result<(String, Vec<&'static str>), HostError> {
    let profile: Value = serde_yaml::from_str(profile_yaml)
        .map_err(|e| HostError::Lxd(format!("default profile is not YAML: {e}")))?;
    let devices = profile.get("devices").and_then(Value::as_mapping);
    let nic = devices.and_then(|d| {
        d.iter()
            .find(|(_, dev)| dev.get("type").and_then(Value::as_str) == Some("nic"))
    });
    let Some((name, device)) = nic else {
        return Err(HostError::Lxd(
            "the default profile has no NIC device".into(),
        ));
    };
    let name = name.as_str().unwrap_or("eth0").to_string();
    let missing = NIC_HARDENING
        .into_iter()
        .filter(|k| device.get(*k).and_then(Value::as_str) != Some("true"))
        .collect();
    Ok((name, missing))
}

/// Sets the NIC hardening keys on the default profile that are not set yet.
pub fn ensure_nic_hardening(commands: &dyn Commands) -> Result<bool, HostError> {
    let shown = run_ok(commands, &Cmd::new("lxc", &["profile", "show", "default"]))?;
    let (nic, missing) = missing_hardening(&shown.stdout)?;
    if missing.is_empty() {
        return Ok(false);
    }
    let mut cmd = Cmd::new("lxc", &["profile", "device", "set", "default", &nic]);
    for key in missing {
        cmd = cmd.arg(format!("{key}=true"));
    }
    run_ok(commands, &cmd)?;
    Ok(true)
}

/// `(key, new value)` for each `core.proxy_*` setting that differs from `proxy`;
/// `None` means unset.
pub fn proxy_changes(
    server_config_yaml: &str,
    proxy: &ProxyConfig,
) -> Result<Vec<(&'static str, Option<String>)>, HostError> {
    let shown: Value = serde_yaml::from_str(server_config_yaml)
        .map_err(|e| HostError::Lxd(format!("server config is not YAML: {e}")))?;
    let current: BTreeMap<String, String> = shown
        .get("config")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let desired = [
        ("core.proxy_http", proxy.http.clone()),
        ("core.proxy_https", proxy.https.clone()),
        ("core.proxy_ignore_hosts", proxy.no_proxy.clone()),
    ];
    Ok(desired
        .into_iter()
        .filter(|(k, want)| current.get(*k) != want.as_ref())
        .collect())
}

/// Points LXD's image downloads at the model's proxy. The proxy URL goes in argv (the
/// only way `lxc config set` takes it): a proxy with credentials in its URL is visible
/// in the process list while the command runs.
pub fn ensure_core_proxy(commands: &dyn Commands, proxy: &ProxyConfig) -> Result<bool, HostError> {
    let shown = run_ok(commands, &Cmd::new("lxc", &["config", "show"]))?;
    let changes = proxy_changes(&shown.stdout, proxy)?;
    for (key, value) in &changes {
        let cmd = match value {
            Some(v) => Cmd::new("lxc", &["config", "set", key, v]),
            None => Cmd::new("lxc", &["config", "unset", key]),
        };
        run_ok(commands, &cmd)?;
    }
    Ok(!changes.is_empty())
}

/// The host's address on the runner bridge (the policy service binds to it).
pub fn bridge_address(commands: &dyn Commands) -> Result<Ipv4Addr, HostError> {
    let out = run_ok(
        commands,
        &Cmd::new("lxc", &["network", "get", BRIDGE, "ipv4.address"]),
    )?;
    let raw = out.stdout.trim();
    let addr = raw.split('/').next().unwrap_or_default();
    addr.parse()
        .map_err(|_| HostError::Lxd(format!("{BRIDGE} has no IPv4 address (got {raw:?})")))
}

#[cfg(test)]
#[path = "lxd_setup_tests.rs"]
mod tests;
