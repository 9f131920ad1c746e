use super::*;
use crate::host::fakes::FakeCommands;
use crate::host::CmdOutput;

const PROFILE_FRESH: &str = "config: {}\ndescription: Default LXD profile\ndevices:\n  eth0:\n    name: eth0\n    network: lxdbr0\n    type: nic\n  root:\n    path: /\n    pool: default\n    type: disk\nname: default\nused_by: []\n";

const PROFILE_HARDENED: &str = "config: {}\ndevices:\n  eth0:\n    name: eth0\n    network: lxdbr0\n    security.ipv4_filtering: \"true\"\n    security.ipv6_filtering: \"true\"\n    security.mac_filtering: \"true\"\n    security.port_isolation: \"true\"\n    type: nic\nname: default\n";

#[test]
fn preseed_for_a_fresh_lxd_has_pool_bridge_without_ipv6_and_profile() {
    let got = render_preseed(true, true).unwrap();
    let v: Value = serde_yaml::from_str(&got).unwrap();
    assert_eq!(v["storage_pools"][0]["name"], "default");
    assert_eq!(v["storage_pools"][0]["driver"], "dir");
    assert_eq!(v["networks"][0]["name"], "lxdbr0");
    assert_eq!(v["networks"][0]["config"]["ipv6.address"], "none");
    assert_eq!(v["profiles"][0]["devices"]["eth0"]["network"], "lxdbr0");
    assert_eq!(v["profiles"][0]["devices"]["root"]["pool"], "default");
}

#[test]
fn preseed_only_holds_what_is_missing() {
    assert_eq!(render_preseed(false, false), None);
    let only_bridge = render_preseed(false, true).unwrap();
    assert!(!only_bridge.contains("storage_pools"));
    assert!(only_bridge.contains("networks"));
}

#[test]
fn init_runs_once() {
    let c = FakeCommands::new();
    assert!(ensure_initialised(&c).unwrap());
    let calls = c.calls.borrow();
    assert_eq!(calls[2].to_string(), "lxd init --preseed");
    assert!(String::from_utf8_lossy(calls[2].stdin.as_ref().unwrap()).contains("lxdbr0"));
    drop(calls);

    let c = FakeCommands::new();
    c.on(
        "lxc",
        &["storage", "list"],
        vec![CmdOutput::ok("default,dir,,,1,CREATED\n")],
    );
    c.on(
        "lxc",
        &["network", "list"],
        vec![CmdOutput::ok(
            "eth0,physical,NO,,,,0,\nlxdbr0,bridge,YES,10.1.2.1/24,none,,1,CREATED\n",
        )],
    );
    assert!(!ensure_initialised(&c).unwrap());
    assert_eq!(c.lines().len(), 2);
}

#[test]
fn hardening_sets_the_missing_keys_in_one_call() {
    let c = FakeCommands::new();
    c.on(
        "lxc",
        &["profile", "show"],
        vec![CmdOutput::ok(PROFILE_FRESH)],
    );
    assert!(ensure_nic_hardening(&c).unwrap());
    assert_eq!(
        c.lines()[1],
        "lxc profile device set default eth0 security.mac_filtering=true security.ipv4_filtering=true security.ipv6_filtering=true security.port_isolation=true"
    );

    let c = FakeCommands::new();
    c.on(
        "lxc",
        &["profile", "show"],
        vec![CmdOutput::ok(PROFILE_HARDENED)],
    );
    assert!(!ensure_nic_hardening(&c).unwrap());
    assert_eq!(c.lines(), ["lxc profile show default"]);
}

#[test]
fn a_profile_without_a_nic_is_an_error() {
    let err = missing_hardening("devices: {}\n").unwrap_err();
    assert!(err.to_string().contains("no NIC"), "{err}");
}

#[test]
fn core_proxy_is_set_changed_and_unset() {
    let proxy = ProxyConfig {
        http: Some("http://p:3128".into()),
        https: Some("http://p:3128".into()),
        no_proxy: Some("localhost,10.0.0.0/8".into()),
    };
    let c = FakeCommands::new();
    c.on(
        "lxc",
        &["config", "show"],
        vec![CmdOutput::ok(
            "config:\n  core.proxy_http: http://old:1\n  core.https_address: '[::]:8443'\n",
        )],
    );
    assert!(ensure_core_proxy(&c, &proxy).unwrap());
    assert_eq!(
        c.lines()[1..],
        [
            "lxc config set core.proxy_http http://p:3128",
            "lxc config set core.proxy_https http://p:3128",
            "lxc config set core.proxy_ignore_hosts localhost,10.0.0.0/8"
        ]
    );

    let same = "config:\n  core.proxy_http: http://p:3128\n  core.proxy_https: http://p:3128\n  core.proxy_ignore_hosts: localhost,10.0.0.0/8\n";
    assert!(proxy_changes(same, &proxy).unwrap().is_empty());
    let unset = proxy_changes(same, &ProxyConfig::default()).unwrap();
    assert_eq!(unset.len(), 3);
    assert!(unset.iter().all(|(_, v)| v.is_none()));
    assert!(proxy_changes("config: {}\n", &ProxyConfig::default())
        .unwrap()
        .is_empty());
}

#[test]
fn bridge_address_parses_the_cidr() {
    let c = FakeCommands::new();
    c.on(
        "lxc",
        &["network", "get"],
        vec![CmdOutput::ok("10.91.4.1/24\n")],
    );
    assert_eq!(bridge_address(&c).unwrap(), Ipv4Addr::new(10, 91, 4, 1));
    let c = FakeCommands::new();
    assert!(bridge_address(&c).is_err());
}
