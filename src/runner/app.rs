//! The runner application on the host: one verified tarball, kept current. The
//! downloads list is checked at most once an hour; a new version is fetched, checked
//! (sha256, a real gzip'd tar) and only then swapped in, so a failed update keeps the
//! old copy and no runner ever gets a half file.

use std::fs;
use std::path::{Path, PathBuf};

use github_client::GithubError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One entry of GitHub's runner downloads list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppDownload {
    pub os: String,
    pub architecture: String,
    pub download_url: String,
    pub filename: String,
    pub sha256: Option<String>,
}

/// Where downloads come from (the GitHub client in production).
pub trait AppSource {
    fn downloads(&self) -> Result<Vec<AppDownload>, GithubError>;
    /// Writes the file `download` names to `dest`.
    fn fetch(&self, download: &AppDownload, dest: &Path) -> Result<(), GithubError>;
}

/// What the cache holds now, persisted as `current.json` beside the tarball.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedApp {
    pub filename: String,
    pub sha256: String,
    /// Unix seconds of the last look at the downloads list.
    pub checked_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppUpdate {
    /// Checked recently, or the list still names the same file.
    Unchanged,
    /// A new version is in place; idle runners of the old one should be flushed.
    Updated { old: Option<String>, new: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// GitHub lists no runner for this machine's OS and architecture.
    #[error("GitHub offers no runner application for {0}")]
    NoMatch(String),
    /// Listing or downloading failed.
    #[error("runner application download: {0}")]
    Download(#[source] GithubError),
    /// The file does not match its checksum, or is not a tarball.
    #[error("runner application {file} rejected: {reason}")]
    Rejected { file: String, reason: String },
    #[error("runner application cache: {0}")]
    Io(#[from] std::io::Error),
    /// A cache file could not be written whole.
    #[error("runner application cache: {0}")]
    File(#[from] fs_state::FileError),
}

pub const CHECK_EVERY_SECS: u64 = 3600;

/// GitHub's names for this machine's architecture.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "arm" => "arm",
        _ => "x64",
    }
}

pub struct AppCache {
    dir: PathBuf,
}

impl AppCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        AppCache { dir: dir.into() }
    }

    pub fn current(&self) -> Option<CachedApp> {
        let text = fs::read_to_string(self.dir.join("current.json")).ok()?;
        let app: CachedApp = serde_json::from_str(&text).ok()?;
        self.dir.join(&app.filename).is_file().then_some(app)
    }

    /// The tarball new runners get.
    pub fn tarball(&self) -> Option<PathBuf> {
        self.current().map(|a| self.dir.join(a.filename))
    }

    /// Brings the cache up to date; `force` skips the hourly limit.
    pub fn ensure(
        &self,
        source: &dyn AppSource,
        now: u64,
        force: bool,
    ) -> Result<AppUpdate, AppError> {
        let current = self.current();
        if let Some(c) = &current {
            if !force && now.saturating_sub(c.checked_at) < CHECK_EVERY_SECS {
                return Ok(AppUpdate::Unchanged);
            }
        }
        let arch = host_architecture();
        let wanted = source
            .downloads()
            .map_err(AppError::Download)?
            .into_iter()
            .find(|d| d.os == "linux" && d.architecture == arch)
            .ok_or_else(|| AppError::NoMatch(format!("linux/{arch}")))?;
        if let Some(c) = current.as_ref().filter(|c| c.filename == wanted.filename) {
            self.write_current(&CachedApp {
                checked_at: now,
                ..c.clone()
            })?;
            return Ok(AppUpdate::Unchanged);
        }
        let sha256 = self.fetch_verified(source, &wanted)?;
        self.write_current(&CachedApp {
            filename: wanted.filename.clone(),
            sha256,
            checked_at: now,
        })?;
        if let Some(old) = current.as_ref().filter(|c| c.filename != wanted.filename) {
            let _ = fs::remove_file(self.dir.join(&old.filename));
        }
        Ok(AppUpdate::Updated {
            old: current.map(|c| c.filename),
            new: wanted.filename,
        })
    }

    fn fetch_verified(&self, source: &dyn AppSource, d: &AppDownload) -> Result<String, AppError> {
        if d.filename.contains('/') || d.filename.starts_with('.') || d.filename.is_empty() {
            return Err(AppError::Rejected {
                file: d.filename.clone(),
                reason: "bad file name".into(),
            });
        }
        let partial = fs_state::AtomicFile::create(&self.dir.join(&d.filename), 0o600)?;
        source
            .fetch(d, partial.temp_path())
            .map_err(AppError::Download)?;
        let rejected = |reason: String| AppError::Rejected {
            file: d.filename.clone(),
            reason,
        };
        let digest = hex::encode(Sha256::digest(fs::read(partial.temp_path())?));
        if let Some(want) = &d.sha256 {
            if !want.eq_ignore_ascii_case(&digest) {
                return Err(rejected(format!(
                    "sha256 {digest} is not the listed {want}"
                )));
            }
        }
        check_tarball(partial.temp_path()).map_err(rejected)?;
        partial.commit()?;
        Ok(digest)
    }

    fn write_current(&self, app: &CachedApp) -> Result<(), AppError> {
        let body = serde_json::to_vec(app).expect("serializable");
        fs_state::write_atomic(&self.dir.join("current.json"), &body, 0o600)?;
        Ok(())
    }
}

/// A gzip stream that opens with a well-formed tar entry (its header's checksum holds).
fn check_tarball(path: &Path) -> Result<(), String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let first = archive.entries().map_err(|e| e.to_string())?.next();
    match first {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(format!("not a gzip-compressed tar archive: {e}")),
        None => Err("an empty tar archive".into()),
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
