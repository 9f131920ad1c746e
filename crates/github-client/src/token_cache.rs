//! Installation tokens kept between requests and between processes: when a token is
//! due for renewal, and the 0600 JSON file that lets every short-lived client of one
//! owner (a unit's hooks and its runner manager share one; the policy service, under
//! its own user, keeps another) reuse one token instead of minting its own.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use ghr_types::Secret;

/// A token is renewed this long before it expires at the most (GitHub's last
/// minutes are where clock drift and long requests bite).
const MAX_MARGIN_SECS: i64 = 300;

/// One installation token and what is needed to judge it. Times are Unix seconds;
/// `fetched_at` is this machine's clock, `expires_at` GitHub's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CachedToken {
    /// Of the [`super::app_auth::AppKey`] the token was minted for: a cache written
    /// for another App, installation or key is not ours to use.
    pub fingerprint: String,
    pub token: Secret,
    pub expires_at: i64,
    pub fetched_at: i64,
}

impl CachedToken {
    /// True once less than `min(5 minutes, lifetime / 4)` is left: a 1-hour token is
    /// renewed 5 minutes early, a short one (tests, odd servers) a quarter early, so
    /// it is still used most of its life.
    pub fn due(&self, now: i64) -> bool {
        let lifetime = self.expires_at - self.fetched_at;
        let margin = MAX_MARGIN_SECS.min(lifetime / 4);
        self.expires_at - now < margin.max(0)
    }
}

/// The cache file of one client, if it has one. Failing to read or write it costs
/// an extra exchange, never a request: it is reported and otherwise ignored.
#[derive(Clone, Debug)]
pub(crate) struct TokenFile {
    path: Option<PathBuf>,
}

impl TokenFile {
    pub fn new(path: Option<PathBuf>) -> Self {
        TokenFile { path }
    }

    /// The cached token for `fingerprint`, if the file holds one. A file that does
    /// not parse or belongs to another key is treated as absent (and later replaced).
    pub fn load(&self, fingerprint: &str) -> Option<CachedToken> {
        let path = self.path.as_deref()?;
        let bytes = std::fs::read(path).ok()?;
        let cached: CachedToken = serde_json::from_slice(&bytes).ok()?;
        (cached.fingerprint == fingerprint).then_some(cached)
    }

    /// Writes `token` atomically, the mode set before any content lands.
    pub fn store(&self, token: &CachedToken) {
        let Some(path) = self.path.as_deref() else {
            return;
        };
        let json = serde_json::to_vec(token).expect("a cached token serialises");
        if let Err(e) = fs_state::write_atomic(path, &json, 0o600) {
            log::warn!("cannot keep the GitHub App installation token: {e}");
        }
    }

    /// Removes the file if it still holds `stale`: another process may have put a
    /// fresh token there since, and that one is worth keeping.
    pub fn forget(&self, stale: &Secret, fingerprint: &str) {
        let Some(path) = self.path.as_deref() else {
            return;
        };
        if self.load(fingerprint).is_some_and(|c| &c.token == stale) {
            remove(path);
        }
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(fetched_at: i64, expires_at: i64) -> CachedToken {
        CachedToken {
            fingerprint: "f".into(),
            token: Secret::new("ghs_cached"),
            expires_at,
            fetched_at,
        }
    }

    #[test]
    fn an_hour_token_is_renewed_five_minutes_early() {
        let t = token(0, 3600);
        assert!(!t.due(3300), "exactly 5 minutes left is not yet under");
        assert!(t.due(3301));
        assert!(t.due(4000), "an expired token is due");
        assert!(!t.due(0));
    }

    #[test]
    fn a_short_token_is_renewed_a_quarter_early() {
        let t = token(100, 104);
        assert!(!t.due(103), "1 s left of 4 is not under a quarter");
        assert!(t.due(104));
        let twenty = token(0, 20);
        assert!(!twenty.due(15));
        assert!(twenty.due(16));
    }

    #[test]
    fn a_token_expiring_before_it_was_fetched_is_always_due() {
        // Our clock ahead of GitHub's: the margin is not negative, the token is due.
        let t = token(1000, 900);
        assert!(t.due(1000));
    }

    #[test]
    fn the_file_is_0600_and_read_back_only_for_its_own_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(Some(dir.path().join("token.json")));
        file.store(&token(1, 3601));
        let meta = std::fs::metadata(dir.path().join("token.json")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(file.load("f").unwrap().token.expose(), "ghs_cached");
        assert!(file.load("other").is_none());
        file.forget(&Secret::new("ghs_newer"), "f");
        assert!(
            file.load("f").is_some(),
            "a token other than the stale one stays"
        );
        file.forget(&Secret::new("ghs_cached"), "f");
        assert!(file.load("f").is_none());
        assert!(!dir.path().join("token.json").exists());
    }

    #[test]
    fn a_file_that_does_not_parse_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(TokenFile::new(Some(path)).load("f").is_none());
        assert!(TokenFile::new(None).load("f").is_none());
    }
}
