//! The service's secrets: the charm token and the one-time tokens handed to runners.
//! Only SHA-256 digests are kept, and every comparison is constant-time (subtle), so
//! neither memory nor timing gives a token away. With a [`TokenFile`], unused one-time
//! tokens survive a restart of the service.

use std::collections::VecDeque;
use std::sync::Mutex;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// More unused one-time tokens than any pool holds; beyond it the oldest are dropped
/// (their runners were long deleted) so an unbounded issuer cannot exhaust memory.
pub const MAX_OUTSTANDING: usize = 65_536;

use super::token_store::{Digest32, TokenFile, TokenStoreError};

fn digest(token: &str) -> Digest32 {
    Sha256::digest(token.as_bytes()).into()
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

/// Issued, not yet used one-time tokens.
#[derive(Default)]
pub struct OneTimeTokens {
    outstanding: Mutex<VecDeque<Digest32>>,
    /// Mirrors `outstanding`, changed under the same lock.
    file: Option<TokenFile>,
}

impl OneTimeTokens {
    /// Tokens kept in memory only: a restart forgets them.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokens kept in `file` too, starting from what it holds.
    pub fn persistent(file: TokenFile) -> Result<Self, TokenStoreError> {
        let mut outstanding: VecDeque<Digest32> = file.load()?.into();
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
        })
    }

    /// A fresh token: 32 bytes from the OS CSPRNG, as 64 lowercase hex characters. With
    /// a file, the token is only handed out once its digest is stored.
    pub fn issue(&self) -> Result<String, TokenStoreError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = if outstanding.len() >= MAX_OUTSTANDING {
            log::warn!("more than {MAX_OUTSTANDING} unused one-time tokens: dropped the oldest");
            outstanding.pop_front()
        } else {
            None
        };
        outstanding.push_back(digest(&token));
        if let Some(file) = &self.file {
            if let Err(e) = file.store(outstanding.iter()) {
                // Undone: a token whose digest is not stored is never handed out.
                outstanding.pop_back();
                if let Some(d) = dropped {
                    outstanding.push_front(d);
                }
                return Err(e);
            }
        }
        Ok(token)
    }

    /// Whether `presented` is an outstanding token; if so it is used up. Every entry is
    /// compared, without stopping at a match, so the time taken says nothing about it.
    /// With a file, the use is stored before it counts: if the file cannot be written
    /// the token is refused (and forgotten in memory), never accepted twice.
    pub fn consume(&self, presented: &str) -> bool {
        let wanted = digest(presented);
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, candidate) in outstanding.iter().enumerate() {
            let hit = candidate.ct_eq(&wanted);
            found |= hit;
            // Branch-free select of the matching index.
            index = u64::conditional_select(&index, &(i as u64), hit);
        }
        if !bool::from(found) {
            return false;
        }
        outstanding.remove(index as usize);
        match &self.file {
            Some(file) => match file.store(outstanding.iter()) {
                Ok(()) => true,
                Err(e) => {
                    log::error!("refused a one-time token whose use cannot be stored: {e}");
                    false
                }
            },
            None => true,
        }
    }

    /// How many tokens are issued and unused.
    pub fn outstanding(&self) -> usize {
        self.outstanding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_tokens_are_64_hex_and_single_use() {
        let tokens = OneTimeTokens::new();
        let a = tokens.issue().unwrap();
        let b = tokens.issue().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert!(!tokens.consume("nope"));
        assert!(tokens.consume(&b));
        assert!(!tokens.consume(&b), "second use of a token is refused");
        assert!(tokens.consume(&a));
        assert_eq!(tokens.outstanding(), 0);
    }

    #[test]
    fn oldest_tokens_are_dropped_beyond_the_cap() {
        let tokens = OneTimeTokens::new();
        let first = tokens.issue().unwrap();
        for _ in 0..MAX_OUTSTANDING {
            tokens.issue().unwrap();
        }
        assert_eq!(tokens.outstanding(), MAX_OUTSTANDING);
        assert!(!tokens.consume(&first));
    }

    #[test]
    fn persistent_tokens_survive_a_restart_and_stay_single_use() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("one-time-tokens"));
        let first = OneTimeTokens::persistent(file.clone()).unwrap();
        let (idle, used) = (first.issue().unwrap(), first.issue().unwrap());
        assert!(first.consume(&used));
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains(&idle), "only digests are stored");
        drop(first);
        let restarted = OneTimeTokens::persistent(file.clone()).unwrap();
        assert_eq!(restarted.outstanding(), 1);
        assert!(!restarted.consume(&used), "a used token stays used");
        assert!(
            restarted.consume(&idle),
            "an idle runner's token still works"
        );
        assert!(!OneTimeTokens::persistent(file).unwrap().consume(&idle));
    }

    #[test]
    fn an_unwritable_file_refuses_instead_of_forgetting() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("sub/one-time-tokens"));
        let tokens = OneTimeTokens::persistent(file).unwrap();
        assert!(tokens.issue().is_err(), "no token handed out unless stored");
        assert_eq!(tokens.outstanding(), 0);
    }

    #[test]
    fn charm_token_matches_only_itself() {
        let t = CharmToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches(""));
    }
}
