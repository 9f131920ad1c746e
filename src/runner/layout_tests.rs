use super::*;

fn config(extra: serde_json::Value) -> CharmConfig {
    let mut v = serde_json::json!({"path": "o/r", "token": "t", "vm-cpu": 4, "vm-memory": "2GiB", "vm-disk": "8GiB"});
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    CharmConfig::from_json(&v).unwrap()
}

fn host(cpus: usize, idmap: Idmap) -> HostFacts {
    HostFacts {
        pool: "runners".into(),
        cpus,
        network: "lxdbr0".into(),
        idmap,
        site: crate::host::site::UnitSite::new("app/0", 2, false),
    }
}

fn layout(extra: serde_json::Value, host_cpus: usize) -> InstanceLayout {
    let prefix = RunnerPrefix::from_unit("app/0");
    InstanceLayout::from_config(&config(extra), &prefix, &host(host_cpus, Idmap::Isolated))
}

fn resources(l: &InstanceLayout) -> &Profile {
    l.own_profiles
        .iter()
        .find(|p| p.name.contains("-res-"))
        .unwrap()
}

fn runner(l: &InstanceLayout) -> &Profile {
    &l.own_profiles[0]
}

/// Every NIC device the instance gets from its profiles, as LXD expands them: a later
/// profile's device replaces an earlier one of the same name.
fn expanded_nics(l: &InstanceLayout) -> Vec<ConfigMap> {
    let mut devices = BTreeMap::new();
    for name in &l.profiles {
        let profile = l.own_profiles.iter().find(|p| &p.name == name).unwrap();
        devices.extend(profile.devices.clone());
    }
    devices
        .into_values()
        .filter(|d| d.get("type").map(String::as_str) == Some("nic"))
        .collect()
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
        [runner(&layout).name.as_str(), res.name.as_str()]
    );
    assert!(runner(&layout).name.starts_with("app-0-runner-"));
    assert!(spec.devices.is_empty());
    assert_eq!(
        spec.config.keys().collect::<Vec<_>>(),
        ["volatile.eth0.hwaddr"]
    );
    assert_eq!(res.config["limits.cpu"], "4");
    assert_eq!(res.config["limits.memory"], "2147483648B");
    assert_eq!(res.devices["root"]["size"], "8589934592B");
    assert_eq!(res.devices["root"]["pool"], "runners");
    assert_eq!(runner(&layout).config["boot.autostart"], "false");
    assert!(!runner(&layout).config.contains_key("security.nesting"));
    assert_eq!(layout.interface(), "enp5s0");
}

#[test]
fn container_layout_uses_the_configured_image() {
    let container =
        serde_json::json!({"runner-instance-type": "container", "runner-image": "ghr-runner"});
    let l = layout(container.clone(), 8);
    assert_eq!(l.source, ImageSource::local("ghr-runner"));
    assert_eq!(resources(&l).config["limits.cpu"], "4");
    assert_eq!(runner(&l).config["security.nesting"], "true");
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

#[test]
fn every_nic_a_runner_gets_is_hardened_and_default_is_not_used() {
    for kind in ["container", "virtual-machine"] {
        let l = layout(serde_json::json!({"runner-instance-type": kind}), 8);
        // `default` (and whatever an operator adds to it) never reaches a runner.
        assert!(!l.profiles.iter().any(|p| p == "default"), "{kind}");
        let nics = expanded_nics(&l);
        assert_eq!(nics.len(), 1, "{kind}");
        for nic in &nics {
            assert_eq!(nic["network"], "lxdbr0");
            for key in NIC_HARDENING {
                assert_eq!(
                    nic.get(key).map(String::as_str),
                    Some("true"),
                    "{kind} {key}"
                );
            }
        }
        // The root disk comes from our resource profile, not from `default`.
        assert!(resources(&l).devices.contains_key("root"));
    }
}

#[test]
fn test_mode_insecure_leaves_the_nic_unhardened_in_a_profile_of_its_own() {
    let hardened = layout(serde_json::json!({}), 8);
    let insecure = layout(
        serde_json::json!({"test-mode": "insecure", "github-url": "http://x"}),
        8,
    );
    let nics = expanded_nics(&insecure);
    assert_eq!(nics.len(), 1);
    assert!(NIC_HARDENING.iter().all(|k| !nics[0].contains_key(*k)));
    assert_ne!(runner(&hardened).name, runner(&insecure).name);
}

#[test]
fn container_runners_get_an_isolated_idmap_where_the_host_allows() {
    let prefix = RunnerPrefix::from_unit("app/0");
    let container = config(serde_json::json!({"runner-instance-type": "container"}));
    let isolated = InstanceLayout::from_config(&container, &prefix, &host(8, Idmap::Isolated));
    assert_eq!(runner(&isolated).config["security.idmap.isolated"], "true");
    assert!(isolated.isolated_idmap());
    let shared = InstanceLayout::from_config(&container, &prefix, &host(8, Idmap::Shared));
    assert!(!runner(&shared)
        .config
        .contains_key("security.idmap.isolated"));
    assert!(!shared.isolated_idmap());
    // A different map is a different profile: running runners keep theirs.
    assert_ne!(runner(&isolated).name, runner(&shared).name);
    // Virtual machines have no id map to isolate.
    let vm = config(serde_json::json!({}));
    let vm = InstanceLayout::from_config(&vm, &prefix, &host(8, Idmap::Isolated));
    assert!(runner(&vm)
        .config
        .keys()
        .all(|k| !k.starts_with("security.idmap")));
}

#[test]
fn each_runner_gets_a_mac_in_its_units_range() {
    let l = layout(serde_json::json!({}), 8);
    let prefix = RunnerPrefix::from_unit("app/0");
    let (one, two) = (prefix.new_name(), prefix.new_name());
    let mac = |name| l.spec(name).config["volatile.eth0.hwaddr"].clone();
    assert!(mac(&one).starts_with("0a:02:"), "{}", mac(&one));
    assert_ne!(mac(&one), mac(&two));
}

#[test]
fn own_profiles_are_told_apart_from_a_longer_prefix() {
    let l = layout(serde_json::json!({}), 8);
    for p in &l.own_profiles {
        assert!(is_own_profile("app-0-", &p.name), "{}", p.name);
    }
    assert!(!is_own_profile("app-", "app-0-runner-0123abcd"));
    assert!(!is_own_profile("app-0-", "app-0-runner-0123abc"));
    assert!(!is_own_profile("app-0-", "default"));
}
