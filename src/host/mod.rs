//! The charm's own machine: packages, kernel, LXD initialisation, systemd units and the
//! files handed to runners. Pure renderers live next to thin appliers; every process is
//! started through [`commands::Commands`] and every path comes from [`HostPaths`], so
//! tests run the real logic against recording stand-ins inside a temporary root.

pub mod commands;
pub mod kernel;
pub mod lxd_setup;
pub mod machine;
pub mod packages;
pub mod policy_state;
pub mod runner_env;
pub mod site;
pub mod subid;
pub mod systemd;
pub mod units;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use commands::{Cmd, CmdOutput, CommandError, Commands, SystemCommands};
pub use ghr_types::clock::{Clock, SystemClock};

/// Where the host's files live. Production uses `/`; tests point `root` at a temporary
/// directory (the binary takes it from `GITHUB_RUNNER_ROOT`, read at the edge by
/// `charm::deps::Knobs`). A unit's own files are named after its key; without one
/// (`new`) the paths are those of the single-unit layout of earlier versions, which
/// the migration reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPaths {
    pub root: PathBuf,
    pub unit: Option<site::UnitKey>,
}

impl HostPaths {
    /// The single-unit layout of earlier versions (and unit tests' default).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostPaths {
            root: root.into(),
            unit: None,
        }
    }

    /// The paths of unit `unit` (`app/N`).
    pub fn for_unit(root: impl Into<PathBuf>, unit: &str) -> Self {
        HostPaths {
            root: root.into(),
            unit: Some(site::UnitKey::from_unit(unit)),
        }
    }

    /// The same machine's paths of the single-unit layout.
    pub fn legacy(&self) -> HostPaths {
        HostPaths::new(self.root.clone())
    }

    fn at(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// What every unit of the charm on this machine shares: the registry and its lock.
    pub fn machine_dir(&self) -> PathBuf {
        self.at("/var/lib/github-runner")
    }
    pub fn machine_registry(&self) -> PathBuf {
        self.machine_dir().join("units.json")
    }
    pub fn machine_lock(&self) -> PathBuf {
        self.machine_dir().join("units.lock")
    }
    pub fn meminfo(&self) -> PathBuf {
        self.at("/proc/meminfo")
    }

    /// This unit's state on the host: charm token, policy env file, the firewall's
    /// record, the lock, the pool's mount point.
    pub fn state_dir(&self) -> PathBuf {
        match &self.unit {
            Some(key) => self.machine_dir().join("units").join(key.as_str()),
            None => self.machine_dir(),
        }
    }

    /// Whether the single-unit layout of earlier versions is on this machine: its
    /// charm token or its policy service's unit.
    pub fn legacy_layout_present(&self) -> bool {
        let old = self.legacy();
        old.charm_token().exists() || old.systemd_dir().join(units::POLICY_UNIT).exists()
    }

    pub fn systemd_dir(&self) -> PathBuf {
        self.at("/etc/systemd/system")
    }
    pub fn os_release(&self) -> PathBuf {
        self.at("/etc/os-release")
    }
    pub fn reboot_required(&self) -> PathBuf {
        self.at("/var/run/reboot-required")
    }
    pub fn modules_load_dir(&self) -> PathBuf {
        self.at("/etc/modules-load.d")
    }
    /// Present while a kernel module is loaded.
    pub fn sys_module(&self, name: &str) -> PathBuf {
        self.at("/sys/module").join(name)
    }
    /// The cached runner application tarballs.
    pub fn app_dir(&self) -> PathBuf {
        self.state_dir().join("runner-app")
    }
    /// Mount point of the tmpfs under the runners' storage pool.
    pub fn pool_dir(&self) -> PathBuf {
        self.state_dir().join("pool")
    }
    /// The firewall ruleset the charm last loaded (0600): what the boot unit loads
    /// before LXD starts, and what a reconcile compares the rendered one with.
    pub fn firewall_record(&self) -> PathBuf {
        self.state_dir().join("firewall.nft")
    }
    /// The charm's table as `nft list table` showed it right after that load (0600):
    /// a later listing that differs means the table was altered.
    pub fn firewall_listing(&self) -> PathBuf {
        self.state_dir().join("firewall.listing")
    }
    /// Where the charm keeps its sysctl settings (bridged traffic through nftables).
    pub fn sysctl_dir(&self) -> PathBuf {
        self.at("/etc/sysctl.d")
    }
    /// A kernel setting's live value, e.g. `net.bridge.bridge-nf-call-iptables`.
    pub fn proc_sys(&self, key: &str) -> PathBuf {
        self.at("/proc/sys").join(key.replace('.', "/"))
    }
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir().join("reconcile.lock")
    }
    /// The last reconcile's counts, read by update-status.
    pub fn summary_file(&self) -> PathBuf {
        self.state_dir().join("last-reconcile.json")
    }
    pub fn draining_path_file(&self) -> PathBuf {
        self.state_dir().join("draining-path")
    }
    pub fn problem_file(&self) -> PathBuf {
        self.state_dir().join("last-problem.json")
    }
    /// What the hooks hand the runner manager (its config; holds the token).
    /// A GitHub App's installation token, shared by the unit's hooks and its runner
    /// manager (0600): one exchange an hour, whichever process needs it first.
    pub fn app_token_cache(&self) -> PathBuf {
        self.state_dir().join("github-app-token.json")
    }
    pub fn manager_settings(&self) -> PathBuf {
        self.state_dir().join("manager.json")
    }
    /// The runner managers' sockets (a folder only root enters).
    pub fn manager_run_dir(&self) -> PathBuf {
        self.at("/run/github-runner")
    }
    /// Where the manager of the unit in `slot` listens (short: a socket's path has at
    /// most 107 bytes, and a unit's key may be long).
    pub fn manager_socket(&self, slot: u8) -> PathBuf {
        self.manager_run_dir().join(format!("manager-{slot}.sock"))
    }
    /// The runner manager's lifecycle log (JSON lines, rotated), where the COS agent
    /// tails `/var/log/**/*log`.
    pub fn events_log(&self) -> PathBuf {
        let dir = self.at("/var/log/github-runner");
        match &self.unit {
            Some(key) => dir.join(key.as_str()).join("events.log"),
            None => dir.join("events.log"),
        }
    }
    /// Where the manager's metrics endpoint listens, one address per line.
    pub fn metrics_endpoint_record(&self) -> PathBuf {
        self.state_dir().join("metrics-endpoint")
    }
    pub fn charm_token(&self) -> PathBuf {
        self.state_dir().join("charm-token")
    }
    pub fn policy_env_file(&self) -> PathBuf {
        self.state_dir().join("policy-server.env")
    }
    /// The policy service's `StateDirectory=` name: one per unit.
    pub fn policy_state_name(&self) -> String {
        match &self.unit {
            Some(key) => format!("{}-{key}", units::POLICY_STATE_DIRECTORY),
            None => units::POLICY_STATE_DIRECTORY.to_string(),
        }
    }
    /// The policy service's lifecycle log (its refusals), in its `LogsDirectory=`, named
    /// as its state directory is. With `DynamicUser=` systemd keeps the folder under
    /// `/var/log/private/` (root only) and links this path to it; the COS agent, as
    /// root, tails either.
    pub fn policy_events_log(&self) -> PathBuf {
        self.at("/var/log")
            .join(self.policy_state_name())
            .join("events.log")
    }
    /// The policy service's state directory (`StateDirectory=`), as systemd names it.
    pub fn policy_state_dir(&self) -> PathBuf {
        self.at("/var/lib").join(self.policy_state_name())
    }
    /// Where systemd keeps that directory for the service's dynamic user.
    pub fn policy_private_state_dir(&self) -> PathBuf {
        self.at("/var/lib/private").join(self.policy_state_name())
    }
    /// The policy service's own copy of the charm's binary (see `policy_state`): the
    /// unit's own, since units of different charm revisions may share the machine.
    pub fn policy_binary(&self) -> PathBuf {
        let dir = self.at("/usr/local/lib/github-runner");
        match &self.unit {
            Some(key) => dir.join(key.as_str()).join("github-runner"),
            None => dir.join("github-runner"),
        }
    }
    /// When the charm last restarted the policy service over a failing /health (the
    /// restarts that are rate-limited, see `charm::policy_health`).
    pub fn policy_health_file(&self) -> PathBuf {
        self.state_dir().join("policy-health.json")
    }
    /// Subordinate user ids: LXD takes its containers' id maps from root's range.
    pub fn subuid(&self) -> PathBuf {
        self.at("/etc/subuid")
    }
    pub fn subgid(&self) -> PathBuf {
        self.at("/etc/subgid")
    }
    /// How a path under `root` appears on the real host, for files that name other
    /// files (the unit's `EnvironmentFile=`).
    pub fn host_view(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => path.to_path_buf(),
        }
    }
}

