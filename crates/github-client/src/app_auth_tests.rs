//! The App key and its JWT, and a refused exchange, against a loopback GitHub that
//! records what it is sent.

use super::*;

use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde::Deserialize;

use crate::test_server::{api_call, app_key, keys, FakeGithub, ECHO, INSTALLATION, ISSUER, T0};

#[derive(Debug, Deserialize)]
struct SeenClaims {
    iat: u64,
    exp: u64,
    iss: String,
}

/// The claims of `jwt`, verified with `public_pem`. Expiry is checked by the test
/// against the manual clock, not by the library against the real one.
fn verify(jwt: &str, public_pem: &str) -> SeenClaims {
    let key = DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iat", "exp", "iss"]);
    validation.set_issuer(&[ISSUER]);
    decode::<SeenClaims>(jwt, &key, &validation).unwrap().claims
}

/// Text that only a PEM body holds: a line of its base64.
fn pem_line(pem: &str) -> &str {
    pem.lines().nth(3).unwrap()
}

#[test]
fn the_exchange_carries_an_rs256_jwt_that_verifies_with_either_pem_form() {
    let pair = &keys()[0];
    for pem in [&pair.pkcs1_pem, &pair.pkcs8_pem] {
        let server = FakeGithub::start(3600);
        api_call(&server.client(pem, None).unwrap()).unwrap();
        let exchange = &server.exchanges()[0];
        assert_eq!(exchange.method, "POST");
        assert_eq!(exchange.path, "/app/installations/4242/access_tokens");
        assert_eq!(
            decode_header(&exchange.bearer).unwrap().alg,
            Algorithm::RS256
        );
        let claims = verify(&exchange.bearer, &pair.public_pem);
        assert_eq!(claims.iat, T0 - 60, "backdated a minute for clock drift");
        assert_eq!(claims.exp, T0 + 540, "under GitHub's 10-minute bound");
        assert_eq!(claims.iss, ISSUER);
        // The request itself carries the installation token, not the JWT.
        assert_eq!(server.api_bearers(), server.minted());
    }
}

