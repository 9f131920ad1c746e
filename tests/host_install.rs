//! install and upgrade-charm through the real binary, with apt-get, dpkg, snap, lxd,
//! modprobe and systemctl replaced by recording stand-ins, the host's files relocated
//! into a temporary root and a real LXD daemon of the test's own: the steps, their
//! order, idempotency, proxies and secrets.

mod harness;
mod host_support;
mod lxd_daemon_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use host_support::*;
use policy_service::POLICY_PORT;
use serde_json::json;

/// The state directory of the harness's unit, `github-runner/0`.
const UNIT_STATE: &str = "var/lib/github-runner/units/github-runner-0";

#[test]
fn a_fresh_install_runs_every_step_in_order() {
    let Some(h) = fresh_ubuntu() else { return };
    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    let want = [
        "systemctl daemon-reload",
        "systemctl enable ghr-reconcile-github-runner-0.timer",
        "systemctl restart ghr-reconcile-github-runner-0.timer",
        "dpkg-query -W -f=${Package} ${db:Status-Status}\\n nftables cpu-checker libvirt-clients libvirt-daemon-driver-qemu apparmor-utils linux-generic lxd lxd-client",
        "apt-get update",
        "apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nftables cpu-checker libvirt-clients libvirt-daemon-driver-qemu apparmor-utils linux-generic",
        "snap list lxd",
        "snap install lxd",
        "modprobe br_netfilter",
        "sysctl -w net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1",
        "lxd waitready --timeout 120",
        "systemctl daemon-reload",
        "systemctl enable github-runner-policy-github-runner-0.service",
        "systemctl restart github-runner-policy-github-runner-0.service",
        "nft list tables inet",
        "nft list table inet github-runner-github-runner-0",
        "nft -f -",
        "nft list tables inet",
        "nft list table inet github-runner-github-runner-0",
        "systemctl daemon-reload",
        "systemctl enable github-runner-firewall-github-runner-0.service",
    ];
    assert_eq!(host_calls(&h), want);
    let statuses: Vec<String> = h.statuses().into_iter().map(|(_, m)| m).collect();
    assert_eq!(
        statuses,
        [
            "installing packages",
            "installing the lxd snap",
            "loading br_netfilter",
            "initialising LXD",
            "hardening the LXD default profile",
            "configuring LXD's proxy",
            "installing the policy service",
            "applying the firewall",
            "host ready",
        ]
    );
    assert_eq!(h.last_status().unwrap().0, "active");
    assert_version_sent(&h);
    assert!(h.reboots().is_empty());
    let modules = fs::read_to_string(root(&h).join("etc/modules-load.d/github-runner.conf"));
    assert_eq!(modules.unwrap(), "br_netfilter\n");
    for call in h.calls_of("apt-get") {
        assert_eq!(
            call.env.get("DEBIAN_FRONTEND").map(String::as_str),
            Some("noninteractive")
        );
    }
}

#[test]
fn a_fresh_lxd_gets_its_pool_bridge_and_hardened_profile_through_the_api() {
    let Some(h) = fresh_ubuntu() else { return };
    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    assert_eq!(
        h.lxd.writes(),
        [
            "POST /1.0/storage-pools",
            "POST /1.0/networks",
            "PUT /1.0/profiles/default",
            "PUT /1.0/profiles/default",
        ],
        "made, then hardened; no proxy to set"
    );
    let pool = h.lxd.lxc(&["storage", "show", "default"]);
    assert!(pool.contains("\ndriver: dir\n"), "{pool}");
    assert_eq!(
        h.lxd.lxc(&["network", "get", "lxdbr0", "ipv6.address"]),
        "none"
    );
    let eth0 = |key: &str| {
        h.lxd
            .lxc(&["profile", "device", "get", "default", "eth0", key])
    };
    assert_eq!(eth0("network"), "lxdbr0");
    assert_eq!(eth0("security.mac_filtering"), "true");
    assert!(
        !host_calls(&h)
            .iter()
            .any(|c| c.starts_with("lxc") || c.starts_with("lxd init")),
        "no lxc, no preseed"
    );
}

#[test]
fn a_second_install_changes_nothing() {
    let Some(h) = fresh_ubuntu() else { return };
    assert!(h.run("hooks/install").success());
    as_installed(&h);
    let before = snapshot(&root(&h));
    let lxd_writes = h.lxd.writes();
    h.clear_calls();

    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    assert_eq!(
        host_calls(&h),
        [
            "dpkg-query -W -f=${Package} ${db:Status-Status}\\n nftables cpu-checker libvirt-clients libvirt-daemon-driver-qemu apparmor-utils linux-generic lxd lxd-client",
            "snap list lxd",
            "lxd waitready --timeout 120",
            "nft list tables inet",
            "nft list table inet github-runner-github-runner-0",
        ],
        "only reads on a second install"
    );
    assert_eq!(h.lxd.writes(), lxd_writes, "LXD was only read");
    assert_eq!(snapshot(&root(&h)), before, "no file was rewritten");
    assert!(h.reboots().is_empty());
    assert_eq!(
        h.last_status().unwrap(),
        ("active".into(), "host ready".into())
    );
}

