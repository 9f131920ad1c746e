//! What the client authenticates with: a fixed bearer token or a GitHub App
//! installation. For an App, this module owns the key and the JWT it signs (RS256, as
//! GitHub requires); [`super::credential`] trades that JWT for installation tokens and
//! renews them, and [`super::token_cache`] keeps them between processes.

use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{GithubError, Result};
use ghr_types::{Secret, Token};

/// GitHub rejects a JWT whose `iat` is in its future: backdating by a minute absorbs
/// clock drift between this machine and GitHub (GitHub's own advice).
const BACKDATE_SECS: u64 = 60;
/// GitHub refuses a JWT that lives longer than 10 minutes; 9 leaves room for drift.
const LIFETIME_SECS: u64 = 540;

/// What a GitHub App installation authenticates with.
#[derive(Clone, Debug)]
pub struct AppKey {
    /// The JWT's `iss`: the App's client ID, or its numeric app ID (GHES 3.13 and older).
    pub issuer: String,
    pub installation_id: u64,
    /// The App's private key, PEM: PKCS#1 (`RSA PRIVATE KEY`, what GitHub downloads) or
    /// PKCS#8. `Secret` keeps it out of `Debug`.
    pub private_key: Secret,
}

impl AppKey {
    /// Checks that the key is a usable RSA private key PEM (the error names no key
    /// material): it is parsed and made to sign once, since a PEM that parses may
    /// still hold no RSA key that ring accepts.
    pub fn validate(&self) -> Result<()> {
        JwtSigner::new(self).map(drop)
    }

    /// Stable, not reversible: sha256 over issuer, installation and key, hex, short.
    /// For "did the credential change" and for telling cached tokens apart.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        for part in [
            self.issuer.as_bytes(),
            &self.installation_id.to_be_bytes(),
            self.private_key.expose().as_bytes(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hex::encode(&hasher.finalize()[..8])
    }
}

/// The credential of a client's own requests.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A personal access token (or any fixed bearer).
    Token(Token),
    /// An App installation; installation tokens are kept in `cache` (0600 JSON) when
    /// given, so several processes and clients on one unit share one token. The
    /// cache's directory must exist.
    App { key: AppKey, cache: Option<PathBuf> },
}

impl Credential {
    /// A short digest that changes when the credential does; no secret can be read
    /// back from it.
    pub fn fingerprint(&self) -> String {
        match self {
            Credential::Token(token) => token.fingerprint(),
            Credential::App { key, .. } => key.fingerprint(),
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: u64,
    exp: u64,
    iss: &'a str,
}

/// Signs the JWTs of one App key, parsed once.
pub(crate) struct JwtSigner {
    issuer: String,
    key: EncodingKey,
}

/// Not derived: the encoding key would print as bytes.
impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtSigner({}, <key>)", self.issuer)
    }
}

impl JwtSigner {
    /// Parses the key and signs a probe JWT, so an unusable key fails here, when the
    /// client is built, rather than on the first request.
    pub(crate) fn new(app: &AppKey) -> Result<Self> {
        let key = EncodingKey::from_rsa_pem(app.private_key.expose().as_bytes())
            .map_err(|e| key_error(e.kind()))?;
        let signer = JwtSigner {
            issuer: app.issuer.clone(),
            key,
        };
        signer.sign(BACKDATE_SECS)?;
        Ok(signer)
    }

    /// A JWT for GitHub's App endpoints, valid from a minute before `now_unix` for
    /// nine minutes.
    pub(crate) fn sign(&self, now_unix: u64) -> Result<Secret> {
        let claims = Claims {
            iat: now_unix.saturating_sub(BACKDATE_SECS),
            exp: now_unix + LIFETIME_SECS,
            iss: &self.issuer,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| key_error(e.kind()))
    }
}

/// Why a key is unusable, from the error's kind only: no variant we show carries key
/// material (ring's rejection reasons are fixed words like `InvalidEncoding`).
fn key_error(kind: &ErrorKind) -> GithubError {
    let why = match kind {
        ErrorKind::InvalidKeyFormat => {
            "not an RSA private key in PEM form (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`)"
                .to_string()
        }
        ErrorKind::InvalidRsaKey(reason) => format!("the RSA key is rejected ({reason})"),
        ErrorKind::RsaFailedSigning => "signing with the RSA key failed".to_string(),
        _ => "the key cannot sign an RS256 JWT".to_string(),
    };
    GithubError::AppKey(why)
}

/// GitHub's answer to an installation-token request.
#[derive(Deserialize)]
pub(crate) struct InstallationToken {
    pub token: Secret,
    pub expires_at: String,
}

/// GitHub's `expires_at` (RFC 3339, UTC) as Unix seconds.
pub(crate) fn parse_expiry(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
#[path = "app_auth_tests.rs"]
mod tests;
