//! The file that keeps unused one-time tokens across a restart of the service: only
//! their SHA-256 digests, one lowercase hex digest a line, mode 0600. Every change
//! replaces the whole file atomically (temporary file, fsync, rename), so a crash leaves
//! the list before or after the change, never a torn one; an idle runner's token is
//! still accepted after a restart and a used one is never accepted again.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A token's SHA-256 digest.
pub type Digest32 = [u8; 32];

/// Why the token file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    /// Reading, writing or renaming the file failed.
    #[error("one-time token file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the digests of unused one-time tokens are kept.
#[derive(Clone, Debug)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenFile { path: path.into() }
    }

    /// The default place: `one-time-tokens` next to the policy document.
    pub fn next_to(policy_document: &Path) -> Self {
        TokenFile::new(policy_document.with_file_name("one-time-tokens"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored digests, oldest first; none when the file does not exist. Lines that
    /// are not a digest are skipped (the file is only ever replaced whole, so there are
    /// none unless someone edited it). A file others may read is made private first.
    pub fn load(&self) -> Result<Vec<Digest32>, TokenStoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io(source)),
        };
        let mode = std::fs::metadata(&self.path)
            .map_err(|e| self.io(e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            log::warn!(
                "{} was readable by others: made private",
                self.path.display()
            );
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| self.io(e))?;
        }
        Ok(text.lines().filter_map(parse_digest).collect())
    }

    /// Replaces the stored list with `digests`: a 0600 temporary file in the same
    /// directory, synced, renamed over the old one, and the directory synced.
    pub fn store<'a>(
        &self,
        digests: impl IntoIterator<Item = &'a Digest32>,
    ) -> Result<(), TokenStoreError> {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut text = String::new();
        for digest in digests {
            text.push_str(&hex::encode(digest));
            text.push('\n');
        }
        // tempfile creates the file with mode 0600 on Unix.
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| self.io(e))?;
        tmp.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        tmp.as_file().sync_all().map_err(|e| self.io(e))?;
        tmp.persist(&self.path).map_err(|e| self.io(e.error))?;
        let dir = std::fs::File::open(dir).map_err(|e| self.io(e))?;
        dir.sync_all().map_err(|e| self.io(e))?;
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> TokenStoreError {
        TokenStoreError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn parse_digest(line: &str) -> Option<Digest32> {
    let bytes = hex::decode(line.trim()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_privately_and_skips_junk() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::next_to(&dir.path().join("policy.json"));
        assert_eq!(file.path(), dir.path().join("one-time-tokens"));
        assert!(file.load().unwrap().is_empty(), "no file: no tokens");
        let digests = [[1u8; 32], [2u8; 32]];
        file.store(&digests).unwrap();
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(file.load().unwrap(), digests.to_vec());
        let mut text = std::fs::read_to_string(file.path()).unwrap();
        text.push_str("not a digest\n0102\n");
        std::fs::write(file.path(), text).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(file.load().unwrap(), digests.to_vec());
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "made private on load");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let file = TokenFile::new("/nonexistent-dir-for-test/one-time-tokens");
        assert!(file.store(&[[0u8; 32]]).is_err());
    }
}
