//! The boot-time systemd unit that loads the charm's last ruleset before LXD starts, so a
//! rebooted host never runs an instance without the table (rendered purely, written and
//! enabled by install and upgrade-charm).

use std::path::Path;

use crate::host::systemd::{install_units, OnChange};
use crate::host::{Commands, HostError, HostPaths};
use ghr_types::template;

pub const BOOT_UNIT: &str = "github-runner-firewall.service";
/// Where Ubuntu (and Debian) install `nft`; systemd wants an absolute path this early.
pub const NFT_BINARY: &str = "/usr/sbin/nft";
const BOOT_TEMPLATE: &str = include_str!("../../templates/github-runner-firewall.service");

/// The unit for `ruleset` (the host's view of the record file). Ordered after the local
/// file systems (the record may live on a separate /var) and before the network and
/// every LXD unit (snap and deb), with no default dependencies so it can run that early.
/// A missing record (no load yet) skips the unit instead of failing the boot.
pub fn render_boot_unit(ruleset: &Path) -> String {
    let ruleset = ruleset.display().to_string();
    template::fill(BOOT_TEMPLATE, &[("RULESET", &ruleset), ("NFT", NFT_BINARY)])
}

/// Writes the unit and, when it changed, reloads systemd and enables it (not started:
/// the charm loads the table itself). Returns whether it changed.
pub fn install_boot_unit(commands: &dyn Commands, paths: &HostPaths) -> Result<bool, HostError> {
    let unit = render_boot_unit(&paths.host_view(&paths.firewall_record()));
    let files = [(BOOT_UNIT, unit.as_str())];
    install_units(
        commands,
        &paths.systemd_dir(),
        &files,
        BOOT_UNIT,
        OnChange::Enable,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fakes::FakeCommands;

    /// Compares with `src/firewall/golden/NAME`; `UPDATE_GOLDEN=1` rewrites the file.
    fn check_golden(name: &str, rendered: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/firewall/golden")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(rendered, expected, "differs from {}", path.display());
    }

    #[test]
    fn golden_boot_unit() {
        let paths = HostPaths::new("/");
        check_golden(BOOT_UNIT, &render_boot_unit(&paths.firewall_record()));
    }

    #[test]
    fn written_and_enabled_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(dir.path());
        let c = FakeCommands::new();
        assert!(install_boot_unit(&c, &paths).unwrap());
        assert_eq!(
            c.lines(),
            [
                "systemctl daemon-reload",
                "systemctl enable github-runner-firewall.service"
            ]
        );
        let unit = std::fs::read_to_string(paths.systemd_dir().join(BOOT_UNIT)).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/sbin/nft -f /var/lib/github-runner/firewall.nft\n"),
            "the host's view of the record, not the test root: {unit}"
        );
        c.clear();
        assert!(!install_boot_unit(&c, &paths).unwrap());
        assert!(c.lines().is_empty());
    }
}
