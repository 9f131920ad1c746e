//! How a runner instance is made, from the config: image and type, and the two LXD
//! profiles it gets besides LXD's `default` (which brings its NIC): the runner profile
//! (what every runner instance needs) and the resource profile (`vm-cpu`, `vm-memory`,
//! the root disk of `vm-disk` on the RAM-backed pool).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::config::{CharmConfig, InstanceType};
use crate::lxd::types::ImageSource;
use crate::lxd::{ConfigMap, InstanceSpec, Profile};
use crate::runner::{RunnerName, RunnerPrefix};

/// Ubuntu's image server, used when `runner-image` is empty.
pub const UBUNTU_IMAGES: &str = "https://cloud-images.ubuntu.com/releases";
pub const UBUNTU_ALIAS: &str = "22.04";

#[derive(Clone, Debug, PartialEq)]
pub struct InstanceLayout {
    pub instance_type: InstanceType,
    pub source: ImageSource,
    /// The profiles of every runner instance, in order: `default`, then ours.
    pub profiles: Vec<String>,
    /// Our profiles, made or brought up to date before any runner is created.
    pub own_profiles: Vec<Profile>,
}

impl InstanceLayout {
    /// `pool` is the RAM-backed storage pool the root disk lives on; `host_cpus` is
    /// how many CPUs the machine has.
    pub fn from_config(
        config: &CharmConfig,
        prefix: &RunnerPrefix,
        pool: &str,
        host_cpus: usize,
    ) -> Self {
        let source = match &config.runner_image {
            Some(alias) => ImageSource::local(alias),
            None => ImageSource::simplestreams(UBUNTU_IMAGES, UBUNTU_ALIAS),
        };
        let own_profiles = vec![
            runner_profile(prefix, config.instance_type),
            resource_profile(prefix, config, pool, host_cpus),
        ];
        let mut profiles = vec!["default".to_string()];
        profiles.extend(own_profiles.iter().map(|p| p.name.clone()));
        InstanceLayout {
            instance_type: config.instance_type,
            source,
            profiles,
            own_profiles,
        }
    }

    pub fn spec(&self, name: &RunnerName) -> InstanceSpec {
        InstanceSpec {
            name: name.as_str().to_string(),
            instance_type: self.instance_type,
            source: self.source.clone(),
            profiles: self.profiles.clone(),
            config: ConfigMap::new(),
            devices: BTreeMap::new(),
            ephemeral: true,
        }
    }

    /// The NIC the runner's network comes up on.
    pub fn interface(&self) -> &'static str {
        match self.instance_type {
            InstanceType::Container => "eth0",
            InstanceType::VirtualMachine => "enp5s0",
        }
    }
}

/// What every runner instance needs, whatever its size.
fn runner_profile(prefix: &RunnerPrefix, kind: InstanceType) -> Profile {
    let mut config = ConfigMap::new();
    // After a crash of the host LXD would start the runners that were running, with
    // their one-time credentials spent: stopped, the next reconcile removes them.
    config.insert("boot.autostart".into(), "false".into());
    if kind == InstanceType::Container {
        // Jobs build and run containers of their own (docker, podman).
        config.insert("security.nesting".into(), "true".into());
    }
    Profile {
        name: format!("{}runner", prefix.as_str()),
        description: "github-runner: every runner instance".into(),
        config,
        devices: BTreeMap::new(),
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
    let content = serde_json::to_vec(&(&limits, &devices)).expect("serializable");
    let digest = hex::encode(&Sha256::digest(&content)[..4]);
    Profile {
        name: format!("{}res-{digest}", prefix.as_str()),
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
mod tests {
    use super::*;

    fn config(extra: serde_json::Value) -> CharmConfig {
        let mut v = serde_json::json!({"path": "o/r", "token": "t", "vm-cpu": 4, "vm-memory": "2GiB", "vm-disk": "8GiB"});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        CharmConfig::from_json(&v).unwrap()
    }

    fn layout(extra: serde_json::Value, host_cpus: usize) -> InstanceLayout {
        let prefix = RunnerPrefix::from_unit("app/0");
        InstanceLayout::from_config(&config(extra), &prefix, "runners", host_cpus)
    }

    fn resources(l: &InstanceLayout) -> &Profile {
        l.own_profiles
            .iter()
            .find(|p| p.name.contains("-res-"))
            .unwrap()
    }

    #[test]
    fn vm_layout_from_config() {
        let layout = layout(serde_json::json!({}), 64);
        let spec = layout.spec(&RunnerName::new("app-0-00000001"));
        assert!(spec.ephemeral);
        assert_eq!(spec.instance_type, InstanceType::VirtualMachine);
        assert_eq!(spec.source.server.as_deref(), Some(UBUNTU_IMAGES));
        let res = resources(&layout);
        assert_eq!(
            spec.profiles,
            ["default", "app-0-runner", res.name.as_str()]
        );
        assert!(spec.config.is_empty() && spec.devices.is_empty());
        assert_eq!(res.config["limits.cpu"], "4");
        assert_eq!(res.config["limits.memory"], "2147483648B");
        assert_eq!(res.devices["root"]["size"], "8589934592B");
        assert_eq!(res.devices["root"]["pool"], "runners");
        let runner = &layout.own_profiles[0];
        assert_eq!(runner.config["boot.autostart"], "false");
        assert!(!runner.config.contains_key("security.nesting"));
        assert_eq!(layout.interface(), "enp5s0");
    }

    #[test]
    fn container_layout_uses_the_configured_image() {
        let container =
            serde_json::json!({"runner-instance-type": "container", "runner-image": "ghr-runner"});
        let l = layout(container.clone(), 8);
        assert_eq!(l.source, ImageSource::local("ghr-runner"));
        assert_eq!(resources(&l).config["limits.cpu"], "4");
        assert_eq!(l.own_profiles[0].config["security.nesting"], "true");
        // A container allowed every CPU of the host is not pinned; a VM always has its count.
        assert!(!resources(&layout(container.clone(), 4))
            .config
            .contains_key("limits.cpu"));
        let vm = layout(serde_json::json!({"vm-cpu": 8}), 2);
        assert_eq!(resources(&vm).config["limits.cpu"], "8");
        assert!(!resources(&l).devices["root"].contains_key("size"));
        assert_eq!(l.interface(), "eth0");
    }

    #[test]
    fn a_new_size_is_a_new_resource_profile() {
        let small = layout(serde_json::json!({}), 64);
        let big = layout(serde_json::json!({"vm-memory": "4GiB"}), 64);
        assert_ne!(resources(&small).name, resources(&big).name);
        assert_eq!(
            resources(&small).name,
            resources(&layout(serde_json::json!({}), 64)).name
        );
        assert_eq!(small.own_profiles[0], big.own_profiles[0]);
    }
}