#[test]
fn upgrade_charm_refreshes_the_snap_and_restarts_the_new_binary() {
    let Some(h) = fresh_ubuntu() else { return };
    assert!(h.run("hooks/install").success());
    as_installed(&h);
    let before = snapshot(&root(&h));
    h.clear_calls();
    assert!(h.run("hooks/upgrade-charm").success());
    let calls = host_calls(&h);
    assert!(calls.contains(&"snap refresh lxd".to_string()), "{calls:?}");
    let systemctl: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("systemctl"))
        .collect();
    // The new binary: the policy service's copy and the runner manager restart on it
    // (the manager's unit is new here: the version before had none).
    assert_eq!(
        systemctl,
        [
            "systemctl restart github-runner-policy-github-runner-0.service",
            "systemctl daemon-reload",
            "systemctl enable github-runner-manager-github-runner-0.service",
            "systemctl restart github-runner-manager-github-runner-0.service",
        ]
    );
    assert_only_manager_files_added(&before, &snapshot(&root(&h)));
    assert_version_sent(&h);
}

/// The charm's version reaches `juju status` once per install or upgrade.
fn assert_version_sent(h: &harness::Harness) {
    let sent: Vec<Vec<String>> = h
        .calls_of("application-version-set")
        .map(|c| c.args)
        .collect();
    assert_eq!(sent, [vec![github_runner::VERSION.to_string()]]);
}

#[test]
fn proxy_settings_reach_apt_snap_and_lxd() {
    let Some(mut h) = fresh_ubuntu() else { return };
    for (k, v) in [
        ("JUJU_CHARM_HTTP_PROXY", "http://squid.internal:3128"),
        ("JUJU_CHARM_HTTPS_PROXY", "http://squid.internal:3129"),
        ("JUJU_CHARM_NO_PROXY", "127.0.0.1,localhost,::1"),
    ] {
        h.extra_env.insert(k.into(), v.into());
    }
    assert!(h.run("hooks/install").success());
    for call in h
        .calls()
        .into_iter()
        .filter(|c| c.tool == "apt-get" || (c.tool == "snap" && c.args[0] == "install"))
    {
        for (k, v) in [
            ("http_proxy", "http://squid.internal:3128"),
            ("HTTPS_PROXY", "http://squid.internal:3129"),
            ("no_proxy", "127.0.0.1,localhost,::1"),
        ] {
            assert_eq!(
                call.env.get(k).map(String::as_str),
                Some(v),
                "{k} for {call:?}"
            );
        }
    }
    for (key, want) in [
        ("core.proxy_http", "http://squid.internal:3128"),
        ("core.proxy_https", "http://squid.internal:3129"),
        ("core.proxy_ignore_hosts", "127.0.0.1,localhost,::1"),
    ] {
        assert_eq!(h.lxd.lxc(&["config", "get", key]), want, "{key}");
    }
    assert_eq!(
        h.lxd.writes().iter().filter(|w| *w == "PATCH /1.0").count(),
        1,
        "one request sets all three"
    );

    as_installed(&h);
    let lxd_writes = h.lxd.writes();
    assert!(h.run("hooks/install").success());
    assert_eq!(
        h.lxd.writes(),
        lxd_writes,
        "the same proxy is not set again"
    );
}

