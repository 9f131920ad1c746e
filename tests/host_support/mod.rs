//! Shared by the host install tests: a harness on a fresh Ubuntu host with the host
//! commands shadowed, the host's files relocated into a temporary root
//! (`GITHUB_RUNNER_ROOT`) and a real LXD daemon of its own for the charm's LXD setup;
//! answers for a host after a completed install, and views of what the charm did.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::harness::{Harness, Reply, HOST_COMMANDS};
use crate::lxd_daemon_support::Daemon;
use serde_json::json;

pub const TOKEN: &str = "ghp_integrationSecret0123456789";
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

/// What `nft` lists once the charm's table is loaded (the chains apply checks for):
/// the table of the harness's unit, `github-runner/0`.
pub const NFT_TABLES: &str = "table inet github-runner-github-runner-0\n";
pub const NFT_TABLE: &str = "table inet github-runner-github-runner-0 {\n\tset denylist {\n\t}\n\tset always-refused {\n\t}\n\tchain input {\n\t}\n\tchain runner-input {\n\t}\n\tchain forward {\n\t}\n\tchain runner-forward {\n\t}\n}\n";

/// Scripts `nft` as a kernel that takes the charm's table.
pub fn script_nft(h: &Harness) {
    h.script("nft", &["list", "tables"], Reply::ok(NFT_TABLES));
    h.script("nft", &["list", "table"], Reply::ok(NFT_TABLE));
}

/// The charm's host: the harness it runs under, and the LXD daemon it sets up.
pub struct Host {
    pub h: Harness,
    pub lxd: Daemon,
}

impl Deref for Host {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

impl DerefMut for Host {
    fn deref_mut(&mut self) -> &mut Harness {
        &mut self.h
    }
}

impl Host {
    /// The host's address on the bridge LXD setup made.
    pub fn bridge_address(&self) -> String {
        let cidr = self.lxd.lxc(&["network", "get", "lxdbr0", "ipv4.address"]);
        cidr.split('/').next().unwrap().to_string()
    }
}

/// A harness on a fresh Ubuntu host: nothing installed, a fresh LXD daemon; `None`
/// (after saying why) where no LXD daemon can run.
pub fn fresh_ubuntu() -> Option<Host> {
    let lxd = Daemon::start()?;
    let mut h = Harness::new();
    h.shadow(HOST_COMMANDS);
    h.extra_env
        .insert("GITHUB_RUNNER_ROOT".into(), root(&h).display().to_string());
    h.extra_env
        .insert("LXD_DIR".into(), lxd.dir().display().to_string());
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
    script_nft(&h);
    Some(Host { h, lxd })
}

/// Scripts the stand-ins to answer as the host looks after a completed install (LXD,
/// being real, is as install left it).
pub fn as_installed(h: &Harness) {
    for tool in ["snap", "apt-get", "dpkg-query"] {
        h.clear_script(tool);
    }
    script_nft(h);
    let dpkg: String = PACKAGES
        .iter()
        .map(|p| format!("{p} installed\n"))
        .collect();
    h.script("dpkg-query", &[], Reply::ok(&dpkg));
    h.script("snap", &["list"], Reply::ok("Name Version\nlxd 5.21\n"));
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

/// Checks that every file of `before` is in `after` unchanged, and that the only new
/// ones are the runner manager's (its unit, the settings hooks hand it, where its
/// metrics endpoint listens and its lifecycle log), which an upgrade to a version with
/// the manager writes once.
pub fn assert_only_manager_files_added(
    before: &BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)>,
    after: &BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)>,
) {
    for (path, was) in before {
        assert_eq!(
            after.get(path),
            Some(was),
            "{} was rewritten",
            path.display()
        );
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        let name = path.file_name().unwrap().to_string_lossy();
        let manager = ["manager.json", "metrics-endpoint", "events.log"].contains(&name.as_ref())
            || name.starts_with("github-runner-manager-");
        assert!(manager, "new file {}", path.display());
    }
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
            } else if meta.is_file() {
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
