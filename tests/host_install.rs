//! install and upgrade-charm through the real binary, with apt-get, dpkg, snap, lxd, lxc,
//! modprobe and systemctl replaced by recording stand-ins and the host's files relocated
//! into a temporary root (`GITHUB_RUNNER_ROOT`).

mod harness;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use harness::{Harness, Reply, HOST_COMMANDS};
use serde_json::json;

const TOKEN: &str = "ghp_integrationSecret0123456789";
const FRESH_PROFILE: &str =
    "config: {}\ndevices:\n  eth0:\n    name: eth0\n    network: lxdbr0\n    type: nic\n  root:\n    path: /\n    pool: default\n    type: disk\nname: default\n";
const HARDENED_PROFILE: &str = "config: {}\ndevices:\n  eth0:\n    name: eth0\n    network: lxdbr0\n    security.ipv4_filtering: \"true\"\n    security.ipv6_filtering: \"true\"\n    security.mac_filtering: \"true\"\n    security.port_isolation: \"true\"\n    type: nic\nname: default\n";
const PACKAGES: &[&str] = &[
    "nftables",
    "cpu-checker",
    "libvirt-clients",
    "libvirt-daemon-driver-qemu",
    "apparmor-utils",
    "linux-generic",
];
const LOCKED: &str = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)\n";

fn root(h: &Harness) -> PathBuf {
    h.path().join("root")
}

/// A harness on a fresh Ubuntu host: nothing installed, LXD not initialised.
fn fresh_ubuntu() -> Harness {
    let mut h = Harness::new();
    h.shadow(HOST_COMMANDS);
    h.extra_env
        .insert("GITHUB_RUNNER_ROOT".into(), root(&h).display().to_string());
    h.set_config(json!({"path": "acme/widgets", "token": TOKEN}));
    fs::create_dir_all(root(&h).join("etc")).unwrap();
    fs::write(
        root(&h).join("etc/os-release"),
        "NAME=\"Ubuntu\"\nID=ubuntu\n",
    )
    .unwrap();
    h.script(
        "snap",
        &["list"],
        Reply::fail(1, "error: no matching snaps installed"),
    );
    h.script("lxc", &["network", "get"], Reply::ok("10.20.30.1/24\n"));
    h.script("lxc", &["profile", "show"], Reply::ok(FRESH_PROFILE));
    h
}

/// Scripts the stand-ins to answer as the host looks after a completed install, with
/// LXD's proxy settings as `proxy` (key, value).
fn as_installed(h: &Harness, proxy: &[(&str, &str)]) {
    for tool in ["snap", "lxc", "apt-get", "dpkg-query"] {
        h.clear_script(tool);
    }
    let dpkg: String = PACKAGES
        .iter()
        .map(|p| format!("{p} installed\n"))
        .collect();
    h.script("dpkg-query", &[], Reply::ok(&dpkg));
    h.script("snap", &["list"], Reply::ok("Name Version\nlxd 5.21\n"));
    h.script(
        "lxc",
        &["storage", "list"],
        Reply::ok("default,dir,,,2,CREATED\n"),
    );
    h.script(
        "lxc",
        &["network", "list"],
        Reply::ok("lxdbr0,bridge,YES,10.20.30.1/24,none,,2,CREATED\n"),
    );
    h.script("lxc", &["network", "get"], Reply::ok("10.20.30.1/24\n"));
    h.script("lxc", &["profile", "show"], Reply::ok(HARDENED_PROFILE));
    let config: String = proxy.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect();
    h.script(
        "lxc",
        &["config", "show"],
        Reply::ok(&format!("config:\n{config}")),
    );
    fs::create_dir_all(root(h).join("sys/module/br_netfilter")).unwrap();
    let _ = fs::remove_file(root(h).join("var/run/reboot-required"));
}

