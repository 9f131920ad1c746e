//! The check of a GitHub App's JWT (`Authorization: Bearer <JWT>` on
//! `POST /app/installations/{id}/access_tokens`): RS256 only, signed by the key of the
//! App its `iss` names, and within GitHub's time bounds. Each refusal carries the
//! message GitHub gives for it.
//!
//! The claims are checked here, one by one, rather than by `jsonwebtoken`'s validation:
//! that would fold several refusals into one error and apply its own leeway; the crate
//! only verifies the signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::apps::Apps;

/// The longest a JWT may live ahead of GitHub's clock (GitHub: 10 minutes).
pub const MAX_LIFETIME_SECS: i64 = 600;
/// Slack on that limit for a request in flight or a clock a little off; GitHub's own is
/// undocumented and small. 30 s keeps a JWT with `exp` at 10 min 30 s out refused.
pub const EXP_SKEW_SECS: i64 = 30;
/// How far ahead of GitHub's clock `iat` may be (GitHub's docs ask clients to backdate
/// `iat` by 60 s for clock drift, which suggests its tolerance in the other direction).
pub const IAT_SKEW_SECS: i64 = 60;

/// Why a JWT was refused; [`JwtRefusal::message`] is GitHub's text for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtRefusal {
    /// Not three base64url parts of JSON, an `alg` other than RS256 (`none`, HS256...),
    /// or a signature the App's key does not verify: GitHub says the same for all.
    Undecodable,
    /// `iss` names no App (neither a client ID nor an app ID).
    UnknownIssuer,
    /// `exp` missing, not a number, or past.
    Expired,
    /// `exp` more than 10 minutes (plus [`EXP_SKEW_SECS`]) ahead.
    TooFarAhead,
    /// `iat` missing, not a number, or ahead of GitHub's clock by more than
    /// [`IAT_SKEW_SECS`].
    IssuedInFuture,
}

impl JwtRefusal {
    pub fn message(self) -> &'static str {
        match self {
            JwtRefusal::Undecodable => "A JSON web token could not be decoded",
            JwtRefusal::UnknownIssuer => "Integration not found",
            JwtRefusal::Expired => {
                "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
            }
            JwtRefusal::TooFarAhead => "'Expiration time' claim ('exp') is too far in the future",
            JwtRefusal::IssuedInFuture => {
                "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
            }
        }
    }
}

/// The app ID of the App that signed `jwt`, if GitHub would take it at `now` (Unix
/// seconds, GitHub's clock).
pub fn verify(apps: &Apps, jwt: &str, now: i64) -> Result<u64, JwtRefusal> {
    let (signed, signature) = jwt.rsplit_once('.').ok_or(JwtRefusal::Undecodable)?;
    let (header, payload) = signed.split_once('.').ok_or(JwtRefusal::Undecodable)?;
    if json_part(header)?.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(JwtRefusal::Undecodable);
    }
    let claims = json_part(payload)?;
    let app = issuer(&claims)
        .and_then(|iss| apps.by_issuer(&iss))
        .ok_or(JwtRefusal::UnknownIssuer)?;
    if !signature_holds(signature, signed, &app.key) {
        return Err(JwtRefusal::Undecodable);
    }
    check_times(&claims, now)?;
    Ok(app.app_id)
}

/// One base64url part of a JWT, as a JSON object.
fn json_part(part: &str) -> Result<Value, JwtRefusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtRefusal::Undecodable)?;
    match serde_json::from_slice(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(JwtRefusal::Undecodable),
    }
}

/// `iss` as a string: GitHub's docs show the app ID as a number or a string.
fn issuer(claims: &Value) -> Option<String> {
    match claims.get("iss")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// RS256 whatever the header says: the algorithm is never taken from the token (an
/// HS256 token "signed" with the public key must not pass).
fn signature_holds(signature: &str, signed: &str, key: &DecodingKey) -> bool {
    jsonwebtoken::crypto::verify(signature, signed.as_bytes(), key, Algorithm::RS256)
        .unwrap_or(false)
}

/// GitHub's time bounds: `exp` in the future but at most 10 minutes (and the skew)
/// away, `iat` not ahead of the clock by more than its skew.
pub fn check_times(claims: &Value, now: i64) -> Result<(), JwtRefusal> {
    let exp = seconds(claims, "exp").ok_or(JwtRefusal::Expired)?;
    if exp <= now {
        return Err(JwtRefusal::Expired);
    }
    if exp > now + MAX_LIFETIME_SECS + EXP_SKEW_SECS {
        return Err(JwtRefusal::TooFarAhead);
    }
    match seconds(claims, "iat") {
        Some(iat) if iat <= now + IAT_SKEW_SECS => Ok(()),
        _ => Err(JwtRefusal::IssuedInFuture),
    }
}

/// A NumericDate claim; RFC 7519 allows fractions, which are cut to whole seconds.
fn seconds(claims: &Value, name: &str) -> Option<i64> {
    let value = claims.get(name)?;
    value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn time_bounds_each_have_their_refusal() {
        let at =
            |iat: i64, exp: i64| check_times(&json!({"iat": NOW + iat, "exp": NOW + exp}), NOW);
        assert_eq!(at(-60, 540), Ok(()), "what the scaleset crate sends");
        assert_eq!(at(0, 630), Ok(()), "10 minutes and the skew");
        assert_eq!(at(0, 631), Err(JwtRefusal::TooFarAhead));
        assert_eq!(at(0, 1200), Err(JwtRefusal::TooFarAhead));
        assert_eq!(at(-700, 0), Err(JwtRefusal::Expired));
        assert_eq!(at(-700, -60), Err(JwtRefusal::Expired));
        assert_eq!(at(60, 500), Ok(()));
        assert_eq!(at(61, 500), Err(JwtRefusal::IssuedInFuture));
        let missing = check_times(&json!({"iat": NOW}), NOW);
        assert_eq!(missing, Err(JwtRefusal::Expired));
        let text = check_times(&json!({"iat": NOW, "exp": "soon"}), NOW);
        assert_eq!(text, Err(JwtRefusal::Expired));
        let no_iat = check_times(&json!({"exp": NOW + 60}), NOW);
        assert_eq!(no_iat, Err(JwtRefusal::IssuedInFuture));
        let fractions = check_times(
            &json!({"iat": NOW as f64 - 0.5, "exp": NOW as f64 + 60.5}),
            NOW,
        );
        assert_eq!(fractions, Ok(()));
    }

    #[test]
    fn shapes_that_are_not_jwts_are_undecodable() {
        let apps = Apps::default();
        let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = part(json!({"iss": "1", "iat": NOW, "exp": NOW + 60}));
        for jwt in [
            String::new(),
            "ghp_a_personal_access_token".into(),
            "a.b".into(),
            format!("{}.{claims}.", part(json!({"alg": "none"}))),
            format!("{}.{claims}.c2ln", part(json!({"alg": "HS256"}))),
            format!("{}.{claims}.c2ln", part(json!("RS256"))),
            format!("{}.bm90IGpzb24.c2ln", part(json!({"alg": "RS256"}))),
        ] {
            assert_eq!(
                verify(&apps, &jwt, NOW),
                Err(JwtRefusal::Undecodable),
                "{jwt}"
            );
        }
        let unknown = format!("{}.{claims}.c2ln", part(json!({"alg": "RS256"})));
        assert_eq!(verify(&apps, &unknown, NOW), Err(JwtRefusal::UnknownIssuer));
    }
}
