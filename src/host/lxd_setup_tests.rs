use super::*;
use crate::host::fakes::FakeLxd;

fn profile(devices: serde_json::Value) -> Profile {
    serde_json::from_value(serde_json::json!({"name": "default", "devices": devices})).unwrap()
}

#[test]
fn a_fresh_lxd_gets_a_dir_pool_a_bridge_without_ipv6_and_both_devices() {
    let lxd = FakeLxd::fresh();
    assert!(ensure_initialised(&lxd).unwrap());
    assert_eq!(
        *lxd.writes.borrow(),
        [
            "create pool default",
            "create network lxdbr0",
            "update profile default"
        ]
    );
    assert_eq!(lxd.pools.borrow()["default"].driver, "dir");
    let bridge = &lxd.networks.borrow()["lxdbr0"];
    assert_eq!(bridge.kind, "bridge");
    assert_eq!(bridge.config["ipv6.address"], "none");
    assert_eq!(bridge.config["ipv4.nat"], "true");
    let p = lxd.profile("default").unwrap();
    assert_eq!(p.devices["root"]["pool"], "default");
    assert_eq!(p.devices["eth0"]["network"], "lxdbr0");
    assert_eq!(
        runner_bridge(&lxd).unwrap(),
        ("lxdbr0".into(), Ipv4Addr::new(10, 5, 6, 1))
    );

    lxd.writes.borrow_mut().clear();
    assert!(
        !ensure_initialised(&lxd).unwrap(),
        "a second run changes nothing"
    );
    assert!(lxd.writes.borrow().is_empty());
}

#[test]
fn an_lxd_set_up_by_the_operator_keeps_its_own_pool_and_bridge() {
    let lxd = FakeLxd::fresh();
    let own = profile(serde_json::json!({
        "root": {"type": "disk", "path": "/", "pool": "fast"},
        "eth0": {"type": "nic", "network": "br-ops"}
    }));
    lxd.profiles
        .borrow_mut()
        .insert("default".into(), own.clone());
    assert!(!ensure_initialised(&lxd).unwrap());
    assert!(lxd.writes.borrow().is_empty());
    assert_eq!(complete_profile(&own), None);
}

#[test]
fn only_what_is_missing_is_made() {
    // A pool of that name already there, a NIC already there: only the disk is added.
    let lxd = FakeLxd::fresh();
    lxd.pools
        .borrow_mut()
        .insert("default".into(), default_pool());
    let nic_only = profile(serde_json::json!({"eth0": {"type": "nic", "network": "lxdbr0"}}));
    lxd.profiles.borrow_mut().insert("default".into(), nic_only);
    assert!(ensure_initialised(&lxd).unwrap());
    assert_eq!(*lxd.writes.borrow(), ["update profile default"]);
    assert!(lxd.profile("default").unwrap().has_root_disk());
}

#[test]
fn hardening_sets_the_missing_keys_in_one_update() {
    let lxd = FakeLxd::fresh();
    ensure_initialised(&lxd).unwrap();
    lxd.writes.borrow_mut().clear();
    assert!(ensure_nic_hardening(&lxd).unwrap());
    assert_eq!(*lxd.writes.borrow(), ["update profile default"]);
    let nic = &lxd.profile("default").unwrap().devices["eth0"];
    for key in NIC_HARDENING {
        assert_eq!(nic[key], "true", "{key}");
    }
    assert_eq!(nic["network"], "lxdbr0", "the rest of the device is kept");
    assert!(!ensure_nic_hardening(&lxd).unwrap());
    assert_eq!(lxd.writes.borrow().len(), 1);
}

#[test]
fn a_profile_without_a_nic_is_an_error() {
    let err = harden(&profile(serde_json::json!({}))).unwrap_err();
    assert!(err.to_string().contains("no NIC"), "{err}");
    let err = runner_bridge(&FakeLxd::fresh()).unwrap_err();
    assert!(err.to_string().contains("no bridged NIC"), "{err}");
}

#[test]
fn core_proxy_is_set_changed_and_unset() {
    let proxy = ProxyConfig {
        http: Some("http://p:3128".into()),
        https: Some("http://p:3128".into()),
        no_proxy: Some("localhost,10.0.0.0/8".into()),
    };
    let lxd = FakeLxd::fresh();
    lxd.config.borrow_mut().extend([
        ("core.proxy_http".to_string(), "http://old:1".to_string()),
        ("core.https_address".to_string(), "[::]:8443".to_string()),
    ]);
    assert!(ensure_core_proxy(&lxd, &proxy).unwrap());
    assert_eq!(
        *lxd.writes.borrow(),
        ["patch server core.proxy_http=http://p:3128 core.proxy_https=http://p:3128 core.proxy_ignore_hosts=localhost,10.0.0.0/8"]
    );
    assert_eq!(lxd.config.borrow()["core.https_address"], "[::]:8443");
    assert!(!ensure_core_proxy(&lxd, &proxy).unwrap());

    let unset = proxy_changes(&lxd.config.borrow(), &ProxyConfig::default());
    assert_eq!(unset.len(), 3);
    assert!(
        unset.values().all(String::is_empty),
        "an empty value unsets"
    );
    assert!(ensure_core_proxy(&lxd, &ProxyConfig::default()).unwrap());
    assert!(!lxd.config.borrow().contains_key("core.proxy_http"));
    assert!(proxy_changes(&ConfigMap::new(), &ProxyConfig::default()).is_empty());
}

#[test]
fn the_runner_bridge_is_the_default_profiles() {
    let lxd = FakeLxd::initialised("10.91.4.1");
    assert_eq!(
        runner_bridge(&lxd).unwrap(),
        ("lxdbr0".into(), Ipv4Addr::new(10, 91, 4, 1))
    );
    lxd.networks
        .borrow_mut()
        .get_mut("lxdbr0")
        .unwrap()
        .config
        .insert("ipv4.address".into(), "none".into());
    let err = runner_bridge(&lxd).unwrap_err();
    assert!(
        err.to_string().contains("lxdbr0 has no IPv4 address"),
        "{err}"
    );
}
