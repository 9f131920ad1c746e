//! How the charm authenticates to GitHub: a token (in the option, or in a Juju secret the
//! option names) or a GitHub App (its ids, and its private key in a Juju secret). The
//! options are checked with the others; secrets are read through a [`SecretSource`]
//! handed in (the hook's `secret-get`, or what a hook handed the runner manager), so the
//! parse itself touches nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use github_client::{AppKey, Credential};

use super::values::validate_token;
use super::{InvalidOption, RawConfig};
use ghr_types::{Secret, Token};

/// The App options: set any of them and the App is what the charm uses.
pub const APP_OPTIONS: [&str; 4] = [
    "github-app-id",
    "github-app-client-id",
    "github-app-installation-id",
    "github-app-private-key",
];
/// The key a token secret holds the token under, and an App key secret its PEM under.
pub const TOKEN_KEY: &str = "token";
pub const PRIVATE_KEY_KEY: &str = "private-key";

/// The credential the charm acts with, its secrets read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GithubAuth {
    Token(Token),
    App(GithubApp),
}

/// A GitHub App installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GithubApp {
    /// The JWT's `iss`: the client ID when set (what GitHub recommends), else the app ID
    /// (what GHES 3.13 and older require).
    pub issuer: String,
    pub installation_id: u64,
    /// PEM.
    pub private_key: Secret,
}

impl GithubApp {
    pub fn key(&self) -> AppKey {
        AppKey {
            issuer: self.issuer.clone(),
            installation_id: self.installation_id,
            private_key: self.private_key.clone(),
        }
    }
}

impl GithubAuth {
    /// Changes with any value: what the services that hold the credential restart on.
    pub fn fingerprint(&self) -> String {
        match self {
            GithubAuth::Token(token) => token.fingerprint(),
            GithubAuth::App(app) => app.key().fingerprint(),
        }
    }

    /// The client's credential; an App's installation tokens are kept in `cache`.
    pub fn credential(&self, cache: Option<PathBuf>) -> Credential {
        match self {
            GithubAuth::Token(token) => Credential::Token(token.clone()),
            GithubAuth::App(app) => Credential::App {
                key: app.key(),
                cache,
            },
        }
    }

    pub fn is_app(&self) -> bool {
        matches!(self, GithubAuth::App(_))
    }
}

/// Why a secret could not be read. Its Display finishes "token \"secret:..\": ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// Juju's "permission denied": never granted to the application, or revoked.
    Refused,
    /// No such secret (removed, or a typo in the URI).
    NotFound,
    /// The secret has no such key.
    MissingKey(&'static str),
    /// `secret-get` failed otherwise (Juju's message, which holds no value).
    Failed(String),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Refused => f.write_str(
                "the application may not read this secret: grant it with `juju grant-secret`, \
                 or it was revoked",
            ),
            SecretError::NotFound => f.write_str("no such secret (removed?)"),
            SecretError::MissingKey(key) => write!(f, "the secret has no key {key:?}"),
            SecretError::Failed(why) => write!(f, "secret-get failed: {why}"),
        }
    }
}

/// Where secrets' values come from.
pub trait SecretSource {
    fn read(&self, uri: &str, key: &'static str) -> Result<Secret, SecretError>;
}

/// A parse with no way to read secrets: a secret URI fails, naming the option.
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn read(&self, _: &str, _: &'static str) -> Result<Secret, SecretError> {
        Err(SecretError::Failed("no secrets can be read here".into()))
    }
}

/// The values a hook read, by URI and key: what it hands the runner manager, which
/// cannot call `secret-get` (hook tools work only in a hook).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretSnapshot(BTreeMap<String, BTreeMap<String, Secret>>);

impl SecretSnapshot {
    pub fn insert(&mut self, uri: &str, key: &str, value: Secret) {
        self.0
            .entry(uri.to_string())
            .or_default()
            .insert(key.to_string(), value);
    }
}

impl SecretSource for SecretSnapshot {
    fn read(&self, uri: &str, key: &'static str) -> Result<Secret, SecretError> {
        let content = self.0.get(uri).ok_or(SecretError::NotFound)?;
        content
            .get(key)
            .cloned()
            .ok_or(SecretError::MissingKey(key))
    }
}

/// Whether `value` names a Juju secret: `secret:ID` or `secret://MODEL-UUID/ID`.
pub fn is_secret_uri(value: &str) -> bool {
    value.trim().starts_with("secret:")
}

fn check_uri(value: &str) -> Result<(), String> {
    let rest = value.trim().strip_prefix("secret:").unwrap_or_default();
    let id = rest
        .strip_prefix("//")
        .map_or(rest, |r| r.rsplit('/').next().unwrap_or_default());
    if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err("not a Juju secret URI (secret:ID or secret://MODEL/ID)".into())
    }
}

/// The credential options checked, secrets not yet read.
pub(super) enum Spec {
    Token(Token),
    TokenSecret(String),
    App {
        issuer: String,
        installation_id: u64,
        key_uri: String,
    },
}

impl Spec {
    /// Where the credential comes from, without its value.
    pub fn source(&self) -> String {
        match self {
            Spec::Token(token) => format!("token {}", token.fingerprint()),
            Spec::TokenSecret(uri) => format!("secret {uri}"),
            Spec::App {
                issuer,
                installation_id,
                ..
            } => format!("app {issuer} installation {installation_id}"),
        }
    }
}

