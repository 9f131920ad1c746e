//! The policy service's files outside its unit: its own copy of the charm's binary
//! (root-owned, 0755, at a fixed path its dynamic user can execute) and the move of the
//! state it kept in the charm's directory, while it ran as root, into its
//! `StateDirectory=`.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{HostError, HostPaths};

/// Puts a copy of `source` (the charm's binary) at [`HostPaths::policy_binary`],
/// replacing it atomically when the content differs. Returns whether it changed.
///
/// A copy, not the charm's file: the charm directory under `/var/lib/juju` need not be
/// traversable by the service's dynamic user, Juju replaces it on upgrade, and a fixed
/// path keeps the unit unchanged across upgrades.
pub fn install_policy_binary(paths: &HostPaths, source: &Path) -> Result<bool, HostError> {
    let target = paths.policy_binary();
    if same_content(source, &target).map_err(|e| HostError::io("reading", source, e))? {
        fs_state::ensure_mode(&target, 0o755)?;
        return Ok(false);
    }
    let dir = target.parent().expect("the binary's path has a folder");
    create_dir(dir, 0o755)?;
    // A rename, so a running service keeps its old binary until it restarts.
    let mut copy = fs_state::AtomicFile::create(&target, 0o755)?;
    let mut from = fs::File::open(source).map_err(|e| HostError::io("reading", source, e))?;
    std::io::copy(&mut from, copy.as_file_mut())
        .map_err(|e| HostError::io("copying to", &target, e))?;
    copy.commit()?;
    Ok(true)
}

/// Whether `a` and `b` hold the same bytes (false when `b` is missing).
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (Ok(meta_a), Ok(meta_b)) = (fs::metadata(a), fs::metadata(b)) else {
        fs::metadata(a)?;
        return Ok(false);
    };
    if meta_a.len() != meta_b.len() {
        return Ok(false);
    }
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), HostError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| HostError::io("creating", dir, e))
}

/// What the service kept in the charm's state directory while it ran as root.
const LEGACY_FILES: [&str; 2] = [policy_service::DOCUMENT_FILE, "one-time-tokens"];

/// Where the service's state directory is on the host: under `/var/lib/private/` once
/// systemd has made it for the dynamic user, else the public path.
fn state_target(paths: &HostPaths) -> PathBuf {
    let private = paths.policy_private_state_dir();
    if private.is_dir() {
        private
    } else {
        paths.policy_state_dir()
    }
}

/// The legacy files still to move, with where they go. A file the new directory already
/// has is newer, so the old one stays where it is.
fn pending_moves(paths: &HostPaths) -> Vec<(PathBuf, PathBuf)> {
    let target = state_target(paths);
    LEGACY_FILES
        .iter()
        .map(|name| (paths.state_dir().join(name), target.join(name)))
        .filter(|(old, new)| old.exists() && !new.exists())
        .collect()
}

/// Whether state from before the service had a directory of its own is still to move.
pub fn legacy_policy_state(paths: &HostPaths) -> bool {
    !pending_moves(paths).is_empty()
}

/// Moves the policy document and one-time tokens the service kept in the charm's state
/// directory into its `StateDirectory=`, so an upgrade keeps the policy and the tokens
/// idle runners hold. The service must be stopped. Returns the files moved.
///
/// Before the first start under `DynamicUser=`, the directory does not exist: it is
/// made root-owned at the public path, and systemd moves it under `/var/lib/private/`
/// and gives it to the service's user at start. Later, a moved file gets the owner of
/// the directory it lands in.
pub fn migrate_policy_state(paths: &HostPaths) -> Result<Vec<PathBuf>, HostError> {
    let target = state_target(paths);
    let mut moved = Vec::new();
    for (old, new) in pending_moves(paths) {
        create_dir(&target, 0o700)?;
        fs::rename(&old, &new).map_err(|e| HostError::io("moving", &old, e))?;
        let owner = fs::metadata(&target).map_err(|e| HostError::io("reading", &target, e))?;
        std::os::unix::fs::chown(&new, Some(owner.uid()), Some(owner.gid()))
            .map_err(|e| HostError::io("changing the owner of", &new, e))?;
        log::info!("moved {} to {}", old.display(), new.display());
        moved.push(new);
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_binary_is_copied_once_and_replaced_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(dir.path().join("root"));
        let source = dir.path().join("github-runner");
        fs::write(&source, b"v1").unwrap();
        fs::set_permissions(&source, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(install_policy_binary(&paths, &source).unwrap());
        let target = paths.policy_binary();
        assert_eq!(fs::read(&target).unwrap(), b"v1");
        assert_eq!(mode(&target), 0o755);
        assert_eq!(mode(target.parent().unwrap()), 0o755);
        assert!(!install_policy_binary(&paths, &source).unwrap());

        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!install_policy_binary(&paths, &source).unwrap());
        assert_eq!(mode(&target), 0o755, "a narrowed mode is put back");

        fs::write(&source, b"v2").unwrap();
        assert!(install_policy_binary(&paths, &source).unwrap());
        assert_eq!(fs::read(&target).unwrap(), b"v2");
        let missing = install_policy_binary(&paths, &dir.path().join("nope"));
        assert!(missing.is_err());
    }

    #[test]
    fn legacy_state_moves_into_the_new_directory_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(dir.path());
        fs::create_dir_all(paths.state_dir()).unwrap();
        assert!(!legacy_policy_state(&paths));
        assert!(migrate_policy_state(&paths).unwrap().is_empty());
        assert!(
            !paths.policy_state_dir().exists(),
            "nothing to move, nothing made"
        );

        fs::write(paths.state_dir().join("policy.json"), "{}").unwrap();
        fs::write(paths.state_dir().join("one-time-tokens"), "digest\n").unwrap();
        assert!(legacy_policy_state(&paths));
        let moved = migrate_policy_state(&paths).unwrap();
        let new_dir = paths.policy_state_dir();
        assert_eq!(
            moved,
            [new_dir.join("policy.json"), new_dir.join("one-time-tokens")]
        );
        assert_eq!(mode(&new_dir), 0o700);
        assert_eq!(
            fs::read_to_string(new_dir.join("one-time-tokens")).unwrap(),
            "digest\n"
        );
        assert!(!legacy_policy_state(&paths));
        assert!(migrate_policy_state(&paths).unwrap().is_empty());
    }

    #[test]
    fn after_the_first_start_files_go_to_the_private_directory_and_newer_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(dir.path());
        let private = paths.policy_private_state_dir();
        fs::create_dir_all(&private).unwrap();
        fs::write(private.join("policy.json"), "new").unwrap();
        fs::create_dir_all(paths.state_dir()).unwrap();
        fs::write(paths.state_dir().join("policy.json"), "old").unwrap();
        fs::write(paths.state_dir().join("one-time-tokens"), "t\n").unwrap();
        let moved = migrate_policy_state(&paths).unwrap();
        assert_eq!(moved, [private.join("one-time-tokens")]);
        assert_eq!(
            fs::read_to_string(private.join("policy.json")).unwrap(),
            "new"
        );
        assert!(paths.state_dir().join("policy.json").exists());
        assert!(!legacy_policy_state(&paths), "nothing left to move");
    }
}
