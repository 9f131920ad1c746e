use std::fs;

use serde_json::{json, Value};

use super::*;
use crate::charm::deps::HttpGithub;
use crate::host::fakes::{FakeClock, FakeCommands, FakeLxd};
use crate::host::lxd_setup::LxdSetup;
use crate::host::{CmdOutput, HostPaths};
use crate::juju::fakes::FakeJuju;
use ghr_types::proxy::ProxyConfig;

struct Host {
    dir: tempfile::TempDir,
    paths: HostPaths,
    env: HookEnv,
    cmds: FakeCommands,
    lxd: FakeLxd,
}

/// The stand-in unit's (`github-runner/0`) table as nft lists it.
const NFT_TABLES: &str = "table inet github-runner-github-runner-0\n";
const NFT_TABLE: &str =
    "table inet github-runner-github-runner-0 {\n\tset denylist {\n\tset always-refused {\n\tchain input {\n\tchain runner-input {\n\tchain forward {\n\tchain runner-forward {\n}\n";

fn ubuntu_host(proxy: ProxyConfig) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::for_unit(dir.path(), "github-runner/0");
    fs::create_dir_all(paths.os_release().parent().unwrap()).unwrap();
    fs::write(paths.os_release(), "ID=ubuntu\n").unwrap();
    let cmds = FakeCommands::new();
    cmds.on(
        "snap",
        &["list"],
        vec![CmdOutput::failed(1, "error: no matching snaps installed")],
    );
    cmds.on("nft", &["list", "tables"], vec![CmdOutput::ok(NFT_TABLES)]);
    cmds.on("nft", &["list", "table"], vec![CmdOutput::ok(NFT_TABLE)]);
    // The charm's binary, which install copies for the policy service.
    let charm_dir = dir.path().join("charm");
    fs::create_dir_all(&charm_dir).unwrap();
    fs::write(charm_dir.join(BINARY), "#!/bin/sh\n").unwrap();
    let env = HookEnv {
        charm_dir,
        proxy,
        ..HookEnv::default()
    };
    Host {
        dir,
        paths,
        env,
        cmds,
        lxd: FakeLxd::fresh(),
    }
}

fn config(extra: Value) -> CharmConfig {
    let mut raw = json!({"path": "acme", "token": "ghp_unit_test_token"});
    for (k, v) in extra.as_object().unwrap() {
        raw[k] = v.clone();
    }
    CharmConfig::from_json(&raw).unwrap()
}

fn run(h: &Host, juju: &FakeJuju, config: &CharmConfig) -> Result<Outcome, CharmError> {
    let clock = std::sync::Arc::new(FakeClock::new());
    let github = HttpGithub::default();
    let deps = Deps::stand_in(&h.cmds, clock, &github, h.dir.path());
    install(juju, &h.env, config, &deps, &h.lxd, InstallKind::Install)
}

#[test]
fn a_fresh_ubuntu_host_is_prepared_in_order() {
    let h = ubuntu_host(ProxyConfig::default());
    let juju = FakeJuju::default();
    let outcome = run(&h, &juju, &config(json!({}))).unwrap();
    assert_eq!(outcome, Outcome::status(Status::Active, "host ready"));
    let lines = h.cmds.lines();
    let programs: Vec<String> = lines
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        programs,
        [
            "dpkg-query -W",
            "apt-get update",
            "apt-get install",
            "snap list",
            "snap install",
            "modprobe br_netfilter",
            "sysctl -w",
            "lxd waitready",
            "systemctl daemon-reload",
            "systemctl enable",
            "systemctl restart",
            "nft list",
            "nft list",
            "nft -f",
            "nft list",
            "nft list",
            "systemctl daemon-reload",
            "systemctl enable",
        ]
    );
    assert!(
        lines[2].ends_with("apparmor-utils linux-generic"),
        "{}",
        lines[2]
    );
    assert_eq!(
        *juju.statuses.borrow(),
        [
            "installing packages",
            "installing the lxd snap",
            "loading br_netfilter",
            "initialising LXD",
            "hardening the LXD default profile",
            "configuring LXD's proxy",
            "installing the policy service",
            "applying the firewall"
        ]
    );
    assert_eq!(
        *h.lxd.writes.borrow(),
        [
            "create pool default",
            "create network lxdbr0",
            "update profile default",
            "update profile default",
        ],
        "LXD made, then its default profile hardened; no proxy to set"
    );
    let unit = fs::read_to_string(
        h.paths
            .systemd_dir()
            .join("github-runner-policy-github-runner-0.service"),
    );
    let bind = format!("--bind 10.5.6.1:{} ", policy_service::POLICY_PORT);
    assert!(unit.unwrap().contains(&bind));
    assert!(juju.reboots.borrow().is_empty());
    let _ = h.dir;
}

#[test]
fn insecure_test_mode_skips_nic_hardening() {
    let h = ubuntu_host(ProxyConfig::default());
    let juju = FakeJuju::default();
    run(&h, &juju, &config(json!({"test-mode": "insecure"}))).unwrap();
    let nic = &h.lxd.profile("default").unwrap().devices["eth0"];
    assert!(!nic.contains_key("security.mac_filtering"), "{nic:?}");
}