/// The Linux distribution, from `/etc/os-release`: the charm targets Ubuntu (snap LXD,
/// `linux-generic`); other systems (the Debian test machine) use the distribution's LXD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OsFamily {
    Ubuntu,
    Other,
}

impl OsFamily {
    pub fn parse(os_release: &str) -> Self {
        let is_ubuntu = os_release.lines().any(|l| {
            l.strip_prefix("ID=")
                .is_some_and(|v| v.trim_matches('"').eq_ignore_ascii_case("ubuntu"))
        });
        if is_ubuntu {
            OsFamily::Ubuntu
        } else {
            OsFamily::Other
        }
    }

    pub fn detect(paths: &HostPaths) -> Self {
        Self::parse(&std::fs::read_to_string(paths.os_release()).unwrap_or_default())
    }
}

/// Every way preparing the host can fail. Messages name the step and the command, never
/// a secret (commands never carry one in argv).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A command could not be started.
    #[error(transparent)]
    Spawn(#[from] CommandError),
    /// A command ran and failed; `stderr` is the tail of what it printed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    /// The apt/dpkg lock stayed held past the deadline.
    #[error("the apt lock was still held after {0:?}; another package operation is running")]
    LockTimeout(Duration),
    /// A file could not be read or written (what, which path, why).
    #[error(transparent)]
    Io(#[from] fs_state::FileError),
    /// LXD answered something we could not use.
    #[error("LXD: {0}")]
    Lxd(String),
    /// LXD refused a request or could not be reached.
    #[error(transparent)]
    LxdApi(#[from] lxd_client::LxdError),
    /// A value for a runner or unit file would break its format.
    #[error(transparent)]
    Render(#[from] runner_env::RenderError),
}

impl HostError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        HostError::Io(fs_state::FileError {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
pub(crate) mod fakes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_family_from_os_release() {
        assert_eq!(
            OsFamily::parse("NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"22.04\"\n"),
            OsFamily::Ubuntu
        );
        assert_eq!(OsFamily::parse("ID=debian\n"), OsFamily::Other);
        assert_eq!(OsFamily::parse(""), OsFamily::Other);
    }

    #[test]
    fn paths_are_relocated_under_root() {
        let p = HostPaths::new("/tmp/r");
        assert_eq!(p.state_dir(), PathBuf::from("/tmp/r/var/lib/github-runner"));
        assert_eq!(
            p.host_view(&p.policy_env_file()),
            PathBuf::from("/var/lib/github-runner/policy-server.env")
        );
        assert_eq!(
            HostPaths::new("/").reboot_required(),
            PathBuf::from("/var/run/reboot-required")
        );
    }
}
