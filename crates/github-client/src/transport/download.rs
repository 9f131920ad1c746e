//! The runner tarball download of [`Transport`]: retried like an API call, written
//! through a temporary file, checked against its sha256, reported as one route.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};

use super::{build_agent, Transport};
use crate::calls;
use crate::error::{GithubError, Result};
use crate::retry::{run_with_retry, Attempt, RawResponse};
use ghr_types::Secret;

/// What an attempt that got the whole body leaves: the file not yet in place and the
/// digest of what was written, or why no file could be written.
type Fetched = Result<(fs_state::AtomicFile, String)>;

fn file_error(e: fs_state::FileError) -> GithubError {
    GithubError::Io {
        path: e.path,
        source: e.source,
    }
}

impl Transport {
    /// Downloads `url` to `dest` through a temporary file in the same directory, checks
    /// its sha256 and renames it into place, so `dest` is either whole and verified or
    /// untouched. Sends no GitHub token: the tarball host is not the API host.
    /// `bearer` is GHES's `temp_download_token`, when the downloads list gives one.
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        expected_sha256: &str,
        bearer: Option<&Secret>,
    ) -> Result<()> {
        let agent = build_agent(
            url,
            &self.proxy,
            self.options.connect_timeout,
            self.options.download_timeout,
        )?;
        let mut result: Option<Fetched> = None;
        let mut send = || {
            let attempt = self.fetch_once(&agent, url, dest, bearer, &mut result);
            calls::report("GET", calls::RUNNER_TARBALL, calls::outcome(&attempt));
            attempt
        };
        let mut jitter = rand::random::<f64>;
        let response = run_with_retry(
            &self.options.retry,
            self.options.clock.as_ref(),
            &mut jitter,
            "download",
            &mut send,
        )?;
        if response.status != 200 {
            return Err(GithubError::Unexpected {
                status: response.status,
                message: format!("downloading {url}"),
            });
        }
        let (file, actual) = result.expect("a 200 attempt always records its result")?;
        if !actual.eq_ignore_ascii_case(expected_sha256.trim()) {
            return Err(GithubError::ChecksumMismatch {
                url: url.to_string(),
                expected: expected_sha256.to_string(),
                actual,
            });
        }
        file.commit().map_err(file_error)
    }

    /// One attempt. Each writes a file of its own; the one that passes the check
    /// replaces `dest`, the others vanish when dropped.
    fn fetch_once(
        &self,
        agent: &ureq::Agent,
        url: &str,
        dest: &Path,
        bearer: Option<&Secret>,
        result: &mut Option<Fetched>,
    ) -> Attempt {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = agent.get(url);
        if let Some(token) = bearer {
            request = request.set("Authorization", &format!("Bearer {}", token.expose()));
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                return Attempt::Response(RawResponse {
                    status,
                    headers: vec![],
                    body: r.into_string().unwrap_or_default(),
                })
            }
            Err(ureq::Error::Transport(t)) => return Attempt::Transport(t.to_string()),
        };
        let ok = Attempt::Response(RawResponse {
            status: 200,
            ..Default::default()
        });
        let mut file = match fs_state::AtomicFile::create(dest, 0o600) {
            Ok(f) => f,
            Err(e) => {
                *result = Some(Err(file_error(e)));
                return ok;
            }
        };
        match copy_hashing(response.into_reader(), file.as_file_mut()) {
            Ok(digest) => *result = Some(Ok((file, digest))),
            Err(e) => return Attempt::Transport(format!("download interrupted: {e}")),
        }
        ok
    }
}

fn copy_hashing(mut reader: impl Read, out: &mut std::fs::File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    Ok(hex::encode(hasher.finalize()))
}
