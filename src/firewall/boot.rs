//! The boot-time systemd unit that loads the charm's last ruleset before LXD starts, so a
//! rebooted host never runs an instance without the table (rendered purely, written and
//! enabled by install and upgrade-charm).

use std::path::Path;

use crate::host::site::UnitSite;
use crate::host::systemd::{install_units, OnChange};
use crate::host::{Commands, HostError, HostPaths};
use ghr_types::template;

/// The single-unit layout's boot unit (one per unit now: `UnitSite::firewall_unit`).
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
pub fn install_boot_unit(
    commands: &dyn Commands,
    paths: &HostPaths,
    site: &UnitSite,
) -> Result<bool, HostError> {
    let unit = render_boot_unit(&paths.host_view(&paths.firewall_record()));
    let name = site.firewall_unit();
    let files = [(name.as_str(), unit.as_str())];
    install_units(
        commands,
        &paths.systemd_dir(),
        &files,
        &name,
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
        let paths = HostPaths::for_unit(dir.path(), "runners-b/2");
        let site = UnitSite::new("runners-b/2", 1, false);
        let c = FakeCommands::new();
        assert!(install_boot_unit(&c, &paths, &site).unwrap());
        assert_eq!(
            c.lines(),
            [
                "systemctl daemon-reload",
                "systemctl enable github-runner-firewall-runners-b-2.service"
            ]
        );
        let unit = std::fs::read_to_string(paths.systemd_dir().join(site.firewall_unit()));
        let unit = unit.unwrap();
        assert!(
            unit.contains(
                "ExecStart=/usr/sbin/nft -f /var/lib/github-runner/units/runners-b-2/firewall.nft\n"
            ),
            "the unit's own record, as the host sees it: {unit}"
        );
        c.clear();
        assert!(!install_boot_unit(&c, &paths, &site).unwrap());
        assert!(c.lines().is_empty());
    }
}