fn host_calls(h: &Harness) -> Vec<String> {
    h.calls()
        .into_iter()
        .filter(|c| HOST_COMMANDS.contains(&c.tool.as_str()) || c.tool == "juju-reboot")
        .map(|c| {
            format!("{} {}", c.tool, c.args.join(" "))
                .trim_end()
                .to_string()
        })
        .collect()
}

/// Every file under the root with its content, mode and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let content = fs::read(&path).unwrap();
                out.insert(
                    path,
                    (content, meta.mode(), meta.mtime(), meta.mtime_nsec()),
                );
            }
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_fresh_install_runs_every_step_in_order() {
    let h = fresh_ubuntu();
    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    let want = [
        "dpkg-query -W -f=${Package} ${db:Status-Status}\\n nftables cpu-checker libvirt-clients libvirt-daemon-driver-qemu apparmor-utils linux-generic lxd lxd-client",
        "apt-get update",
        "apt-get install -y nftables cpu-checker libvirt-clients libvirt-daemon-driver-qemu apparmor-utils linux-generic",
        "snap list lxd",
        "snap install lxd",
        "modprobe br_netfilter",
        "lxd waitready --timeout 120",
        "lxc storage list --format csv",
        "lxc network list --format csv",
        "lxd init --preseed",
        "lxc profile show default",
        "lxc profile device set default eth0 security.mac_filtering=true security.ipv4_filtering=true security.ipv6_filtering=true security.port_isolation=true",
        "lxc config show",
        "lxc network get lxdbr0 ipv4.address",
        "systemctl daemon-reload",
        "systemctl enable github-runner-policy.service",
        "systemctl restart github-runner-policy.service",
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
            "host ready",
        ]
    );
    assert_eq!(h.last_status().unwrap().0, "active");
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
fn the_preseed_goes_on_stdin_with_the_bridge_and_no_ipv6() {
    let mut h = fresh_ubuntu();
    h.extra_env
        .insert("HOOK_STANDIN_READ_STDIN".into(), "lxd".into());
    assert!(h.run("hooks/install").success());
    let init = h
        .calls_of("lxd")
        .find(|c| c.args.first().map(String::as_str) == Some("init"))
        .unwrap();
    let preseed = init.stdin.unwrap();
    assert!(preseed.contains("name: lxdbr0"), "{preseed}");
    assert!(preseed.contains("ipv6.address: none"), "{preseed}");
    assert!(preseed.contains("driver: dir"), "{preseed}");
}

#[test]
fn a_second_install_changes_nothing() {
    let h = fresh_ubuntu();
    assert!(h.run("hooks/install").success());
    as_installed(&h, &[]);
    let before = snapshot(&root(&h));
    h.clear_calls();

    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    assert_eq!(
        host_calls(&h),
        [
            "dpkg-query -W -f=${Package} ${db:Status-Status}\\n nftables cpu-checker libvirt-clients libvirt-daemon-driver-qemu apparmor-utils linux-generic lxd lxd-client",
            "snap list lxd",
            "lxd waitready --timeout 120",
            "lxc storage list --format csv",
            "lxc network list --format csv",
            "lxc profile show default",
            "lxc config show",
            "lxc network get lxdbr0 ipv4.address",
        ],
        "only reads on a second install"
    );
    assert_eq!(snapshot(&root(&h)), before, "no file was rewritten");
    assert!(h.reboots().is_empty());
    assert_eq!(
        h.last_status().unwrap(),
        ("active".into(), "host ready".into())
    );
}

#[test]
fn upgrade_charm_refreshes_the_snap_and_restarts_the_new_binary() {
    let h = fresh_ubuntu();
    assert!(h.run("hooks/install").success());
    as_installed(&h, &[]);
    let before = snapshot(&root(&h));
    h.clear_calls();
    assert!(h.run("hooks/upgrade-charm").success());
    let calls = host_calls(&h);
    assert!(calls.contains(&"snap refresh lxd".to_string()), "{calls:?}");
    let systemctl: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("systemctl"))
        .collect();
    assert_eq!(
        systemctl,
        ["systemctl restart github-runner-policy.service"]
    );
    assert_eq!(snapshot(&root(&h)), before, "no file was rewritten");
}

