//! Writing host files atomically and only when their content changes: a temporary file
//! in the same directory, created with the final mode (so a secret file is never
//! readable by others, not even briefly), synced, then renamed over the old one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::HostError;

/// Writes `content` to `path` with `mode` unless it already holds exactly that.
/// Returns whether the content changed. A wrong mode on an unchanged file is corrected
/// without counting as a change.
pub fn write_if_changed(path: &Path, content: &[u8], mode: u32) -> Result<bool, HostError> {
    if let Ok(existing) = fs::read(path) {
        if existing == content {
            let meta = fs::metadata(path).map_err(|e| HostError::io("reading", path, e))?;
            if meta.permissions().mode() & 0o7777 != mode {
                fs::set_permissions(path, fs::Permissions::from_mode(mode))
                    .map_err(|e| HostError::io("setting the mode of", path, e))?;
            }
            return Ok(false);
        }
    }
    write_atomic(path, content, mode)?;
    Ok(true)
}

/// Makes `dir` (and missing parents) a directory only its owner can enter: created
/// 0700, and narrowed to 0700 when it exists with a wider mode (an older charm, an
/// operator's `mkdir`), since the charm keeps secrets and the firewall's record there.
pub fn ensure_private_dir(dir: &Path) -> Result<(), HostError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| HostError::io("creating", dir, e))?;
    let meta = fs::metadata(dir).map_err(|e| HostError::io("reading", dir, e))?;
    if meta.permissions().mode() & 0o7777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| HostError::io("setting the mode of", dir, e))?;
    }
    Ok(())
}

/// Replaces `path` with `content`; readers see the old or the new file, never a part.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<(), HostError> {
    let dir = path
        .parent()
        .ok_or_else(|| HostError::io("writing", path, std::io::ErrorKind::InvalidInput.into()))?;
    fs::create_dir_all(dir).map_err(|e| HostError::io("creating", dir, e))?;
    // tempfile creates the file with mode 0600; it only widens to `mode` after that.
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| HostError::io("creating a temporary file in", dir, e))?;
    let io = |e| HostError::io("writing", path, e);
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io)?;
    tmp.write_all(content).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_then_reports_no_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file");
        assert!(write_if_changed(&path, b"a", 0o600).unwrap());
        assert!(!write_if_changed(&path, b"a", 0o600).unwrap());
        assert!(write_if_changed(&path, b"b", 0o600).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"b");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_widened_mode_is_narrowed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_if_changed(&path, b"s", 0o600).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!write_if_changed(&path, b"s", 0o600).unwrap());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_private_dir_is_made_0700_even_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("a/b");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        ensure_private_dir(&private).unwrap();
        assert_eq!(mode(&private), 0o700);
        fs::set_permissions(&private, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&private).unwrap();
        assert_eq!(mode(&private), 0o700);
    }

    #[test]
    fn no_temporary_files_are_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&dir.path().join("f"), b"x", 0o644).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
