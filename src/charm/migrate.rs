//! Taking over the single-unit layout of earlier versions (every file straight under
//! `/var/lib/github-runner`, one policy service on 8080, one table `github-runner`), by
//! the unit that made it (slot 0, `legacy`), in upgrade-charm, with no job lost (busy
//! runners finish theirs; idle ones are replaced, as on every upgrade):
//! - before the policy service is installed ([`take_over`]): the old service stops and
//!   its state (the one-time tokens idle runners hold) moves to the unit's service, which
//!   listens on the same port; the unit's state files move into its own directory;
//! - after the unit's table is loaded ([`retire_old_firewall`]): the old table and boot
//!   unit go. The unit's table also judges MACs LXD gave (its old runners), and its
//!   storage pool stays where LXD has it (`Runners::pool_dir`).

use std::path::Path;

use super::deps::Deps;
use crate::firewall::{boot, Nft, TableName};
use crate::host::site::UnitSite;
use crate::host::systemd::systemctl;
use crate::host::units::POLICY_UNIT;
use crate::host::{HostError, HostPaths};

/// State files of the old layout that the unit keeps (the rest it makes anew).
const KEPT: [&str; 7] = [
    "charm-token",
    "draining-path",
    "runner-group.json",
    "runner-app",
    "last-reconcile.json",
    "last-problem.json",
    "policy-health.json",
];

/// Whether this hook should take the old layout over.
fn due(deps: &Deps, site: &UnitSite) -> bool {
    site.legacy && deps.paths.legacy_layout_present()
}

/// Stops the old policy service and moves its state and the old state files to the
/// unit's own places. A file already in the new place wins.
pub fn take_over(deps: &Deps, site: &UnitSite) -> Result<(), HostError> {
    if !due(deps, site) {
        return Ok(());
    }
    let (paths, old) = (&deps.paths, deps.paths.legacy());
    log::info!("taking over the single-unit layout of an earlier version");
    fs_state::ensure_private_dir(&paths.state_dir())?;
    for name in KEPT {
        move_if_absent(&old.state_dir().join(name), &paths.state_dir().join(name))?;
    }
    let old_unit = old.systemd_dir().join(POLICY_UNIT);
    if old_unit.exists() {
        // Stopped before its state moves: it could still write its token file.
        systemctl(deps.commands, &["disable", "--now", POLICY_UNIT])?;
        remove_file(&old_unit)?;
        systemctl(deps.commands, &["daemon-reload"])?;
    }
    move_if_absent(
        &old.policy_private_state_dir(),
        &paths.policy_private_state_dir(),
    )?;
    // systemd's link to the private directory; it makes the unit's own at start.
    remove_file(&old.policy_state_dir())?;
    // The old env file holds the GitHub token; the unit writes its own. The charm
    // token moved above unless the unit had one already: then the old one goes too.
    remove_file(&old.policy_env_file())?;
    remove_file(&old.charm_token())
}

/// Removes the old table and its boot unit once the unit's own table is in force.
pub fn retire_old_firewall(deps: &Deps, site: &UnitSite) -> Result<(), HostError> {
    if !due_firewall(&deps.paths) || !site.legacy {
        return Ok(());
    }
    let old = deps.paths.legacy();
    if let Err(e) = Nft::new(deps.commands).remove(&TableName::default()) {
        log::warn!("the single-unit layout's table: {e}");
    }
    let boot_unit = old.systemd_dir().join(boot::BOOT_UNIT);
    if boot_unit.exists() {
        systemctl(deps.commands, &["disable", boot::BOOT_UNIT])?;
        remove_file(&boot_unit)?;
    }
    remove_file(&old.firewall_record())?;
    remove_file(&old.firewall_listing())
}

fn due_firewall(paths: &HostPaths) -> bool {
    let old = paths.legacy();
    old.firewall_record().exists() || old.systemd_dir().join(boot::BOOT_UNIT).exists()
}

fn move_if_absent(from: &Path, to: &Path) -> Result<(), HostError> {
    if !from.exists() || to.exists() {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| HostError::io("creating", parent, e))?;
    }
    std::fs::rename(from, to).map_err(|e| HostError::io("moving", from, e))
}

fn remove_file(path: &Path) -> Result<(), HostError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(HostError::io("removing", path, e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "migrate_tests.rs"]
mod tests;
