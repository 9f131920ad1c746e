use std::cell::Cell;

use serde_json::{json, Value};

use super::*;
use crate::config::{CharmConfig, ConfigError};
use test_support::app_key::AppKeyPair;

const URI: &str = "secret:d3k8b0r2v7s1m4q6p5c0";
const KEY_URI: &str = "secret:e4m9c1s3w8t2n5r7q6d1";

fn snapshot(pairs: &[(&str, &str, &str)]) -> SecretSnapshot {
    let mut snapshot = SecretSnapshot::default();
    for (uri, key, value) in pairs {
        snapshot.insert(uri, key, ghr_types::Secret::new(*value));
    }
    snapshot
}

fn parse(config: Value, secrets: &dyn SecretSource) -> Result<CharmConfig, ConfigError> {
    let mut full = json!({"path": "acme"});
    for (k, v) in config.as_object().unwrap() {
        full[k] = v.clone();
    }
    CharmConfig::from_json_with(&full, secrets)
}

fn app_config() -> Value {
    json!({"github-app-client-id": "Iv23liAbc", "github-app-installation-id": 42,
           "github-app-private-key": KEY_URI})
}

/// Counts reads: a config refused for another option must read no secret.
struct Counting(Cell<u32>);

impl SecretSource for Counting {
    fn read(&self, _: &str, _: &'static str) -> Result<ghr_types::Secret, SecretError> {
        self.0.set(self.0.get() + 1);
        Err(SecretError::Refused)
    }
}

#[test]
fn a_token_secret_gives_its_value_and_names_its_uri_as_the_source() {
    let secrets = snapshot(&[(URI, "token", "ghp_fromthesecret")]);
    let config = parse(json!({"token": URI}), &secrets).unwrap();
    assert_eq!(
        config.auth,
        GithubAuth::Token(ghr_types::Secret::new("ghp_fromthesecret"))
    );
    assert_eq!(config.credential_source, format!("secret {URI}"));
    // The same secret at a new revision is the same source, another value.
    let rotated = parse(
        json!({"token": URI}),
        &snapshot(&[(URI, "token", "ghp_new")]),
    )
    .unwrap();
    assert_eq!(rotated.credential_source, config.credential_source);
    assert_ne!(rotated.auth.fingerprint(), config.auth.fingerprint());
}

#[test]
fn an_unreadable_secret_blocks_naming_the_option_and_the_reason() {
    let cases: [(SecretSnapshot, &str); 2] = [
        (SecretSnapshot::default(), "no such secret (removed?)"),
        (
            snapshot(&[(URI, "other", "x")]),
            "the secret has no key \"token\"",
        ),
    ];
    for (secrets, reason) in cases {
        let err = parse(json!({"token": URI}), &secrets)
            .unwrap_err()
            .to_string();
        assert_eq!(err, format!("invalid config: token {URI:?}: {reason}"));
    }
    let refused = Counting(Cell::new(0));
    let err = parse(json!({"token": URI}), &refused)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "invalid config: token {URI:?}: the application may not read"
        )),
        "{err}"
    );
    assert!(err.contains("juju grant-secret"), "{err}");
}

#[test]
fn a_bad_config_reads_no_secret() {
    let counting = Counting(Cell::new(0));
    let err = parse(json!({"token": URI, "vm-cpu": 0}), &counting).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
    assert_eq!(counting.0.get(), 0);
}

#[test]
fn token_and_app_together_or_neither_name_the_options() {
    let mut both = app_config();
    both["token"] = json!("ghp_plainvalue123");
    let err = parse(both, &NoSecrets).unwrap_err().to_string();
    assert!(
        err.contains(
            "token \"<redacted>\": set either a token or a GitHub App (github-app-*), not both"
        ),
        "{err}"
    );
    assert!(!err.contains("ghp_plainvalue123"), "{err}");
    let neither = parse(json!({}), &NoSecrets).unwrap_err();
    assert_eq!(
        neither.to_string(),
        "Missing required charm configuration: token or a GitHub App (github-app-client-id or \
         github-app-id, github-app-installation-id, github-app-private-key)"
    );
    let partial = parse(json!({"github-app-client-id": "Iv23liAbc"}), &NoSecrets).unwrap_err();
    assert_eq!(
        partial.to_string(),
        "Missing required charm configuration: github-app-installation-id, github-app-private-key"
    );
    let no_issuer = parse(
        json!({"github-app-installation-id": 1, "github-app-private-key": KEY_URI}),
        &NoSecrets,
    )
    .unwrap_err();
    assert_eq!(
        no_issuer,
        ConfigError::Missing(vec!["github-app-client-id or github-app-id"])
    );
}

#[test]
fn an_app_key_is_only_taken_from_a_secret_and_never_shown() {
    let pem = AppKeyPair::generate().pkcs1_pem;
    let mut config = app_config();
    config["github-app-private-key"] = json!(pem);
    let err = parse(config, &NoSecrets).unwrap_err().to_string();
    assert!(
        err.contains("github-app-private-key \"<redacted>\""),
        "{err}"
    );
    assert!(err.contains("only accepted in a Juju secret"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY") && !err.contains(&pem[40..80]),
        "{err}"
    );
}

#[test]
fn an_app_reads_its_key_and_issues_as_client_id_or_else_app_id() {
    let pem = AppKeyPair::generate().pkcs1_pem;
    let secrets = snapshot(&[(KEY_URI, "private-key", &pem)]);
    let config = parse(app_config(), &secrets).unwrap();
    let GithubAuth::App(app) = &config.auth else {
        panic!("an App");
    };
    assert_eq!(
        (app.issuer.as_str(), app.installation_id),
        ("Iv23liAbc", 42)
    );
    assert_eq!(app.private_key.expose(), pem);
    assert_eq!(config.credential_source, "app Iv23liAbc installation 42");
    let by_id = json!({"github-app-id": 987, "github-app-installation-id": 42,
                       "github-app-private-key": KEY_URI});
    let GithubAuth::App(app) = parse(by_id, &secrets).unwrap().auth else {
        panic!("an App");
    };
    assert_eq!(app.issuer, "987");
}

#[test]
fn a_secret_that_holds_no_rsa_key_is_refused_without_its_content() {
    let secrets = snapshot(&[(KEY_URI, "private-key", "not a key at all, secretish")]);
    let err = parse(app_config(), &secrets).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "invalid config: github-app-private-key {KEY_URI:?}: "
        )),
        "{err}"
    );
    assert!(!err.contains("secretish"), "{err}");
}

#[test]
fn a_malformed_uri_or_negative_id_is_invalid() {
    let err = parse(json!({"token": "secret:"}), &NoSecrets)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Juju secret URI"), "{err}");
    let mut config = app_config();
    config["github-app-installation-id"] = json!(-3);
    let err = parse(config, &NoSecrets).unwrap_err().to_string();
    assert!(
        err.contains("github-app-installation-id \"-3\": must be a positive number"),
        "{err}"
    );
}