/// The outcome of checking the options: a spec when they are whole and valid.
#[derive(Default)]
pub(super) struct Checked {
    pub spec: Option<Spec>,
    pub missing: Vec<&'static str>,
    pub invalid: Vec<InvalidOption>,
}

fn invalid(option: &'static str, value: &str, reason: impl Into<String>) -> InvalidOption {
    InvalidOption {
        option,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// What a config with neither a token nor any App option lacks: either way named.
pub const NO_CREDENTIAL: &str = "token or a GitHub App (github-app-client-id or github-app-id, \
                                 github-app-installation-id, github-app-private-key)";

/// Checks the token and App options: exactly one of the two ways, whole.
pub(super) fn check(raw: &RawConfig) -> Checked {
    let token = raw.token.trim();
    let app_set = app_values(raw).iter().any(|v| !v.is_empty());
    match (token.is_empty(), app_set) {
        (true, false) => Checked {
            missing: vec![NO_CREDENTIAL],
            ..Checked::default()
        },
        (false, true) => Checked {
            invalid: vec![invalid(
                "token",
                if is_secret_uri(token) {
                    token
                } else {
                    "<redacted>"
                },
                "set either a token or a GitHub App (github-app-*), not both",
            )],
            ..Checked::default()
        },
        (false, false) => check_token(token),
        (true, true) => check_app(raw),
    }
}

fn app_values(raw: &RawConfig) -> [String; 4] {
    let number = |n: i64| if n == 0 { String::new() } else { n.to_string() };
    [
        number(raw.github_app_id),
        raw.github_app_client_id.trim().to_string(),
        number(raw.github_app_installation_id),
        raw.github_app_private_key.trim().to_string(),
    ]
}

fn check_token(token: &str) -> Checked {
    let mut checked = Checked::default();
    if is_secret_uri(token) {
        match check_uri(token) {
            Ok(()) => checked.spec = Some(Spec::TokenSecret(token.to_string())),
            Err(reason) => checked.invalid.push(invalid("token", token, reason)),
        }
        return checked;
    }
    // The value shown is never the token's.
    match validate_token(token) {
        Ok(()) => checked.spec = Some(Spec::Token(Token::new(token))),
        Err(reason) => checked.invalid.push(invalid("token", "<redacted>", reason)),
    }
    checked
}

fn check_app(raw: &RawConfig) -> Checked {
    let mut checked = Checked::default();
    let ids = [
        ("github-app-id", raw.github_app_id),
        ("github-app-installation-id", raw.github_app_installation_id),
    ];
    for (option, id) in ids.into_iter().filter(|(_, id)| *id < 0) {
        checked.invalid.push(invalid(
            option,
            &id.to_string(),
            "must be a positive number",
        ));
    }
    let client_id = raw.github_app_client_id.trim();
    if client_id.len() > 100
        || !client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.')
    {
        // Not shown: what is no client ID may be a credential pasted in the wrong place.
        checked.invalid.push(invalid(
            "github-app-client-id",
            "<redacted>",
            "must be the App's client ID (letters, digits and '.')",
        ));
    }
    let key = raw.github_app_private_key.trim();
    if !key.is_empty() {
        // Not shown: a PEM pasted here is the key itself.
        let shown = if is_secret_uri(key) {
            key
        } else {
            "<redacted>"
        };
        if let Err(reason) = check_uri(key) {
            checked.invalid.push(invalid(
                "github-app-private-key",
                shown,
                format!(
                    "{reason}: the key is only accepted in a Juju secret (key \"private-key\")"
                ),
            ));
        }
    }
    if client_id.is_empty() && raw.github_app_id <= 0 {
        checked
            .missing
            .push("github-app-client-id or github-app-id");
    }
    if raw.github_app_installation_id <= 0 {
        checked.missing.push("github-app-installation-id");
    }
    if key.is_empty() {
        checked.missing.push("github-app-private-key");
    }
    if checked.missing.is_empty() && checked.invalid.is_empty() {
        let issuer = match client_id {
            "" => raw.github_app_id.to_string(),
            id => id.to_string(),
        };
        checked.spec = Some(Spec::App {
            issuer,
            installation_id: raw.github_app_installation_id as u64,
            key_uri: key.to_string(),
        });
    }
    checked
}

/// Reads what `spec` names from `source`; a failure names the option and what is wrong.
pub(super) fn resolve(spec: Spec, source: &dyn SecretSource) -> Result<GithubAuth, InvalidOption> {
    match spec {
        Spec::Token(token) => Ok(GithubAuth::Token(token)),
        Spec::TokenSecret(uri) => {
            let token = source
                .read(&uri, TOKEN_KEY)
                .map_err(|e| invalid("token", &uri, e.to_string()))?;
            validate_token(token.expose())
                .map_err(|reason| invalid("token", &uri, format!("the secret's token {reason}")))?;
            Ok(GithubAuth::Token(Token::new(token.expose().trim())))
        }
        Spec::App {
            issuer,
            installation_id,
            key_uri,
        } => {
            let option = "github-app-private-key";
            let private_key = source
                .read(&key_uri, PRIVATE_KEY_KEY)
                .map_err(|e| invalid(option, &key_uri, e.to_string()))?;
            let app = GithubApp {
                issuer,
                installation_id,
                private_key,
            };
            app.key()
                .validate()
                .map_err(|e| invalid(option, &key_uri, e.to_string()))?;
            Ok(GithubAuth::App(app))
        }
    }
}

#[cfg(test)]
#[path = "credential_tests.rs"]
mod tests;
