//! How a runner instance is made, from the config and the host: image and type, and
//! the two LXD profiles that are all it gets (never LXD's `default`, which an operator
//! may edit): the runner profile (its one NIC, hardened, and what every runner needs)
//! and the resource profile (`vm-cpu`, `vm-memory`, the root disk of `vm-disk` on the
//! RAM-backed pool). Both are named after their content.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::config::{CharmConfig, InstanceType, TestMode};
use crate::host::site::UnitSite;
use crate::runner::{RunnerName, RunnerPrefix};
use lxd_client::types::ImageSource;
use lxd_client::{ConfigMap, InstanceSpec, Profile};

/// Ubuntu's image server, used when `runner-image` is empty.
pub const UBUNTU_IMAGES: &str = "https://cloud-images.ubuntu.com/releases";
pub const UBUNTU_ALIAS: &str = "22.04";

/// Bridged-NIC keys that stop a runner from spoofing MAC or IP addresses and from
/// reaching the other runners on the bridge directly.
pub const NIC_HARDENING: [&str; 4] = [
    "security.mac_filtering",
    "security.ipv4_filtering",
    "security.ipv6_filtering",
    "security.port_isolation",
];

/// The NIC device every runner gets, as the instance sees it.
pub const NIC_DEVICE: &str = "eth0";

/// Which user-namespace id map container runners get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idmap {
    /// A range of host ids of their own (`security.idmap.isolated`): root in one runner
    /// is no owner of another runner's files or processes.
    Isolated,
    /// LXD's one map shared by every container: the host's subordinate ids leave no
    /// room for a range per runner.
    Shared,
}

/// What the machine decides about runner instances, besides the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// The RAM-backed storage pool the root disk lives on.
    pub pool: String,
    /// How many CPUs the machine has.
    pub cpus: usize,
    /// The LXD network (bridge) the runner's NIC is on.
    pub network: String,
    /// The id map container runners get (virtual machines have none).
    pub idmap: Idmap,
    /// The unit's place on the machine: its runners' MACs.
    pub site: UnitSite,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InstanceLayout {
    pub instance_type: InstanceType,
    pub source: ImageSource,
    /// The profiles of every runner instance, in order: ours only.
    pub profiles: Vec<String>,
    /// Our profiles, made or brought up to date before any runner is created.
    pub own_profiles: Vec<Profile>,
    /// Gives each runner a MAC in its unit's range.
    pub site: UnitSite,
}

impl InstanceLayout {
    pub fn from_config(config: &CharmConfig, prefix: &RunnerPrefix, host: &HostFacts) -> Self {
        let source = match &config.runner_image {
            Some(alias) => ImageSource::local(alias),
            None => ImageSource::simplestreams(UBUNTU_IMAGES, UBUNTU_ALIAS),
        };
        let own_profiles = vec![
            runner_profile(prefix, config, host),
            resource_profile(prefix, config, &host.pool, host.cpus),
        ];
        InstanceLayout {
            instance_type: config.instance_type,
            source,
            profiles: own_profiles.iter().map(|p| p.name.clone()).collect(),
            own_profiles,
            site: host.site.clone(),
        }
    }

    pub fn spec(&self, name: &RunnerName) -> InstanceSpec {
        // The unit's firewall knows its runners by this MAC (MAC filtering keeps it).
        let mac = self.site.runner_mac(name.as_str());
        InstanceSpec {
            name: name.as_str().to_string(),
            instance_type: self.instance_type,
            source: self.source.clone(),
            profiles: self.profiles.clone(),
            config: ConfigMap::from([(format!("volatile.{NIC_DEVICE}.hwaddr"), mac)]),
            devices: BTreeMap::new(),
            ephemeral: true,
        }
    }

    /// Whether runners get an id map of their own (containers where the host allows).
    pub fn isolated_idmap(&self) -> bool {
        self.own_profiles
            .iter()
            .any(|p| p.config.get("security.idmap.isolated").map(String::as_str) == Some("true"))
    }

    /// The NIC the runner's network comes up on.
    pub fn interface(&self) -> &'static str {
        match self.instance_type {
            InstanceType::Container => "eth0",
            InstanceType::VirtualMachine => "enp5s0",
        }
    }
}

