//! What the test of a new application beside the single-unit layout watches: that
//! layout as the old charm left it (its files, its table, its policy process), taken
//! before the new unit's hooks and compared after, so that "untouched" is measured.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::{table, PolicyService, UpgradeUnit, KEY, OLD_BOOT_UNIT, OLD_POLICY_UNIT, OLD_TABLE};
use crate::firewall_support::run;

/// The old layout's files whose bytes must not change: its services' unit files, its
/// timer, and under its state directory the charm token, the policy service's
/// environment (which holds the GitHub token) and the firewall's record.
fn watched_files(unit: &UpgradeUnit) -> Vec<PathBuf> {
    let timer = format!("ghr-reconcile-{KEY}.timer");
    let units = [OLD_POLICY_UNIT, OLD_BOOT_UNIT, timer.as_str()].map(|u| unit.unit_file(u));
    let state = unit.path("/var/lib/github-runner");
    let files = ["charm-token", "policy-server.env", "firewall.nft"].map(|f| state.join(f));
    units.into_iter().chain(files).collect()
}

/// The old layout at one moment.
#[derive(Debug, PartialEq, Eq)]
pub struct OldLayout {
    files: Vec<(PathBuf, Vec<u8>)>,
    /// The old policy service's own copy of the charm binary: inode, size and mtime
    /// (it is large; a rewrite changes one of them).
    binary: (u64, u64, i64),
    /// `nft list table inet github-runner`.
    table: String,
    /// The process listening on the old service's loopback address.
    policy_pid: u32,
}

impl OldLayout {
    /// Reads it; every part must be there.
    pub fn take(unit: &UpgradeUnit) -> OldLayout {
        let files = watched_files(unit).into_iter().map(|path| {
            let bytes = fs::read(&path);
            let bytes = bytes.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        });
        let binary = fs::metadata(old_binary(unit)).expect("the old policy binary");
        let policy = unit.policy.as_ref().expect("the old policy service");
        OldLayout {
            files: files.collect(),
            binary: (binary.ino(), binary.size(), binary.mtime()),
            table: table(OLD_TABLE).unwrap_or_else(|| panic!("no table inet {OLD_TABLE}")),
            policy_pid: old_policy_pid(unit, policy.charm_bind),
        }
    }

    /// Panics naming the first part that differs from `self`.
    pub fn assert_same(&self, unit: &UpgradeUnit) {
        let now = OldLayout::take(unit);
        for ((path, before), (_, after)) in self.files.iter().zip(&now.files) {
            assert!(before == after, "{} changed", path.display());
        }
        assert_eq!(
            now.binary, self.binary,
            "the old policy binary was replaced"
        );
        assert_eq!(now.table, self.table, "table inet {OLD_TABLE} changed");
        assert_eq!(now.policy_pid, self.policy_pid, "another policy process");
    }
}

/// Where the old charm put the binary its policy service runs.
fn old_binary(unit: &UpgradeUnit) -> PathBuf {
    unit.path("/usr/local/lib/github-runner/github-runner")
}

/// The PID listening on `addr`, which must run the old layout's policy binary.
fn old_policy_pid(unit: &UpgradeUnit, addr: SocketAddr) -> u32 {
    let pid = listener_pid(addr).unwrap_or_else(|| panic!("nothing listens on {addr}"));
    let exe = fs::read_link(format!("/proc/{pid}/exe")).expect("the listener's program");
    assert_eq!(exe, old_binary(unit), "{addr} is served by another program");
    pid
}

/// The PID of the process listening on TCP `addr` in this network namespace (`ss`).
pub fn listener_pid(addr: SocketAddr) -> Option<u32> {
    let filter = format!("sport = :{}", addr.port());
    let out = run(&["ss", "-Hltnp", &filter]).ok()?;
    let wanted = addr.to_string();
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some(wanted.as_str()))?;
    let after = line.split("pid=").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl PolicyService {
    /// `GET /health` on the charm's listener with the service's charm token: it is up
    /// and GitHub answers it with its token.
    pub fn health(&self) -> Result<(), String> {
        let client = policy_service::client::PolicyClient::new(
            &policy_service::local_url(self.charm_bind.port()),
            ghr_types::Token::new(self.env["CHARM_TOKEN"].clone()),
        );
        client.health().map_err(|e| e.to_string())
    }
}

/// A package asked for a reboot (a new kernel), as `/var/run/reboot-required` under the
/// machine's root says; dropping it takes the request back.
pub struct RebootPending(PathBuf);

impl RebootPending {
    pub fn new(unit: &UpgradeUnit) -> RebootPending {
        let file = unit.path("/var/run/reboot-required");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, "*** System restart required ***\n").unwrap();
        RebootPending(file)
    }
}

impl Drop for RebootPending {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
