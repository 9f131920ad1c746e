//! The kernel side of the host: the kernel meta-package, the `br_netfilter` module and
//! the sysctls the firewall needs to see bridged traffic, and when to ask Juju for a reboot.

use super::packages::run_ok;
use super::{Cmd, Commands, HostError, HostPaths, OsFamily};
use fs_state::write_if_changed;

/// The module that makes bridged (runner) traffic pass through nftables' inet hooks.
pub const BR_NETFILTER: &str = "br_netfilter";

/// The kernel meta-package that keeps the host on a current kernel; `None` where the
/// distribution's kernel is not ours to manage.
pub fn kernel_package(os: OsFamily) -> Option<&'static str> {
    match os {
        OsFamily::Ubuntu => Some("linux-generic"),
        OsFamily::Other => None,
    }
}

/// Whether a package asked for a reboot (Ubuntu's update-notifier hook creates the file).
pub fn reboot_required(paths: &HostPaths) -> bool {
    paths.reboot_required().exists()
}

/// Where a reboot request comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebootPhase {
    /// The end of install/upgrade-charm: reboot once the hook is done.
    Install,
    /// A reconcile, with the number of runners currently running a job.
    Reconcile { busy_runners: usize },
}

/// `Some(now)` when Juju should be asked to reboot: after install (`juju-reboot`), or
/// during a reconcile right away (`--now`) but only when no job would be cut short.
pub fn reboot_request(required: bool, phase: RebootPhase) -> Option<bool> {
    match (required, phase) {
        (false, _) => None,
        (true, RebootPhase::Install) => Some(false),
        (true, RebootPhase::Reconcile { busy_runners: 0 }) => Some(true),
        (true, RebootPhase::Reconcile { .. }) => None,
    }
}

/// Loads `br_netfilter` unless loaded, and lists it in modules-load.d so it comes back
/// after a reboot. Returns whether anything changed.
pub fn ensure_br_netfilter(commands: &dyn Commands, paths: &HostPaths) -> Result<bool, HostError> {
    let mut changed = false;
    if !paths.sys_module(BR_NETFILTER).exists() {
        run_ok(commands, &Cmd::new("modprobe", &[BR_NETFILTER]))?;
        changed = true;
    }
    let conf = paths.modules_load_dir().join("github-runner.conf");
    changed |= write_if_changed(&conf, format!("{BR_NETFILTER}\n").as_bytes(), 0o644)?;
    Ok(changed)
}

/// The settings that send bridged IPv4 and IPv6 frames through the host's nftables
/// hooks (they exist once `br_netfilter` is loaded). Without them traffic between the
/// bridge's ports could skip the charm's table.
pub const BRIDGE_SYSCTLS: [&str; 2] = [
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
];
/// The charm's sysctl.d file; systemd-sysctl applies it at boot, after
/// modules-load.d has loaded `br_netfilter`.
pub const SYSCTL_FILE: &str = "60-github-runner-bridge.conf";

/// The sysctl.d file, pure.
pub fn render_bridge_sysctls() -> String {
    let mut out =
        String::from("# Managed by the github-runner charm: bridged runner traffic goes through the host's firewall.\n");
    for key in BRIDGE_SYSCTLS {
        out.push_str(&format!("{key} = 1\n"));
    }
    out
}

/// Keeps [`BRIDGE_SYSCTLS`] at 1: the sysctl.d file for boots, and `sysctl -w` now for
/// whichever live value is not 1 yet. Call after [`ensure_br_netfilter`]. Returns whether
/// anything changed.
pub fn ensure_bridge_sysctls(
    commands: &dyn Commands,
    paths: &HostPaths,
) -> Result<bool, HostError> {
    let file = paths.sysctl_dir().join(SYSCTL_FILE);
    let mut changed = write_if_changed(&file, render_bridge_sysctls().as_bytes(), 0o644)?;
    let unset: Vec<String> = BRIDGE_SYSCTLS
        .iter()
        .filter(|key| {
            std::fs::read_to_string(paths.proc_sys(key)).map_or(true, |v| v.trim() != "1")
        })
        .map(|key| format!("{key}=1"))
        .collect();
    if !unset.is_empty() {
        let mut cmd = Cmd::new("sysctl", &["-w"]);
        cmd.args.extend(unset);
        run_ok(commands, &cmd)?;
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fakes::FakeCommands;

    #[test]
    fn reboot_requests() {
        assert_eq!(reboot_request(false, RebootPhase::Install), None);
        assert_eq!(reboot_request(true, RebootPhase::Install), Some(false));
        let reconcile = |busy_runners| RebootPhase::Reconcile { busy_runners };
        assert_eq!(reboot_request(true, reconcile(0)), Some(true));
        assert_eq!(reboot_request(true, reconcile(2)), None);
        assert_eq!(reboot_request(false, reconcile(0)), None);
    }

    #[test]
    fn kernel_package_only_on_ubuntu() {
        assert_eq!(kernel_package(OsFamily::Ubuntu), Some("linux-generic"));
        assert_eq!(kernel_package(OsFamily::Other), None);
    }

    #[test]
    fn br_netfilter_is_loaded_and_persisted_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(dir.path());
        let c = FakeCommands::new();
        assert!(ensure_br_netfilter(&c, &paths).unwrap());
        assert_eq!(c.lines(), ["modprobe br_netfilter"]);
        let conf = std::fs::read_to_string(paths.modules_load_dir().join("github-runner.conf"));
        assert_eq!(conf.unwrap(), "br_netfilter\n");

        std::fs::create_dir_all(paths.sys_module(BR_NETFILTER)).unwrap();
        c.clear();
        assert!(!ensure_br_netfilter(&c, &paths).unwrap());
        assert!(c.lines().is_empty());
    }

    #[test]
    fn bridge_sysctls_are_persisted_and_set_only_when_not_1() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(dir.path());
        let c = FakeCommands::new();
        // The ip6tables one is already 1 in the kernel.
        let live = paths.proc_sys(BRIDGE_SYSCTLS[1]);
        std::fs::create_dir_all(live.parent().unwrap()).unwrap();
        std::fs::write(&live, "1\n").unwrap();
        assert!(ensure_bridge_sysctls(&c, &paths).unwrap());
        assert_eq!(
            c.lines(),
            ["sysctl -w net.bridge.bridge-nf-call-iptables=1"]
        );
        let conf = std::fs::read_to_string(paths.sysctl_dir().join(SYSCTL_FILE)).unwrap();
        assert!(conf.ends_with(
            "net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n"
        ));

        std::fs::write(paths.proc_sys(BRIDGE_SYSCTLS[0]), "1\n").unwrap();
        c.clear();
        assert!(!ensure_bridge_sysctls(&c, &paths).unwrap());
        assert!(c.lines().is_empty());
    }

    #[test]
    fn reboot_required_reads_the_marker_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(dir.path());
        assert!(!reboot_required(&paths));
        std::fs::create_dir_all(paths.reboot_required().parent().unwrap()).unwrap();
        std::fs::write(paths.reboot_required(), "*** System restart required ***\n").unwrap();
        assert!(reboot_required(&paths));
    }
}
