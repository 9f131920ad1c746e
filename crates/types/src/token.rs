//! The GitHub token the charm and the policy service act with.

use std::fmt;

use sha2::{Digest, Sha256};

/// A GitHub personal access token. Debug and Display never show it; the only way to
/// read it is [`Token::expose`], which callers use at the moment they build a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// A short, stable digest kept in charm state to notice a token change without
    /// storing the token.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..8])
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
