//! The short-lived tokens GitHub issues to register a runner (`config.sh --token`) and
//! to remove one, bound to a scope and a kind, valid for an hour.

use chrono::{DateTime, Utc};

use super::state::{Scope, World};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Registration,
    Remove,
}

#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub scope: Scope,
    pub kind: TokenKind,
    pub expires_at: DateTime<Utc>,
}

impl World {
    pub fn issue_token(
        &mut self,
        scope: Scope,
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let token = random_token(29);
        let expires_at = now + chrono::Duration::hours(1);
        self.issued.insert(
            token.clone(),
            IssuedToken {
                scope,
                kind,
                expires_at,
            },
        );
        (token, expires_at)
    }

    /// Whether `token` is an unexpired token of `kind` for `scope`.
    pub fn token_valid(
        &self,
        token: &str,
        kind: TokenKind,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> bool {
        self.issued
            .get(token)
            .is_some_and(|t| t.kind == kind && &t.scope == scope && now < t.expires_at)
    }
}

/// A random token of `len` upper-case letters and digits, as GitHub's tokens look.
pub fn random_token(len: usize) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect::<String>()
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_scope_and_kind_and_expire() {
        let mut w = World::for_tests(3);
        let now = Utc::now();
        let acme = Scope::Org("acme".into());
        let (token, _) = w.issue_token(acme.clone(), TokenKind::Registration, now);
        assert!(w.token_valid(&token, TokenKind::Registration, &acme, now));
        assert!(!w.token_valid(&token, TokenKind::Remove, &acme, now));
        assert!(!w.token_valid(
            &token,
            TokenKind::Registration,
            &Scope::Org("x".into()),
            now
        ));
        assert!(!w.token_valid(
            &token,
            TokenKind::Registration,
            &acme,
            now + chrono::Duration::minutes(61)
        ));
    }
}
