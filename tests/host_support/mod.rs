//! Shared by the host install tests: a harness on a fresh Ubuntu host with the host
//! commands shadowed and the host's files relocated into a temporary root
//! (`GITHUB_RUNNER_ROOT`), answers for a host after a completed install, and views of
//! what the charm did.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::harness::{Harness, Reply, HOST_COMMANDS};
use serde_json::json;

pub const TOKEN: &str = "ghp_integrationSecret0123456789";
pub const FRESH_PROFILE: &str =
    "config: {}\ndevices:\n  eth0:\n    name: eth0\n    network: lxdbr0\n    type: nic\n  root:\n    path: /\n    pool: default\n    type: disk\nname: default\n";
pub const HARDENED_PROFILE: &str = "config: {}\ndevices:\n  eth0:\n    name: eth0\n    network: lxdbr0\n    security.ipv4_filtering: \"true\"\n    security.ipv6_filtering: \"true\"\n    security.mac_filtering: \"true\"\n    security.port_isolation: \"true\"\n    type: nic\nname: default\n";
pub const PACKAGES: &[&str] = &[
    "nftables",
    "cpu-checker",
    "libvirt-clients",
    "libvirt-daemon-driver-qemu",
    "apparmor-utils",
    "linux-generic",
];
pub const LOCKED: &str = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)\n";

pub fn root(h: &Harness) -> PathBuf {
    h.path().join("root")
}

/// What `nft` lists once the charm's table is loaded (the chains apply checks for).
pub const NFT_TABLES: &str = "table inet github-runner\n";
pub const NFT_TABLE: &str = "table inet github-runner {\n\tset denylist {\n\t}\n\tset always-refused {\n\t}\n\tchain input {\n\t}\n\tchain runner-input {\n\t}\n\tchain forward {\n\t}\n\tchain runner-forward {\n\t}\n}\n";

/// Scripts `nft` as a kernel that takes the charm's table.
pub fn script_nft(h: &Harness) {
    h.script("nft", &["list", "tables"], Reply::ok(NFT_TABLES));
    h.script("nft", &["list", "table"], Reply::ok(NFT_TABLE));
}

/// A harness on a fresh Ubuntu host: nothing installed, LXD not initialised.
pub fn fresh_ubuntu() -> Harness {
    let mut h = Harness::new();
    h.shadow(HOST_COMMANDS);
    h.extra_env
        .insert("GITHUB_RUNNER_ROOT".into(), root(&h).display().to_string());
    // A closed loopback port: a hook that goes on to reconcile never leaves the machine.
    h.set_config(
        json!({"path": "acme/widgets", "token": TOKEN, "github-url": "https://127.0.0.1:9"}),
    );
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
    script_nft(&h);
    h
}

/// Scripts the stand-ins to answer as the host looks after a completed install, with
/// LXD's proxy settings as `proxy` (key, value).
pub fn as_installed(h: &Harness, proxy: &[(&str, &str)]) {
    for tool in ["snap", "lxc", "apt-get", "dpkg-query"] {
        h.clear_script(tool);
    }
    script_nft(h);
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
    let bridge = root(h).join("proc/sys/net/bridge");
    fs::create_dir_all(&bridge).unwrap();
    for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        fs::write(bridge.join(key), "1\n").unwrap();
    }
    let _ = fs::remove_file(root(h).join("var/run/reboot-required"));
}

pub fn host_calls(h: &Harness) -> Vec<String> {
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
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            // Reconcile bookkeeping and the status a hook left, not host setup.
            let bookkeeping = ["reconcile.lock", "last-reconcile.json", "last-problem.json"];
            if bookkeeping.iter().any(|name| path.ends_with(name)) {
                continue;
            }
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

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn nix_uid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}
