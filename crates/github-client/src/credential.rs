//! The credential a transport sends on its own requests: a fixed token as is, or a
//! GitHub App installation token, minted from a signed JWT when none is at hand and
//! renewed shortly before it expires, so a steady reconcile costs no extra request.

use std::sync::Mutex;

use super::app_auth::{parse_expiry, Credential, InstallationToken, JwtSigner};
use super::error::{GithubError, Result};
use super::retry::RawResponse;
use super::token_cache::{CachedToken, TokenFile};
use super::transport::{Auth, Call, Scheme, Transport};
use ghr_types::{Secret, Token};

/// A transport's own credential, ready to use.
#[derive(Debug)]
pub(crate) enum OwnCredential {
    Fixed(Token),
    App(Box<Installation>),
}

impl OwnCredential {
    /// Parses an App key at once, so a bad key fails when the client is built.
    pub fn new(credential: Credential, api_base: &str) -> Result<Self> {
        Ok(match credential {
            Credential::Token(token) => OwnCredential::Fixed(token),
            Credential::App { key, cache } => OwnCredential::App(Box::new(Installation {
                installation_id: key.installation_id,
                // A token is good only where it was issued: the same App key towards
                // another GitHub (a changed `github-url`) must not reuse it.
                fingerprint: format!("{} at {api_base}", key.fingerprint()),
                signer: JwtSigner::new(&key)?,
                file: TokenFile::new(cache),
                current: Mutex::new(None),
            })),
        })
    }

    /// The token to scrub from every server text, when it never changes.
    pub fn fixed(&self) -> Option<&Token> {
        match self {
            OwnCredential::Fixed(token) => Some(token),
            OwnCredential::App(_) => None,
        }
    }

    /// `call` with this credential as its `Bearer`.
    pub fn send(&self, transport: &Transport, call: &Call) -> Result<RawResponse> {
        match self {
            OwnCredential::Fixed(token) => transport.send_as(call, Scheme::Bearer, token),
            OwnCredential::App(app) => app.send(transport, call),
        }
    }
}

/// One App installation's tokens.
#[derive(Debug)]
pub(crate) struct Installation {
    installation_id: u64,
    /// Of the App key and the API base, to tell our cache file from another App's
    /// or another GitHub's.
    fingerprint: String,
    signer: JwtSigner,
    file: TokenFile,
    /// Held while a token is looked up or minted, so concurrent requests of one
    /// client mint once.
    current: Mutex<Option<CachedToken>>,
}

impl Installation {
    /// `call` with an installation token. A 401 on a token we had kept (revoked,
    /// expired early, or our clock is off) mints a new one and sends the call once
    /// more; a 401 on a token minted for this call is the answer.
    fn send(&self, transport: &Transport, call: &Call) -> Result<RawResponse> {
        let (token, fresh) = self.token(transport)?;
        let response = transport.send_as(call, Scheme::Bearer, &token)?;
        if response.status != 401 || fresh {
            return Ok(response);
        }
        log::info!("GitHub rejected the kept App installation token; minting a new one");
        self.forget(&token);
        let (token, _) = self.token(transport)?;
        transport.send_as(call, Scheme::Bearer, &token)
    }

    /// A token not yet due for renewal, and whether it was minted just now. Memory
    /// first, then the cache file (another client or process may have minted one),
    /// then GitHub.
    fn token(&self, transport: &Transport) -> Result<(Secret, bool)> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let now = unix_now(transport);
        if let Some(kept) = current.as_ref().filter(|c| !c.due(now)) {
            return Ok((kept.token.clone(), false));
        }
        if let Some(shared) = self.file.load(&self.fingerprint).filter(|c| !c.due(now)) {
            let token = shared.token.clone();
            *current = Some(shared);
            return Ok((token, false));
        }
        let minted = self.mint(transport)?;
        self.file.store(&minted);
        let token = minted.token.clone();
        *current = Some(minted);
        Ok((token, true))
    }

    /// Drops `stale` from memory and the cache file, unless a newer token replaced it.
    fn forget(&self, stale: &Secret) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|c| &c.token == stale) {
            *current = None;
        }
        self.file.forget(stale, &self.fingerprint);
    }

    /// Trades a fresh JWT for an installation token. The exchange goes through the
    /// transport like any call: counted, reported, retried on 5xx, scrubbed of the JWT.
    fn mint(&self, transport: &Transport) -> Result<CachedToken> {
        let jwt = self.signer.sign(transport.options().clock.unix_now())?;
        let url = transport.url(&format!(
            "app/installations/{}/access_tokens",
            self.installation_id
        ));
        let response = transport.call(&Call {
            method: "POST",
            url: &url,
            auth: Auth::Bearer(&jwt),
            ..Call::default()
        })?;
        if response.status != 201 {
            return Err(GithubError::AppAuth {
                status: response.status,
                message: response.message(),
            });
        }
        let answer: InstallationToken = serde_json::from_str(&response.body)
            .map_err(|e| undecodable(&format!("{:?} at column {}", e.classify(), e.column())))?;
        let expires_at = parse_expiry(&answer.expires_at)
            .ok_or_else(|| undecodable("expires_at is not an RFC 3339 time"))?;
        log::info!(
            "minted a GitHub App installation token valid until {}",
            answer.expires_at
        );
        Ok(CachedToken {
            fingerprint: self.fingerprint.clone(),
            token: answer.token,
            expires_at,
            fetched_at: unix_now(transport),
        })
    }
}

/// Wall-clock time from the transport's clock: expiries are stated in it.
fn unix_now(transport: &Transport) -> i64 {
    i64::try_from(transport.options().clock.unix_now()).unwrap_or(i64::MAX)
}

/// A 201 whose body is not the token GitHub documents. The message comes from
/// serde's classification, not its text, which could quote the token.
fn undecodable(message: &str) -> GithubError {
    GithubError::Decode {
        endpoint: "app/installations/{id}/access_tokens".into(),
        message: message.into(),
    }
}

#[cfg(test)]
#[path = "credential_tests.rs"]
mod tests;
