//! Installing systemd units: the files written only where they differ, and systemd told
//! (reload, enable, restart) only when one did, so a steady hook calls no systemctl.

use std::path::Path;

use super::packages::run_ok;
use super::{Cmd, Commands, HostError};

/// What a changed unit needs once systemd has reloaded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChange {
    /// Enabled for the next boot only (the caller starts it, or it runs at boot).
    Enable,
    /// Enabled and restarted now, to run the new definition.
    EnableAndRestart,
}

/// Writes each `(file name, content)` under `dir` (0644) where it differs; when any
/// changed, reloads systemd and enables `unit` (restarting it with
/// [`OnChange::EnableAndRestart`]). Returns whether any file changed.
pub fn install_units(
    commands: &dyn Commands,
    dir: &Path,
    files: &[(&str, &str)],
    unit: &str,
    on_change: OnChange,
) -> Result<bool, HostError> {
    let mut changed = false;
    for (name, content) in files {
        changed |= fs_state::write_if_changed(&dir.join(name), content.as_bytes(), 0o644)?;
    }
    if changed {
        systemctl(commands, &["daemon-reload"])?;
        systemctl(commands, &["enable", unit])?;
        if on_change == OnChange::EnableAndRestart {
            systemctl(commands, &["restart", unit])?;
        }
    }
    Ok(changed)
}

/// `systemctl ARGS...`, failing on a non-zero exit.
pub fn systemctl(commands: &dyn Commands, args: &[&str]) -> Result<(), HostError> {
    run_ok(commands, &Cmd::new("systemctl", args)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fakes::FakeCommands;

    #[test]
    fn systemd_is_told_only_when_a_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let c = FakeCommands::new();
        let files = [("a.service", "[Service]\n"), ("a.timer", "[Timer]\n")];
        let install = |files: &[(&str, &str)], on_change| {
            install_units(&c, dir.path(), files, "a.timer", on_change).unwrap()
        };
        assert!(install(&files, OnChange::EnableAndRestart));
        assert_eq!(
            c.lines(),
            [
                "systemctl daemon-reload",
                "systemctl enable a.timer",
                "systemctl restart a.timer"
            ]
        );
        c.clear();
        assert!(!install(&files, OnChange::EnableAndRestart));
        assert!(c.lines().is_empty());
        let changed = [("a.service", "[Service]\n"), ("a.timer", "[Timer]\nX=1\n")];
        assert!(install(&changed, OnChange::Enable));
        assert_eq!(
            c.lines(),
            ["systemctl daemon-reload", "systemctl enable a.timer"]
        );
        let text = std::fs::read_to_string(dir.path().join("a.timer")).unwrap();
        assert_eq!(text, "[Timer]\nX=1\n");
    }
}
