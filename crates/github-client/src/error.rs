//! The one error type of the GitHub client. Messages are written for a `blocked` status
//! or an action failure, and never contain a token: server text is scrubbed first.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// 401: the personal access token is wrong, expired or revoked.
    #[error("token rejected by GitHub")]
    TokenRejected,
    /// 404 on the org or repository itself (GitHub answers 404 for "no access" too).
    #[error("org or repository not found or token lacks access: {path}")]
    PathNotFound { path: String },
    /// 404 on `generate-jitconfig` only: older GHES lacks JIT runners (or the path is
    /// wrong; a registration-token call tells the two apart).
    #[error("GitHub does not offer JIT runner configuration here (404 on generate-jitconfig)")]
    JitUnavailable,
    /// 404 on `actions/runner-registration`: this GitHub (e.g. an older GHES) has no
    /// runner scale-set API.
    #[error("GitHub does not offer runner scale sets here (404 on actions/runner-registration)")]
    ScaleSetsUnavailable,
    /// 404 from the Actions service on a scale set, runner or other object it names.
    #[error("not found on the GitHub Actions service: {what}")]
    ServiceNotFound { what: String },
    /// 409 on opening a message session: another listener holds the scale set's one
    /// session, or a crashed one's has not timed out yet.
    #[error("scale set {scale_set} already has an active message session")]
    SessionConflict { scale_set: u64 },
    /// 404 on the message queue: the service dropped the session (timed out or closed).
    #[error("the GitHub Actions service no longer knows message session {session}")]
    SessionGone { session: String },
    /// 403 without a rate-limit cause: the token lacks a scope or the org forbids it.
    #[error("GitHub refused the request ({status}): {message}")]
    Forbidden { status: u16, message: String },
    /// Primary rate limit exhausted and the reset is too far away to wait for.
    #[error("GitHub rate limit exhausted until {}", .until.to_rfc3339_opts(SecondsFormat::Secs, true))]
    RateLimited { until: DateTime<Utc> },
    /// Secondary rate limit whose retry-after is longer than we may wait.
    #[error("GitHub secondary rate limit: retry after {}s", .retry_after.as_secs())]
    SecondaryRateLimited { retry_after: Duration },
    /// 409 or 422 on a create: e.g. a runner of that name exists already.
    #[error("GitHub rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// 5xx, still failing after the retries allowed.
    #[error("GitHub server error {status} after {attempts} attempt(s)")]
    Server { status: u16, attempts: u32 },
    /// Connection refused, reset, timed out, or a TLS failure, after retries.
    #[error("cannot reach GitHub after {attempts} attempt(s): {message}")]
    Transport { message: String, attempts: u32 },
    /// Any other status we do not expect on this endpoint.
    #[error("unexpected GitHub response {status}: {message}")]
    Unexpected { status: u16, message: String },
    /// A body that is not the JSON the endpoint documents.
    #[error("cannot parse GitHub response from {endpoint}: {message}")]
    Decode { endpoint: String, message: String },
    /// The API base or a URL from a response is unusable.
    #[error("invalid URL {url}: {message}")]
    InvalidUrl { url: String, message: String },
    /// The downloaded runner tarball does not have the advertised sha256.
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    /// The GitHub App's private key is not a usable RSA PEM; the text says why
    /// without quoting the key. The operator must supply another key.
    #[error("the GitHub App private key is unusable: {0}")]
    AppKey(String),
    /// GitHub refused to trade the App's JWT for an installation token (401: a key,
    /// issuer or clock GitHub does not accept; 404: not this App's installation;
    /// 403/422: e.g. a suspended App). `message` is GitHub's, scrubbed of the JWT.
    /// Like [`GithubError::TokenRejected`], only the operator can fix it.
    #[error("GitHub refused an installation token for the GitHub App ({status}): {message}")]
    AppAuth { status: u16, message: String },
    /// Writing the download failed.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl GithubError {
    /// Worth trying again on a later reconcile without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GithubError::RateLimited { .. }
                | GithubError::SecondaryRateLimited { .. }
                | GithubError::Server { .. }
                | GithubError::Transport { .. }
        )
    }

    /// The credential itself is refused or unusable: a rejected token, an App key that
    /// cannot sign, or GitHub refusing the App's JWT. Retrying will not help; the
    /// operator must change the token or App settings.
    pub fn is_credential_rejected(&self) -> bool {
        matches!(
            self,
            GithubError::TokenRejected | GithubError::AppKey(_) | GithubError::AppAuth { .. }
        )
    }
}

pub type Result<T, E = GithubError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let until = DateTime::parse_from_rfc3339("2026-11-28T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            GithubError::RateLimited { until }.to_string(),
            "GitHub rate limit exhausted until 2026-11-28T05:00:00Z"
        );
        assert_eq!(
            GithubError::TokenRejected.to_string(),
            "token rejected by GitHub"
        );
        assert!(GithubError::PathNotFound {
            path: "acme".into()
        }
        .to_string()
        .starts_with("org or repository not found or token lacks access"));
        assert!(GithubError::Server {
            status: 502,
            attempts: 3
        }
        .is_transient());
        assert!(!GithubError::TokenRejected.is_transient());
    }

    #[test]
    fn app_credential_failures_are_for_the_operator_not_transient() {
        let refused = GithubError::AppAuth {
            status: 401,
            message: "A JSON web token could not be decoded".into(),
        };
        let bad_key = GithubError::AppKey("not an RSA private key in PEM form".into());
        for e in [&refused, &bad_key, &GithubError::TokenRejected] {
            assert!(e.is_credential_rejected(), "{e}");
            assert!(!e.is_transient(), "{e}");
        }
        assert!(!GithubError::Server {
            status: 502,
            attempts: 3
        }
        .is_credential_rejected());
        assert_eq!(
            refused.to_string(),
            "GitHub refused an installation token for the GitHub App (401): \
             A JSON web token could not be decoded"
        );
    }
}
