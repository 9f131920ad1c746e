//! The service's secrets: the charm token and the one-time tokens handed to runners.
//! Only SHA-256 digests are kept, and every comparison is constant-time (subtle), so
//! neither memory nor timing gives a token away. A one-time token is issued for one
//! runner (accepted only from that runner's name), revoked when the charm removes the
//! runner, and expires after a time to live. With a [`TokenFile`], unused one-time
//! tokens survive a restart of the service.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// More unused one-time tokens than any pool holds; beyond it the oldest are dropped
/// (their runners were long deleted) so an unbounded issuer cannot exhaust memory.
pub const MAX_OUTSTANDING: usize = 65_536;

/// How long a one-time token lives: a day. Long enough for a runner to wait idle for a
/// job through a quiet night or a weekend's reconciles (the charm replaces idle runners
/// older than [`MAX_IDLE_AGE`] well before), short enough that a token leaked from a
/// runner that somehow escaped removal is dead by the next working day.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The age past which the charm replaces an idle runner, so no runner waits for a job
/// holding a token about to expire: the TTL less margin for a reconcile that fails or
/// is late, and for a job taken just before the bound to reach its pre-job check.
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(20 * 3600);

// An idle runner is replaced hours before its token could expire.
const _: () = assert!(MAX_IDLE_AGE.as_secs() + 3600 <= DEFAULT_TTL.as_secs());

/// The longest runner name accepted (GitHub's own limit is 64).
const MAX_RUNNER_NAME: usize = 64;

use super::token_store::{Digest32, StoredToken, TokenFile, TokenStoreError};

fn digest(token: &str) -> Digest32 {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `name` can be a runner's name: 1 to 64 ASCII letters, digits, `-`, `_`, `.`
/// (what the charm's names are made of; nothing that could split a stored line).
pub fn valid_runner_name(name: &str) -> bool {
    (1..=MAX_RUNNER_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Now, in Unix seconds.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The charm's token, which may fetch one-time tokens and set the policy.
pub struct CharmToken(Digest32);

impl CharmToken {
    pub fn new(token: &str) -> Self {
        CharmToken(digest(token))
    }
    /// Constant-time: digests have a fixed length, so no early exit on length either.
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.0.ct_eq(&digest(presented)))
    }
}

/// Why a presented one-time token was refused. Every refusal of a known token uses it
/// up: whoever presented it wrongly has shown it is out of its runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Never issued, already used, revoked, or dropped.
    Unknown,
    /// Issued for `issued_for`, presented as `presented_as` (or without a name).
    OtherRunner {
        issued_for: String,
        presented_as: Option<String>,
    },
    /// Issued for `runner`, past its time to live.
    Expired { runner: String },
    /// Its use could not be stored, so it would count again after a restart.
    NotStored,
}

/// Why a charm's request for a token for a runner could not be met.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The name is not one a runner can have.
    #[error("not a runner name: 1 to {MAX_RUNNER_NAME} letters, digits, '-', '_' or '.'")]
    BadRunnerName,
    /// The token's digest could not be stored.
    #[error(transparent)]
    Store(#[from] TokenStoreError),
}

/// Issued, not yet used one-time tokens.
pub struct OneTimeTokens {
    outstanding: Mutex<VecDeque<StoredToken>>,
    /// Mirrors `outstanding`, changed under the same lock.
    file: Option<TokenFile>,
    ttl: Duration,
}

impl Default for OneTimeTokens {
    fn default() -> Self {
        OneTimeTokens {
            outstanding: Mutex::default(),
            file: None,
            ttl: DEFAULT_TTL,
        }
    }
}

impl OneTimeTokens {
    /// Tokens kept in memory only: a restart forgets them.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens kept in `file` too, starting from what it holds.
    pub fn persistent(file: TokenFile) -> Result<Self, TokenStoreError> {
        let mut outstanding: VecDeque<StoredToken> = file.load()?.into();
        while outstanding.len() > MAX_OUTSTANDING {
            outstanding.pop_front();
        }
        log::info!(
            "{} unused one-time token(s) loaded from {}",
            outstanding.len(),
            file.path().display()
        );
        Ok(OneTimeTokens {
            outstanding: Mutex::new(outstanding),
            file: Some(file),
            ttl: DEFAULT_TTL,
        })
    }