#[test]
fn a_reboot_is_requested_at_the_end_when_required() {
    let h = ubuntu_host(ProxyConfig::default());
    fs::create_dir_all(h.paths.reboot_required().parent().unwrap()).unwrap();
    fs::write(h.paths.reboot_required(), "").unwrap();
    let juju = FakeJuju::default();
    let outcome = run(&h, &juju, &config(json!({}))).unwrap();
    assert_eq!(*juju.reboots.borrow(), [false]);
    assert_eq!(outcome.status.unwrap().0, Status::Maintenance);
}

#[test]
fn an_install_beside_other_units_never_reboots_their_machine() {
    let h = ubuntu_host(ProxyConfig::default());
    fs::create_dir_all(h.paths.reboot_required().parent().unwrap()).unwrap();
    fs::write(h.paths.reboot_required(), "").unwrap();
    // Another application's unit is already on the machine.
    let registry = h.paths.machine_registry();
    fs::create_dir_all(registry.parent().unwrap()).unwrap();
    fs::write(&registry, r#"{"units": {"other/0": {"slot": 1}}}"#).unwrap();
    let juju = FakeJuju::default();
    let outcome = run(&h, &juju, &config(json!({}))).unwrap();
    assert!(juju.reboots.borrow().is_empty());
    assert_eq!(outcome.status.unwrap().0, Status::Active);
}

#[test]
fn proxy_reaches_apt_snap_and_lxd() {
    let proxy = ProxyConfig {
        http: Some("http://squid.internal:3128".into()),
        https: None,
        no_proxy: Some("10.0.0.0/8".into()),
    };
    let h = ubuntu_host(proxy);
    run(&h, &FakeJuju::default(), &config(json!({}))).unwrap();
    let calls = h.cmds.calls.borrow();
    let has_proxy = |c: &&crate::host::Cmd| {
        c.env
            .contains(&("https_proxy".into(), "http://squid.internal:3128".into()))
    };
    for c in calls
        .iter()
        .filter(|c| c.program == "apt-get" || c.args.first().is_some_and(|a| a == "install"))
    {
        assert!(has_proxy(&c), "{c}");
    }
    let lxd_config = h.lxd.config.borrow();
    assert_eq!(lxd_config["core.proxy_http"], "http://squid.internal:3128");
    assert_eq!(lxd_config["core.proxy_ignore_hosts"], "10.0.0.0/8");
    assert!(!lxd_config.contains_key("core.proxy_https"));
}

#[test]
fn a_snap_failure_is_a_retried_maintenance_status_naming_the_step() {
    let h = ubuntu_host(ProxyConfig::default());
    h.cmds.on(
        "snap",
        &["install"],
        vec![CmdOutput::failed(1, "error: cannot reach the store")],
    );
    let err = run(&h, &FakeJuju::default(), &config(json!({}))).unwrap_err();
    let d = err.disposition(false);
    assert!(d.retry);
    assert_eq!(
        d.status,
        Some((
            Status::Maintenance,
            "installing the lxd snap failed: `snap install lxd` failed (exit 1): error: cannot reach the store".into()
        ))
    );
}

#[test]
fn debian_uses_the_deb_lxd_and_no_kernel_package() {
    let h = ubuntu_host(ProxyConfig::default());
    fs::write(h.paths.os_release(), "ID=debian\n").unwrap();
    run(&h, &FakeJuju::default(), &config(json!({}))).unwrap();
    let lines = h.cmds.lines();
    assert!(
        lines[2].ends_with("apparmor-utils lxd lxd-client"),
        "{}",
        lines[2]
    );
    assert!(!lines.iter().any(|l| l.starts_with("snap")));
}

#[test]
fn a_second_install_changes_nothing() {
    let h = ubuntu_host(ProxyConfig::default());
    let cfg = config(json!({}));
    run(&h, &FakeJuju::default(), &cfg).unwrap();

    // The host as the first run left it.
    let all: Vec<&str> = package_sets(OsFamily::Ubuntu).0;
    let dpkg: String = all.iter().map(|p| format!("{p} installed\n")).collect();
    let c = FakeCommands::new();
    c.on("dpkg-query", &[], vec![CmdOutput::ok(&dpkg)]);
    c.on("nft", &["list", "tables"], vec![CmdOutput::ok(NFT_TABLES)]);
    c.on("nft", &["list", "table"], vec![CmdOutput::ok(NFT_TABLE)]);
    fs::create_dir_all(h.paths.sys_module("br_netfilter")).unwrap();
    for key in crate::host::kernel::BRIDGE_SYSCTLS {
        let live = h.paths.proc_sys(key);
        fs::create_dir_all(live.parent().unwrap()).unwrap();
        fs::write(live, "1\n").unwrap();
    }
    h.lxd.writes.borrow_mut().clear();
    let h2 = Host { cmds: c, ..h };
    let juju = FakeJuju::default();
    run(&h2, &juju, &cfg).unwrap();
    assert_eq!(
        h2.cmds
            .lines()
            .iter()
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        [
            "dpkg-query -W -f=${Package}",
            "snap list lxd",
            "lxd waitready --timeout",
            "nft list tables",
            "nft list table",
        ]
    );
    assert!(h2.lxd.writes.borrow().is_empty(), "LXD only read");
    assert!(juju.reboots.borrow().is_empty());
}
