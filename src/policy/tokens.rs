//! The service's secrets: the charm token and the one-time tokens handed to runners.
//! Only SHA-256 digests are kept, and every comparison is constant-time (subtle), so
//! neither memory nor timing gives a token away.

use std::collections::VecDeque;
use std::sync::Mutex;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// More unused one-time tokens than any pool holds; beyond it the oldest are dropped
/// (their runners were long deleted) so an unbounded issuer cannot exhaust memory.
pub const MAX_OUTSTANDING: usize = 65_536;

type Digest32 = [u8; 32];

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
}

impl OneTimeTokens {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh token: 32 bytes from the OS CSPRNG, as 64 lowercase hex characters.
    pub fn issue(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|e| e.into_inner());
        if outstanding.len() >= MAX_OUTSTANDING {
            outstanding.pop_front();
            log::warn!("more than {MAX_OUTSTANDING} unused one-time tokens: dropped the oldest");
        }
        outstanding.push_back(digest(&token));
        token
    }

    /// Whether `presented` is an outstanding token; if so it is used up. Every entry is
    /// compared, without stopping at a match, so the time taken says nothing about it.
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
        if bool::from(found) {
            outstanding.remove(index as usize);
            true
        } else {
            false
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
        let a = tokens.issue();
        let b = tokens.issue();
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
        let first = tokens.issue();
        for _ in 0..MAX_OUTSTANDING {
            tokens.issue();
        }
        assert_eq!(tokens.outstanding(), MAX_OUTSTANDING);
        assert!(!tokens.consume(&first));
    }

    #[test]
    fn charm_token_matches_only_itself() {
        let t = CharmToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches(""));
    }
}
