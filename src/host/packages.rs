//! Debian packages and snaps: which packages to add or remove (pure, from `dpkg-query`),
//! `apt-get` with recovery (`dpkg --configure -a` when apt exits 100) and a bounded wait
//! on the package lock, and the `lxd` snap.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Clock, Cmd, CmdOutput, Commands, HostError};

/// Packages the runners' host needs on every distribution.
pub const BASE_PACKAGES: &[&str] = &[
    "nftables",
    "cpu-checker",
    "libvirt-clients",
    "libvirt-daemon-driver-qemu",
    "apparmor-utils",
];

/// The distribution's LXD, replaced by the snap on Ubuntu.
pub const DEB_LXD: &[&str] = &["lxd", "lxd-client"];

/// What apt must do; empty when the host already matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackagePlan {
    pub install: Vec<String>,
    pub remove: Vec<String>,
}

impl PackagePlan {
    pub fn is_empty(&self) -> bool {
        self.install.is_empty() && self.remove.is_empty()
    }
}

/// Names that `dpkg-query -W -f='${Package} ${db:Status-Status}\n'` reports installed.
pub fn parse_installed(dpkg_query: &str) -> BTreeSet<String> {
    dpkg_query
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, status)| status.trim() == "installed")
        .map(|(name, _)| name.trim().to_string())
        .collect()
}

pub fn plan(installed: &BTreeSet<String>, wanted: &[&str], unwanted: &[&str]) -> PackagePlan {
    PackagePlan {
        install: wanted
            .iter()
            .filter(|p| !installed.contains(**p))
            .map(|p| p.to_string())
            .collect(),
        remove: unwanted
            .iter()
            .filter(|p| installed.contains(**p))
            .map(|p| p.to_string())
            .collect(),
    }
}

/// How long to wait for a package lock held by someone else (unattended-upgrades, a
/// cloud-init run), polling with a doubling delay. Tests shorten the deadline through
/// `GITHUB_RUNNER_APT_LOCK_WAIT`, read at the edge (`charm::deps::Knobs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockWait {
    pub deadline: Duration,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for LockWait {
    fn default() -> Self {
        LockWait {
            deadline: Duration::from_secs(300),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// apt and dpkg say the lock is held in these words (exit 100 for apt, 2 for dpkg).
fn lock_held(out: &CmdOutput) -> bool {
    let text = out.stderr.as_str();
    text.contains("Could not get lock")
        || text.contains("Unable to acquire the dpkg frontend lock")
        || text.contains("Unable to lock")
        || text.contains("frontend lock was locked by another process")
        || text.contains("is another process using it?")
}

/// Runs apt-get and dpkg with the proxy environment, a non-interactive frontend, and
/// the retry rules.
pub struct Apt<'a> {
    pub commands: &'a dyn Commands,
    pub clock: &'a dyn Clock,
    /// Proxy variables and `DEBIAN_FRONTEND`.
    pub env: Vec<(String, String)>,
    pub lock_wait: LockWait,
}

impl Apt<'_> {
    /// Installed packages among `names`. dpkg-query exits 1 when one is unknown, yet still
    /// lists the others: its output is the answer either way.
    pub fn installed(&self, names: &[&str]) -> Result<BTreeSet<String>, HostError> {
        let mut cmd = Cmd::new(
            "dpkg-query",
            &["-W", "-f=${Package} ${db:Status-Status}\\n"],
        );
        cmd.args.extend(names.iter().map(|n| n.to_string()));
        let out = self.commands.run(&cmd)?;
        Ok(parse_installed(&out.stdout))
    }

    /// Applies `plan`: removes first (so a replaced package cannot conflict), then
    /// updates the index and installs. Does nothing for an empty plan.
    pub fn apply(&self, plan: &PackagePlan) -> Result<bool, HostError> {
        if plan.is_empty() {
            return Ok(false);
        }
        if !plan.remove.is_empty() {
            let mut args = vec!["remove".to_string(), "-y".into()];
            args.extend(plan.remove.iter().cloned());
            self.apt_get(&args)?;
        }
        if !plan.install.is_empty() {
            self.apt_get(&["update".into()])?;
            // Keep locally changed configuration files without asking: there is no one
            // to answer a dpkg conffile prompt in a hook.
            let mut args: Vec<String> = [
                "install",
                "-y",
                "-o",
                "Dpkg::Options::=--force-confdef",
                "-o",
                "Dpkg::Options::=--force-confold",
            ]
            .map(String::from)
            .to_vec();
            args.extend(plan.install.iter().cloned());
            self.apt_get(&args)?;
        }
        Ok(true)
    }

    /// One apt-get run. Exit 100 with a held lock: wait and retry until the deadline.
    /// Exit 100 otherwise (an interrupted dpkg): `dpkg --configure -a` once, then retry.
    pub fn apt_get(&self, args: &[String]) -> Result<CmdOutput, HostError> {
        let mut cmd = Cmd::new("apt-get", &[]).envs(&self.env);
        cmd.args = args.to_vec();
        let mut recovered = false;
        loop {
            let out = self.with_lock_wait(&cmd)?;
            if out.success() {
                return Ok(out);
            }
            if out.code == Some(100) && !recovered {
                log::warn!("{cmd} exited 100; running dpkg --configure -a and retrying");
                let fix = Cmd::new("dpkg", &["--configure", "-a"]).envs(&self.env);
                let fixed = self.with_lock_wait(&fix)?;
                if !fixed.success() {
                    return Err(failed(&fix, &fixed));
                }
                recovered = true;
                continue;
            }
            return Err(failed(&cmd, &out));
        }
    }

    fn with_lock_wait(&self, cmd: &Cmd) -> Result<CmdOutput, HostError> {
        let deadline = self.clock.now() + self.lock_wait.deadline;
        let mut delay = self.lock_wait.first_delay;
        loop {
            let out = self.commands.run(cmd)?;
            if out.success() || !lock_held(&out) {
                return Ok(out);
            }
            if self.clock.now() + delay > deadline {
                return Err(HostError::LockTimeout(self.lock_wait.deadline));
            }
            log::info!("{cmd}: package lock held, retrying in {delay:?}");
            self.clock.sleep(delay);
            delay = (delay * 2).min(self.lock_wait.max_delay);
        }
    }
}

pub(crate) fn failed(cmd: &Cmd, out: &CmdOutput) -> HostError {
    HostError::Failed {
        command: cmd.to_string(),
        status: out.status_text(),
        stderr: out.error_tail(),
    }
}

/// Runs `cmd` and turns a non-zero exit into [`HostError::Failed`].
pub(crate) fn run_ok(commands: &dyn Commands, cmd: &Cmd) -> Result<CmdOutput, HostError> {
    let out = commands.run(cmd)?;
    if out.success() {
        Ok(out)
    } else {
        Err(failed(cmd, &out))
    }
}

/// Installs the `lxd` snap when missing; refreshes it when `refresh` (upgrade-charm).
/// Returns whether it ran an install or refresh.
pub fn ensure_lxd_snap(
    commands: &dyn Commands,
    env: &[(String, String)],
    refresh: bool,
) -> Result<bool, HostError> {
    let installed = commands.run(&Cmd::new("snap", &["list", "lxd"]))?.success();
    let action = match (installed, refresh) {
        (false, _) => "install",
        (true, true) => "refresh",
        (true, false) => return Ok(false),
    };
    run_ok(commands, &Cmd::new("snap", &[action, "lxd"]).envs(env))?;
    Ok(true)
}

#[cfg(test)]
#[path = "packages_tests.rs"]
mod tests;