    /// The same tokens, with tokens issued from now on living `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long tokens issued now live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A fresh token for `runner`: 32 bytes from the OS CSPRNG, as 64 lowercase hex
    /// characters. With a file, the token is only handed out once its digest is stored.
    pub fn issue(&self, runner: &str) -> Result<String, IssueError> {
        self.issue_at(runner, unix_now())
    }

    fn issue_at(&self, runner: &str, now: u64) -> Result<String, IssueError> {
        if !valid_runner_name(runner) {
            return Err(IssueError::BadRunnerName);
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let mut outstanding = self.lock();
        // Tokens are issued in order of expiry (one lifetime), so the expired ones are
        // at the front; a restart with a shorter lifetime only delays their going.
        while outstanding.front().is_some_and(|t| t.expires_at <= now) {
            outstanding.pop_front();
        }
        let dropped = if outstanding.len() >= MAX_OUTSTANDING {
            log::warn!("more than {MAX_OUTSTANDING} unused one-time tokens: dropped the oldest");
            outstanding.pop_front()
        } else {
            None
        };
        outstanding.push_back(StoredToken {
            digest: digest(&token),
            runner: runner.to_string(),
            expires_at: now.saturating_add(self.ttl.as_secs()),
        });
        if let Err(e) = self.store(&outstanding) {
            // Undone: a token whose digest is not stored is never handed out.
            outstanding.pop_back();
            if let Some(d) = dropped {
                outstanding.push_front(d);
            }
            return Err(e.into());
        }
        Ok(token)
    }

    /// Accepts `presented` if it is an outstanding token issued for `runner` and not
    /// expired. A known token is used up whatever the answer. Every entry is compared,
    /// without stopping at a match, so the time taken says nothing about it. With a
    /// file, the use is stored before it counts: if the file cannot be written the
    /// token is refused (and forgotten in memory), never accepted twice.
    pub fn consume(&self, presented: &str, runner: Option<&str>) -> Result<(), Refusal> {
        self.consume_at(presented, runner, unix_now())
    }

    fn consume_at(&self, presented: &str, runner: Option<&str>, now: u64) -> Result<(), Refusal> {
        let wanted = digest(presented);
        let mut outstanding = self.lock();
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, candidate) in outstanding.iter().enumerate() {
            let hit = candidate.digest.ct_eq(&wanted);
            found |= hit;
            // Branch-free select of the matching index.
            index = u64::conditional_select(&index, &(i as u64), hit);
        }
        if !bool::from(found) {
            return Err(Refusal::Unknown);
        }
        let token = outstanding
            .remove(index as usize)
            .expect("the index of a match");
        // Expired tokens go with this change of the file.
        outstanding.retain(|t| t.expires_at > now);
        if let Err(e) = self.store(&outstanding) {
            log::error!("refused a one-time token whose use cannot be stored: {e}");
            return Err(Refusal::NotStored);
        }
        if runner != Some(token.runner.as_str()) {
            return Err(Refusal::OtherRunner {
                issued_for: token.runner,
                presented_as: runner.map(str::to_string),
            });
        }
        if token.expires_at <= now {
            return Err(Refusal::Expired {
                runner: token.runner,
            });
        }
        Ok(())
    }

    /// Forgets `runner`'s unused tokens, if it has any (its instance is being removed).
    /// Whether there were any.
    pub fn revoke(&self, runner: &str) -> Result<bool, TokenStoreError> {
        let mut outstanding = self.lock();
        let before = outstanding.len();
        outstanding.retain(|t| t.runner != runner);
        if outstanding.len() == before {
            return Ok(false);
        }
        // Not undone on failure: forgotten in memory is refused until a restart, and
        // the token still expires.
        self.store(&outstanding)?;
        Ok(true)
    }

    /// How many tokens are issued and unused.
    pub fn outstanding(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<StoredToken>> {
        self.outstanding.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store(&self, outstanding: &VecDeque<StoredToken>) -> Result<(), TokenStoreError> {
        match &self.file {
            Some(file) => file.store(outstanding.iter()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