#[test]
fn apt_exit_100_runs_dpkg_configure_and_retries() {
    let h = fresh_ubuntu();
    h.script(
        "apt-get",
        &["install"],
        Reply::fail(100, "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n").times(1),
    );
    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    let calls = host_calls(&h);
    let apt: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("apt-get") || c.starts_with("dpkg "))
        .collect();
    assert_eq!(apt.len(), 4, "{apt:?}");
    assert_eq!(apt[0], "apt-get update");
    assert!(apt[1].starts_with("apt-get install -y nftables"));
    assert_eq!(apt[2], "dpkg --configure -a");
    assert_eq!(apt[3], apt[1]);
}

#[test]
fn apt_failing_twice_leaves_a_status_naming_the_command() {
    let h = fresh_ubuntu();
    h.script(
        "apt-get",
        &["update"],
        Reply::fail(100, "E: The repository is broken\n"),
    );
    let run = h.run("hooks/install");
    assert!(!run.success(), "Juju must retry the hook");
    let (status, message) = h.last_status().unwrap();
    assert_eq!(status, "maintenance");
    assert_eq!(
        message,
        "installing packages failed: `apt-get update` failed (exit 100): E: The repository is broken"
    );
    assert!(!host_calls(&h).iter().any(|c| c.starts_with("snap install")));
}

#[test]
fn a_held_apt_lock_is_waited_for_then_the_install_goes_on() {
    let h = fresh_ubuntu();
    h.script("apt-get", &["update"], Reply::fail(100, LOCKED).times(1));
    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    let calls = host_calls(&h);
    assert_eq!(calls.iter().filter(|c| *c == "apt-get update").count(), 2);
    assert!(
        !calls.iter().any(|c| c.starts_with("dpkg --configure")),
        "{calls:?}"
    );
}

