//! The one way the charm, the policy service and the GitHub client keep a file: a
//! temporary file in the same directory, created with the final mode (a secret is never
//! readable by others, not even briefly), written, synced, renamed over the old one and
//! the directory synced. Readers see the old or the new file, never a part of one, and a
//! write that fails leaves the old file as it was.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file or directory that could not be read, written or made; says what was being
/// done to which path.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct FileError {
    /// What was being done, e.g. `writing`.
    pub action: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl FileError {
    fn new<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FileError + 'a {
        move |source| FileError {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, FileError>;

/// Replaces `path` with `content`, with `mode` (missing parent directories are made).
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let mut file = AtomicFile::create(path, mode)?;
    file.write_all(content)
        .map_err(FileError::new("writing", path))?;
    file.commit()
}

/// Writes `content` to `path` with `mode` unless it already holds exactly that, and
/// returns whether the content changed. A wrong mode on an unchanged file is corrected
/// without counting as a change (and without rewriting the file).
pub fn write_if_changed(path: &Path, content: &[u8], mode: u32) -> Result<bool> {
    if fs::read(path).is_ok_and(|existing| existing == content) {
        ensure_mode(path, mode)?;
        return Ok(false);
    }
    write_atomic(path, content, mode)?;
    Ok(true)
}

/// Sets `path`'s permission bits to `mode` when they differ.
pub fn ensure_mode(path: &Path, mode: u32) -> Result<()> {
    let meta = fs::metadata(path).map_err(FileError::new("reading", path))?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(FileError::new("setting the mode of", path))?;
    }
    Ok(())
}

/// Makes `dir` (and missing parents) a directory only its owner can enter: created
/// 0700, and narrowed to 0700 when it exists with a wider mode (an older version, an
/// operator's `mkdir`), since secrets are kept there.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(FileError::new("creating", dir))?;
    ensure_mode(dir, 0o700)
}

/// A file being written that replaces `path` only on [`AtomicFile::commit`]; dropped
/// without a commit, it leaves nothing behind and `path` untouched. For content that
/// arrives as a stream (a download, a copy).
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts a replacement of `path` with the permission bits `mode`.
    pub fn create(path: &Path, mode: u32) -> Result<AtomicFile> {
        let dir = parent(path);
        fs::create_dir_all(dir).map_err(FileError::new("creating", dir))?;
        // tempfile makes the file 0600; it only changes to `mode` once it is ours.
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(FileError::new("creating a temporary file in", dir))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(FileError::new("setting the mode of", tmp.path()))?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Where the content is written meanwhile, for a writer that wants a path (it may
    /// write the file in place or rename another over it: the commit moves the path).
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// The file being written.
    pub fn as_file_mut(&mut self) -> &mut fs::File {
        self.tmp.as_file_mut()
    }

    /// Syncs the content, renames it over `path` and syncs the directory, so that once
    /// this returns the new file survives a crash.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let writing = FileError::new("writing", &path);
        self.tmp.as_file().sync_all().map_err(writing)?;
        self.tmp
            .persist(&path)
            .map_err(|e| FileError::new("replacing", &path)(e.error))?;
        let dir = parent(&path);
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(FileError::new("syncing", dir))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests;