/// Whether `name` is one of the profiles this unit's layouts make: its prefix, a kind,
/// and the content digest, exactly (`app-1-` never claims `app-1-0-runner-...`).
pub fn is_own_profile(prefix: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let digest = rest
        .strip_prefix("runner-")
        .or_else(|| rest.strip_prefix("res-"));
    digest.is_some_and(|d| d.len() == 8 && d.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `name-<digest of content>`: a changed profile is a new one, so a change never
/// reaches the runners already running (a busy one among them).
fn content_name(base: String, config: &ConfigMap, devices: &BTreeMap<String, ConfigMap>) -> String {
    let content = serde_json::to_vec(&(config, devices)).expect("serializable");
    let digest = hex::encode(&Sha256::digest(&content)[..4]);
    format!("{base}-{digest}")
}

/// The runner's one NIC, on the bridge; hardened unless `test-mode=insecure`. Carried
/// by our own profile so that no edit of `default` (a NIC without the keys, a second
/// NIC) reaches a runner.
pub fn runner_nic(network: &str, test_mode: TestMode) -> ConfigMap {
    let mut nic = ConfigMap::from([
        ("type".to_string(), "nic".to_string()),
        ("name".to_string(), NIC_DEVICE.to_string()),
        ("network".to_string(), network.to_string()),
    ]);
    if test_mode != TestMode::Insecure {
        nic.extend(NIC_HARDENING.map(|k| (k.to_string(), "true".to_string())));
    }
    nic
}

/// What every runner instance needs, whatever its size.
fn runner_profile(prefix: &RunnerPrefix, config: &CharmConfig, host: &HostFacts) -> Profile {
    let mut settings = ConfigMap::new();
    // After a crash of the host LXD would start the runners that were running, with
    // their one-time credentials spent: stopped, the next reconcile removes them.
    settings.insert("boot.autostart".into(), "false".into());
    if config.instance_type == InstanceType::Container {
        // Jobs build and run containers of their own (docker, podman).
        settings.insert("security.nesting".into(), "true".into());
        if host.idmap == Idmap::Isolated {
            settings.insert("security.idmap.isolated".into(), "true".into());
        }
    }
    let devices = BTreeMap::from([(
        NIC_DEVICE.to_string(),
        runner_nic(&host.network, config.test_mode),
    )]);
    Profile {
        name: content_name(format!("{}runner", prefix.as_str()), &settings, &devices),
        description: "github-runner: every runner instance".into(),
        config: settings,
        devices,
    }
}

/// The size of a runner. Named after its content, so a config change makes a new
/// profile and never resizes the runners already running (a busy one among them).
fn resource_profile(
    prefix: &RunnerPrefix,
    config: &CharmConfig,
    pool: &str,
    host_cpus: usize,
) -> Profile {
    let mut limits = ConfigMap::new();
    // A container's limits.cpu pins it to that many CPUs, and LXD then rebalances the
    // pins of every pinned container on each start (measured: 8 parallel launches 8%
    // slower). Allowed every CPU of the host, a container needs no pin at all. A VM's
    // limits.cpu is its number of vCPUs, so it is always set.
    let pin = config.instance_type == InstanceType::VirtualMachine
        || (config.vm_cpu as usize) < host_cpus;
    if pin {
        limits.insert("limits.cpu".into(), config.vm_cpu.to_string());
    }
    limits.insert("limits.memory".into(), config.vm_memory.to_lxd());
    let mut root = ConfigMap::new();
    root.insert("type".into(), "disk".into());
    root.insert("path".into(), "/".into());
    root.insert("pool".into(), pool.into());
    // A dir pool cannot enforce a size on a container; the tmpfs under it bounds all.
    if config.instance_type == InstanceType::VirtualMachine {
        root.insert("size".into(), config.vm_disk.to_lxd());
    }
    let devices = BTreeMap::from([("root".to_string(), root)]);
    Profile {
        name: content_name(format!("{}res", prefix.as_str()), &limits, &devices),
        description: format!(
            "github-runner: {} CPUs, {} memory, {} disk",
            config.vm_cpu,
            config.vm_memory.to_lxd(),
            config.vm_disk.to_lxd()
        ),
        config: limits,
        devices,
    }
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
