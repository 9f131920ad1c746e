//! The file that keeps unused one-time tokens across a restart of the service: per token
//! one line `DIGEST EXPIRY RUNNER` (its SHA-256 digest in lowercase hex, when it expires
//! in Unix seconds, the runner it was issued for), mode 0600. Every change replaces the
//! whole file atomically (temporary file, fsync, rename), so a crash leaves the list
//! before or after the change, never a torn one; an idle runner's token is still
//! accepted after a restart and a used one is never accepted again. Lines of the older
//! format (a digest alone: a token bound to no runner) are dropped on load: no runner
//! could present them with a matching name, and upgrade-charm replaces idle runners.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A token's SHA-256 digest.
pub type Digest32 = [u8; 32];

/// One unused token as kept: its digest, the runner it is for, when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredToken {
    pub digest: Digest32,
    pub runner: String,
    /// Unix seconds; the token is refused from then on.
    pub expires_at: u64,
}

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

    /// The stored tokens, oldest first; none when the file does not exist. Lines that
    /// are not a token are skipped (the file is only ever replaced whole, so there are
    /// none unless someone edited it or an older version wrote it). A file others may
    /// read is made private first.
    pub fn load(&self) -> Result<Vec<StoredToken>, TokenStoreError> {
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
        let tokens: Vec<StoredToken> = text.lines().filter_map(parse_line).collect();
        let skipped = text.lines().filter(|l| !l.trim().is_empty()).count() - tokens.len();
        if skipped > 0 {
            log::warn!(
                "{}: dropped {skipped} line(s) that are not a runner-bound token (an older \
                 version's unbound tokens are refused)",
                self.path.display()
            );
        }
        Ok(tokens)
    }

    /// Replaces the stored list with `tokens`: a 0600 temporary file in the same
    /// directory, synced, renamed over the old one, and the directory synced.
    pub fn store<'a>(
        &self,
        tokens: impl IntoIterator<Item = &'a StoredToken>,
    ) -> Result<(), TokenStoreError> {
        let mut text = String::new();
        for token in tokens {
            let line = format!(
                "{} {} {}\n",
                hex::encode(token.digest),
                token.expires_at,
                token.runner
            );
            text.push_str(&line);
        }
        fs_state::write_atomic(&self.path, text.as_bytes(), 0o600).map_err(|e| {
            TokenStoreError::Io {
                path: e.path,
                source: e.source,
            }
        })
    }

    fn io(&self, source: std::io::Error) -> TokenStoreError {
        TokenStoreError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// `DIGEST EXPIRY RUNNER`; anything else (an older version's bare digest) is `None`.
fn parse_line(line: &str) -> Option<StoredToken> {
    let mut parts = line.split_whitespace();
    let (digest, expires_at, runner) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !super::tokens::valid_runner_name(runner) {
        return None;
    }
    Some(StoredToken {
        digest: hex::decode(digest).ok()?.try_into().ok()?,
        runner: runner.to_string(),
        expires_at: expires_at.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(byte: u8, runner: &str, expires_at: u64) -> StoredToken {
        StoredToken {
            digest: [byte; 32],
            runner: runner.into(),
            expires_at,
        }
    }

    #[test]
    fn round_trips_privately_and_skips_junk() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::next_to(&dir.path().join("policy.json"));
        assert_eq!(file.path(), dir.path().join("one-time-tokens"));
        assert!(file.load().unwrap().is_empty(), "no file: no tokens");
        let tokens = [
            token(1, "app-0-0000000a", 100),
            token(2, "app-0-0000000b", 200),
        ];
        file.store(&tokens).unwrap();
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(file.load().unwrap(), tokens.to_vec());
        let mut text = std::fs::read_to_string(file.path()).unwrap();
        text.push_str("not a digest\n0102 5 r\n");
        std::fs::write(file.path(), text).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(file.load().unwrap(), tokens.to_vec());
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "made private on load");
    }

    /// An older version's file holds bare digests, bound to no runner: dropped.
    #[test]
    fn an_older_versions_unbound_tokens_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("one-time-tokens"));
        let old = format!(
            "{}\n{} 300 app-0-0000000c\n",
            "ab".repeat(32),
            "cd".repeat(32)
        );
        std::fs::write(file.path(), old).unwrap();
        let loaded = file.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].runner, "app-0-0000000c");
        assert_eq!(loaded[0].expires_at, 300);
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error() {
        // Its parent is a plain file, so no directory can be made there.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let file = TokenFile::new(dir.path().join("file/sub/one-time-tokens"));
        assert!(file.store(&[token(0, "r", 1)]).is_err());
    }
}