#[test]
fn a_jwt_signed_by_another_key_does_not_verify() {
    let [ours, theirs] = keys();
    let server = FakeGithub::start(3600);
    api_call(&server.client(&ours.pkcs1_pem, None).unwrap()).unwrap();
    let jwt = &server.exchanges()[0].bearer;
    let key = DecodingKey::from_rsa_pem(theirs.public_pem.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    assert!(decode::<SeenClaims>(jwt, &key, &validation).is_err());
}

#[test]
fn an_unusable_key_is_an_app_key_error_that_quotes_no_key_material() {
    let pair = &keys()[0];
    let body = pem_line(&pair.pkcs1_pem);
    let truncated: String = pair
        .pkcs1_pem
        .lines()
        .take(6)
        .collect::<Vec<_>>()
        .join("\n");
    let cases = [
        "garbage, not a PEM at all".to_string(),
        pair.public_pem.clone(),
        // A PEM frame with a body that is no RSA key: parses as PEM, fails to sign.
        format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"),
        truncated,
    ];
    let server = FakeGithub::start(3600);
    for pem in &cases {
        let error = app_key(pem).validate().unwrap_err();
        assert!(matches!(error, GithubError::AppKey(_)), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(body), "{shown}");
        assert!(!shown.contains("garbage"), "{shown}");
        let built = server
            .client(pem, None)
            .err()
            .expect("a bad key fails the build");
        assert!(matches!(built, GithubError::AppKey(_)), "{built:?}");
    }
    assert!(
        server.seen().is_empty(),
        "no request is sent with a bad key"
    );
}

#[test]
fn both_pem_forms_validate() {
    let pair = &keys()[0];
    app_key(&pair.pkcs1_pem).validate().unwrap();
    app_key(&pair.pkcs8_pem).validate().unwrap();
}

#[test]
fn a_refused_exchange_is_app_auth_with_githubs_message_scrubbed_of_the_jwt() {
    let pair = &keys()[0];
    let server = FakeGithub::start(3600);
    let refusal = format!(r#"{{"message": "A JSON web token could not be decoded: {ECHO}"}}"#);
    server.script_exchange(401, &refusal);
    let client = server.client(&pair.pkcs1_pem, None).unwrap();
    let error = api_call(&client).unwrap_err();
    let jwt = &server.exchanges()[0].bearer;
    let GithubError::AppAuth { status, message } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*status, 401);
    assert!(
        message.starts_with("A JSON web token could not be decoded"),
        "{message}"
    );
    let shown = format!("{error} {error:?}");
    assert!(
        shown.contains("<redacted>"),
        "the echo was scrubbed: {shown}"
    );
    assert!(!shown.contains(jwt.as_str()), "{shown}");
    assert!(!shown.contains(pem_line(&pair.pkcs1_pem)), "{shown}");
    assert!(error.is_credential_rejected());
    assert!(
        server.api_bearers().is_empty(),
        "no API request without a token"
    );
}

#[test]
fn a_missing_installation_is_app_auth_404() {
    let server = FakeGithub::start(3600);
    server.script_exchange(404, r#"{"message": "Not Found"}"#);
    let client = server.client(&keys()[0].pkcs8_pem, None).unwrap();
    let error = api_call(&client).unwrap_err();
    assert!(
        matches!(&error, GithubError::AppAuth { status: 404, message } if message == "Not Found"),
        "{error:?}"
    );
}

#[test]
fn an_exchange_answer_without_a_token_is_a_decode_error_quoting_nothing() {
    let server = FakeGithub::start(3600);
    let odd = r#"{"token": "ghs_secretButOdd", "expires_at": "tomorrow"}"#;
    server.script_exchange(201, odd);
    let client = server.client(&keys()[0].pkcs8_pem, None).unwrap();
    let error = api_call(&client).unwrap_err().to_string();
    assert!(error.contains("expires_at"), "{error}");
    assert!(!error.contains("ghs_secretButOdd"), "{error}");
    server.script_exchange(201, r#"{"token": 17, "expires_at": "ghs_quoted"}"#);
    let error = api_call(&client).unwrap_err().to_string();
    assert!(!error.contains("ghs_quoted"), "{error}");
}

#[test]
fn debug_shows_no_key_and_fingerprints_tell_credentials_apart() {
    let pair = &keys()[0];
    let key = app_key(&pair.pkcs1_pem);
    let credential = Credential::App {
        key: key.clone(),
        cache: None,
    };
    let shown = format!("{key:?} {credential:?} {credential:#?}");
    assert!(!shown.contains(pem_line(&pair.pkcs1_pem)), "{shown}");
    assert!(shown.contains(ISSUER), "the issuer is no secret: {shown}");

    assert_eq!(key.fingerprint(), app_key(&pair.pkcs1_pem).fingerprint());
    assert_eq!(key.fingerprint().len(), 16);
    assert_eq!(credential.fingerprint(), key.fingerprint());
    let other_key = app_key(&keys()[1].pkcs1_pem);
    let other_installation = AppKey {
        installation_id: INSTALLATION + 1,
        ..key.clone()
    };
    let other_issuer = AppKey {
        issuer: "123456".into(),
        ..key.clone()
    };
    for other in [other_key, other_installation, other_issuer] {
        assert_ne!(other.fingerprint(), key.fingerprint());
    }
    let pat = Token::new("ghp_fixedToken0123");
    assert_eq!(
        Credential::Token(pat.clone()).fingerprint(),
        pat.fingerprint()
    );
    assert!(!format!("{:?}", Credential::Token(pat)).contains("ghp_fixed"));
}

#[test]
fn github_expiry_times_parse_as_unix_seconds() {
    assert_eq!(parse_expiry("2016-07-11T22:14:10Z"), Some(1_468_275_250));
    assert_eq!(parse_expiry("1970-01-01T00:01:00Z"), Some(60));
    assert_eq!(
        parse_expiry("2016-07-11T23:14:10+01:00"),
        Some(1_468_275_250)
    );
    assert_eq!(parse_expiry("2016-07-11"), None);
    assert_eq!(parse_expiry(""), None);
}
