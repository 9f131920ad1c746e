//! The one redacting secret type: the GitHub token the charm and the policy service act
//! with, the charm's token for the policy service, and the one-time secrets GitHub hands
//! out (registration tokens, JIT configs, download tokens).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// A secret string. Debug and Display never show it, and its memory is wiped when it is
/// dropped (`secrecy`); the only way to read it is [`Secret::expose`], which callers use
/// at the moment they build a request or write a root-only file.
#[derive(Clone)]
pub struct Secret(SecretString);

/// The name the GitHub token and the charm token go by: the same type as [`Secret`].
pub type Token = Secret;

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    /// A short, stable digest kept in charm state to notice a token change without
    /// storing the token.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.expose().as_bytes());
        hex::encode(&digest[..8])
    }
}

/// Equal values, as config and state comparisons need (`secrecy` has no equality).
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Serialized as the plain string: GitHub's answers carry these secrets (the simulator
/// writes them), and requests to GitHub and the policy service send them.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SecretString::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "ghp_AABBCCDD0123456789";

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new(VALUE);
        let shown = format!("{s} {s:?} {s:#?} {:?}", Some(vec![s.clone()]));
        assert!(!shown.contains("AABBCC"), "{shown}");
        assert_eq!(format!("{s} {s:?}"), "<redacted> Secret(<redacted>)");
        assert_eq!(s.expose(), VALUE);
    }

    #[test]
    fn fingerprint_is_stable_short_and_not_the_value() {
        let s = Secret::new(VALUE);
        assert_eq!(s.fingerprint(), Secret::new(VALUE).fingerprint());
        assert_eq!(s.fingerprint().len(), 16);
        assert_ne!(s.fingerprint(), Secret::new("other").fingerprint());
        assert!(!VALUE.contains(&s.fingerprint()));
    }

    #[test]
    fn serde_round_trips_the_plain_string() {
        let s = Secret::new(VALUE);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("\"{VALUE}\""));
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert_ne!(back, Secret::new("other"));
    }
}