#[test]
fn the_policy_service_secrets_live_only_in_a_0600_env_file() {
    let Some(h) = fresh_ubuntu() else { return };
    assert!(h.run("hooks/install").success());
    let state = root(&h).join(UNIT_STATE);
    let env_file = state.join("policy-server.env");
    let env_text = fs::read_to_string(&env_file).unwrap();
    assert_eq!(mode(&env_file), 0o600);
    assert_eq!(fs::metadata(&env_file).unwrap().uid(), nix_uid());
    let charm_token = fs::read_to_string(state.join("charm-token")).unwrap();
    let charm_token = charm_token.trim();
    assert_eq!(charm_token.len(), 64);
    assert_eq!(mode(&state.join("charm-token")), 0o600);
    assert!(env_text.contains(&format!("GITHUB_TOKEN={TOKEN}\n")));
    assert!(env_text.contains(&format!("CHARM_TOKEN={charm_token}\n")));
    assert!(env_text.contains("GITHUB_URL=https://127.0.0.1:9\n"));
    assert!(
        !env_text.contains("POLICY_DOCUMENT"),
        "the unit's state directory holds it"
    );

    let unit = fs::read_to_string(
        root(&h).join("etc/systemd/system/github-runner-policy-github-runner-0.service"),
    )
    .unwrap();
    // The service runs its own copy of the charm's binary, which its dynamic user can
    // run, on the address LXD gave the bridge.
    let bridge = h.bridge_address();
    assert!(unit.contains(&format!(
        "ExecStart=/usr/local/lib/github-runner/github-runner-0/github-runner policy-server --bind {bridge}:{POLICY_PORT} --charm-bind 127.0.0.1:{POLICY_PORT} --events-log /var/log/github-runner-policy-github-runner-0/events.log --unit github-runner/0\n"
    )));
    let copy = root(&h).join("usr/local/lib/github-runner/github-runner-0/github-runner");
    assert_eq!(mode(&copy), 0o755);
    assert!(fs::read(&copy).unwrap() == fs::read(h.charm_dir.join("github-runner")).unwrap());
    assert!(unit.contains(
        "EnvironmentFile=/var/lib/github-runner/units/github-runner-0/policy-server.env\n"
    ));
    assert!(!unit.contains(TOKEN) && !unit.contains(charm_token));
    for call in h.calls() {
        let text = format!("{:?} {:?}", call.args, call.stdin);
        assert!(
            !text.contains(TOKEN) && !text.contains(charm_token),
            "{call:?}"
        );
    }

    // A token change rewrites the env file and restarts, keeping the charm token.
    as_installed(&h);
    h.clear_calls();
    h.set_config(json!({"path": "acme/widgets", "token": "ghp_rotatedToken"}));
    assert!(h.run("hooks/upgrade-charm").success());
    let systemctl: Vec<String> = host_calls(&h)
        .into_iter()
        .filter(|c| c.starts_with("systemctl"))
        .collect();
    // The manager restarts on the new binary; its unit is new (first upgrade here).
    assert_eq!(
        systemctl,
        [
            "systemctl restart github-runner-policy-github-runner-0.service",
            "systemctl daemon-reload",
            "systemctl enable github-runner-manager-github-runner-0.service",
            "systemctl restart github-runner-manager-github-runner-0.service",
        ]
    );
    assert!(fs::read_to_string(&env_file)
        .unwrap()
        .contains(&format!("CHARM_TOKEN={charm_token}\n")));
    assert_eq!(mode(&env_file), 0o600);
}

#[test]
fn the_state_dir_is_made_private_even_when_it_exists() {
    let Some(h) = fresh_ubuntu() else { return };
    let state = root(&h).join(UNIT_STATE);
    fs::create_dir_all(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o755)).unwrap();
    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    assert_eq!(mode(&state), 0o700);
}

#[test]
fn the_firewall_is_kept_for_the_boot_unit_which_install_enables() {
    let Some(h) = fresh_ubuntu() else { return };
    assert!(h.run("hooks/install").success());
    let state = root(&h).join(UNIT_STATE);
    // The ruleset install loaded is the one the boot unit loads, root-only.
    let loaded = h
        .calls_of("nft")
        .find(|c| c.args == ["-f", "-"])
        .and_then(|c| c.stdin)
        .unwrap();
    let record = state.join("firewall.nft");
    assert_eq!(fs::read_to_string(&record).unwrap(), loaded);
    assert!(loaded.contains("set always-refused {"), "{loaded}");
    assert_eq!(mode(&record), 0o600);
    assert_eq!(
        fs::read_to_string(state.join("firewall.listing")).unwrap(),
        NFT_TABLE
    );
    assert_eq!(mode(&state.join("firewall.listing")), 0o600);
    let unit = root(&h).join("etc/systemd/system/github-runner-firewall-github-runner-0.service");
    assert_eq!(
        fs::read_to_string(unit).unwrap(),
        github_runner::firewall::boot::render_boot_unit(std::path::Path::new(
            "/var/lib/github-runner/units/github-runner-0/firewall.nft"
        ))
    );
}

#[test]
fn bridge_sysctls_persist_and_are_applied_once() {
    let Some(mut h) = fresh_ubuntu() else { return };
    // Every program the charm runs is a recording stand-in.
    h.isolate();
    assert!(h.run("hooks/install").success());
    let conf = root(&h).join("etc/sysctl.d/60-github-runner-bridge.conf");
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        "# Managed by the github-runner charm: bridged runner traffic goes through the host's firewall.\n\
         net.bridge.bridge-nf-call-iptables = 1\n\
         net.bridge.bridge-nf-call-ip6tables = 1\n"
    );
    assert_eq!(mode(&conf), 0o644);
    let modules = root(&h).join("etc/modules-load.d/github-runner.conf");
    assert_eq!(fs::read_to_string(modules).unwrap(), "br_netfilter\n");
    let sysctl: Vec<Vec<String>> = h.calls_of("sysctl").map(|c| c.args).collect();
    assert_eq!(
        sysctl,
        [[
            "-w",
            "net.bridge.bridge-nf-call-iptables=1",
            "net.bridge.bridge-nf-call-ip6tables=1"
        ]]
    );

    // With the values live, a second install writes and runs nothing for them.
    as_installed(&h);
    let before = snapshot(&root(&h));
    h.clear_calls();
    assert!(h.run("hooks/install").success());
    assert_eq!(h.calls_of("sysctl").count(), 0);
    assert_eq!(h.calls_of("modprobe").count(), 0);
    assert_eq!(snapshot(&root(&h)), before);
}