#[test]
fn lock_contention_is_bounded() {
    let mut h = fresh_ubuntu();
    h.extra_env
        .insert("GITHUB_RUNNER_APT_LOCK_WAIT".into(), "4".into());
    h.script("apt-get", &["update"], Reply::fail(100, LOCKED));
    let started = std::time::Instant::now();
    let run = h.run("hooks/install");
    assert!(!run.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Tries at 0 s, 1 s and 3 s; waiting 4 s more would pass the deadline.
    assert_eq!(h.calls_of("apt-get").count(), 3);
    assert_eq!(
        h.last_status().unwrap(),
        (
            "maintenance".into(),
            "installing packages failed: the apt lock was still held after 4s; another package operation is running".into()
        )
    );
}

#[test]
fn a_required_reboot_is_requested_at_the_end() {
    let h = fresh_ubuntu();
    fs::create_dir_all(root(&h).join("var/run")).unwrap();
    fs::write(
        root(&h).join("var/run/reboot-required"),
        "*** System restart required ***\n",
    )
    .unwrap();
    assert!(h.run("hooks/install").success());
    assert_eq!(
        h.reboots(),
        [Vec::<String>::new()],
        "juju-reboot without --now"
    );
    assert_eq!(host_calls(&h).last().unwrap(), "juju-reboot");
    assert_eq!(h.last_status().unwrap().0, "maintenance");
}

#[test]
fn a_snap_failure_leaves_a_clear_status_and_retries() {
    let h = fresh_ubuntu();
    h.script(
        "snap",
        &["install"],
        Reply::fail(1, "error: unable to contact snap store\n"),
    );
    let run = h.run("hooks/install");
    assert!(!run.success());
    assert_eq!(
        h.last_status().unwrap(),
        (
            "maintenance".into(),
            "installing the lxd snap failed: `snap install lxd` failed (exit 1): error: unable to contact snap store".into()
        )
    );
    assert!(!host_calls(&h).iter().any(|c| c.starts_with("lxd ")));
}

#[test]
fn insecure_test_mode_leaves_the_nic_unhardened() {
    let h = fresh_ubuntu();
    h.set_config(json!({"path": "acme/widgets", "token": TOKEN, "test-mode": "insecure"}));
    assert!(h.run("hooks/install").success());
    assert!(!host_calls(&h).iter().any(|c| c.starts_with("lxc profile")));
}

#[test]
fn proxy_settings_reach_apt_snap_and_lxd() {
    let mut h = fresh_ubuntu();
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
    let calls = host_calls(&h);
    for want in [
        "lxc config set core.proxy_http http://squid.internal:3128",
        "lxc config set core.proxy_https http://squid.internal:3129",
        "lxc config set core.proxy_ignore_hosts 127.0.0.1,localhost,::1",
    ] {
        assert!(calls.contains(&want.to_string()), "{want} in {calls:?}");
    }

    as_installed(
        &h,
        &[
            ("core.proxy_http", "http://squid.internal:3128"),
            ("core.proxy_https", "http://squid.internal:3129"),
            ("core.proxy_ignore_hosts", "127.0.0.1,localhost,::1"),
        ],
    );
    h.clear_calls();
    assert!(h.run("hooks/install").success());
    assert!(!host_calls(&h)
        .iter()
        .any(|c| c.starts_with("lxc config set")));
}

#[test]
fn the_policy_service_secrets_live_only_in_a_0600_env_file() {
    let h = fresh_ubuntu();
    assert!(h.run("hooks/install").success());
    let state = root(&h).join("var/lib/github-runner");
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
    assert!(env_text.contains("GITHUB_URL=https://github.com\n"));
    assert!(env_text.contains("POLICY_DOCUMENT=/var/lib/github-runner/policy.json\n"));

    let unit = fs::read_to_string(root(&h).join("etc/systemd/system/github-runner-policy.service"))
        .unwrap();
    let binary = h.charm_dir.join("github-runner");
    assert!(unit.contains(&format!(
        "ExecStart={} policy-server --bind 10.20.30.1:8080 --bind 127.0.0.1:8080\n",
        binary.display()
    )));
    assert!(unit.contains("EnvironmentFile=/var/lib/github-runner/policy-server.env\n"));
    assert!(!unit.contains(TOKEN) && !unit.contains(charm_token));
    for call in h.calls() {
        let text = format!("{:?} {:?}", call.args, call.stdin);
        assert!(
            !text.contains(TOKEN) && !text.contains(charm_token),
            "{call:?}"
        );
    }

    // A token change rewrites the env file and restarts, keeping the charm token.
    as_installed(&h, &[]);
    h.clear_calls();
    h.set_config(json!({"path": "acme/widgets", "token": "ghp_rotatedToken"}));
    assert!(h.run("hooks/upgrade-charm").success());
    let systemctl: Vec<String> = host_calls(&h)
        .into_iter()
        .filter(|c| c.starts_with("systemctl"))
        .collect();
    assert_eq!(
        systemctl,
        ["systemctl restart github-runner-policy.service"]
    );
    assert!(fs::read_to_string(&env_file)
        .unwrap()
        .contains(&format!("CHARM_TOKEN={charm_token}\n")));
    assert_eq!(mode(&env_file), 0o600);
}

#[test]
fn invalid_config_blocks_install_before_any_host_command() {
    let h = fresh_ubuntu();
    h.set_config(json!({"path": "acme/widgets", "token": ""}));
    let run = h.run("hooks/install");
    assert!(run.success());
    assert_eq!(h.last_status().unwrap().0, "blocked");
    assert!(host_calls(&h).is_empty(), "{:?}", host_calls(&h));
    assert!(!root(&h).join("var").exists());
}

fn nix_uid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}
