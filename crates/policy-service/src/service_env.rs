//! The service's settings from its environment: the unit's 0600 EnvironmentFile and
//! what systemd adds (`STATE_DIRECTORY`).

use base64::Engine as _;
use ghr_types::{GithubUrl, Token};

use crate::{token_store, tokens, PolicyError, DOCUMENT_FILE};

/// The service's settings, from its environment (the unit's 0600 EnvironmentFile).
pub struct ServiceEnv {
    /// `GITHUB_TOKEN`, or a GitHub App: `GITHUB_APP_ISSUER`, `GITHUB_APP_INSTALLATION_ID`
    /// and `GITHUB_APP_PRIVATE_KEY` (the PEM in base64), its installation tokens kept in
    /// [`APP_TOKEN_FILE`] in the state directory.
    pub github: github_client::Credential,
    pub charm_token: Token,
    pub github_url: GithubUrl,
    /// Where the active policy document is kept: `POLICY_DOCUMENT`, else
    /// [`DOCUMENT_FILE`] in the unit's state directory (`STATE_DIRECTORY`, which
    /// systemd sets from `StateDirectory=`); `None` keeps it in memory only.
    pub policy_document: Option<std::path::PathBuf>,
    /// Where unused one-time tokens' digests are kept: `ONE_TIME_TOKENS_FILE`, else
    /// `one-time-tokens` next to the policy document; `None` keeps them in memory only.
    pub one_time_tokens: Option<std::path::PathBuf>,
    /// How long a one-time token lives: `ONE_TIME_TOKEN_TTL` seconds, else
    /// [`tokens::DEFAULT_TTL`]. Shorter only for tests; the charm replaces idle runners
    /// at [`tokens::MAX_IDLE_AGE`] whatever it is.
    pub one_time_token_ttl: std::time::Duration,
}

impl ServiceEnv {
    /// Reads the settings through `lookup` (the process environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyError> {
        let get = |name| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let github_url = get("GITHUB_URL").unwrap_or_else(|| "https://github.com".into());
        // systemd lists several directories with ':' when a unit names several.
        let state_dir = get("STATE_DIRECTORY")
            .and_then(|dirs| dirs.split(':').next().map(std::path::PathBuf::from));
        let policy_document = get("POLICY_DOCUMENT")
            .map(std::path::PathBuf::from)
            .or_else(|| state_dir.as_ref().map(|d| d.join(DOCUMENT_FILE)));
        let app_tokens = state_dir.map(|d| d.join(APP_TOKEN_FILE));
        Ok(ServiceEnv {
            github: github_credential(&get, app_tokens)?,
            charm_token: Token::new(
                get("CHARM_TOKEN").ok_or(PolicyError::MissingEnv("CHARM_TOKEN"))?,
            ),
            github_url: GithubUrl::parse(&github_url).map_err(|reason| {
                PolicyError::InvalidEnv {
                    name: "GITHUB_URL",
                    reason: reason.to_string(),
                }
            })?,
            one_time_token_ttl: match get("ONE_TIME_TOKEN_TTL") {
                None => tokens::DEFAULT_TTL,
                Some(raw) => parse_ttl(&raw)?,
            },
            one_time_tokens: get("ONE_TIME_TOKENS_FILE").map(Into::into).or_else(|| {
                policy_document
                    .as_deref()
                    .map(|p| token_store::TokenFile::next_to(p).path().to_path_buf())
            }),
            policy_document,
        })
    }
}

/// Where the service keeps an App's installation token (0600, renewed before it expires).
pub const APP_TOKEN_FILE: &str = "github-app-token.json";

/// The token, or the App when its issuer is set (all three App variables then).
fn github_credential(
    get: &dyn Fn(&'static str) -> Option<String>,
    cache: Option<std::path::PathBuf>,
) -> Result<github_client::Credential, PolicyError> {
    let Some(issuer) = get("GITHUB_APP_ISSUER") else {
        let token = get("GITHUB_TOKEN").ok_or(PolicyError::MissingEnv("GITHUB_TOKEN"))?;
        return Ok(github_client::Credential::Token(Token::new(token)));
    };
    let invalid = |name, reason: &str| PolicyError::InvalidEnv {
        name,
        reason: reason.to_string(),
    };
    let installation_id = get("GITHUB_APP_INSTALLATION_ID")
        .ok_or(PolicyError::MissingEnv("GITHUB_APP_INSTALLATION_ID"))?
        .parse()
        .map_err(|_| invalid("GITHUB_APP_INSTALLATION_ID", "not a number"))?;
    let encoded =
        get("GITHUB_APP_PRIVATE_KEY").ok_or(PolicyError::MissingEnv("GITHUB_APP_PRIVATE_KEY"))?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| invalid("GITHUB_APP_PRIVATE_KEY", "not a base64 PEM"))?;
    let key = github_client::AppKey {
        issuer,
        installation_id,
        private_key: Token::new(pem),
    };
    Ok(github_client::Credential::App { key, cache })
}

/// `ONE_TIME_TOKEN_TTL`: whole seconds, at least 1.
fn parse_ttl(raw: &str) -> Result<std::time::Duration, PolicyError> {
    match raw.parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(std::time::Duration::from_secs(secs)),
        _ => Err(PolicyError::InvalidEnv {
            name: "ONE_TIME_TOKEN_TTL",
            reason: format!("{raw:?} is not a whole number of seconds above 0"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_requires_tokens_and_defaults_the_url() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let env =
            ServiceEnv::from_lookup(vars(&[("GITHUB_TOKEN", "g"), ("CHARM_TOKEN", "c")])).unwrap();
        assert_eq!(env.github_url.api_base(), "https://api.github.com");
        assert!(env.policy_document.is_none());
        assert!(env.one_time_tokens.is_none());
        assert_eq!(env.one_time_token_ttl, tokens::DEFAULT_TTL);
        let short = ServiceEnv::from_lookup(vars(&[
            ("GITHUB_TOKEN", "g"),
            ("CHARM_TOKEN", "c"),
            ("ONE_TIME_TOKEN_TTL", "5"),
        ]))
        .unwrap();
        assert_eq!(short.one_time_token_ttl, std::time::Duration::from_secs(5));
        for bad in ["0", "-1", "1h", "1.5"] {
            let lookup = move |k: &str| match k {
                "GITHUB_TOKEN" | "CHARM_TOKEN" => Some("x".to_string()),
                "ONE_TIME_TOKEN_TTL" => Some(bad.to_string()),
                _ => None,
            };
            assert!(
                matches!(
                    ServiceEnv::from_lookup(lookup),
                    Err(PolicyError::InvalidEnv {
                        name: "ONE_TIME_TOKEN_TTL",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let err = ServiceEnv::from_lookup(vars(&[("GITHUB_TOKEN", "g"), ("CHARM_TOKEN", " ")]))
            .err()
            .unwrap();
        assert!(matches!(err, PolicyError::MissingEnv("CHARM_TOKEN")));
        assert!(ServiceEnv::from_lookup(vars(&[("CHARM_TOKEN", "c")])).is_err());
        let bad = ServiceEnv::from_lookup(vars(&[
            ("GITHUB_TOKEN", "g"),
            ("CHARM_TOKEN", "c"),
            ("GITHUB_URL", "ftp://x"),
        ]));
        assert!(matches!(
            bad,
            Err(PolicyError::InvalidEnv {
                name: "GITHUB_URL",
                ..
            })
        ));
        let ghes = ServiceEnv::from_lookup(vars(&[
            ("GITHUB_TOKEN", "g"),
            ("CHARM_TOKEN", "c"),
            ("GITHUB_URL", "https://ghes.example"),
            ("POLICY_DOCUMENT", "/var/lib/x/policy.json"),
        ]))
        .unwrap();
        assert_eq!(ghes.github_url.api_base(), "https://ghes.example/api/v3");
        assert_eq!(
            ghes.policy_document.unwrap(),
            std::path::PathBuf::from("/var/lib/x/policy.json")
        );
        assert_eq!(
            ghes.one_time_tokens.unwrap(),
            std::path::PathBuf::from("/var/lib/x/one-time-tokens")
        );
        let explicit = ServiceEnv::from_lookup(vars(&[
            ("GITHUB_TOKEN", "g"),
            ("CHARM_TOKEN", "c"),
            ("POLICY_DOCUMENT", "/var/lib/x/policy.json"),
            ("ONE_TIME_TOKENS_FILE", "/run/x/tokens"),
        ]))
        .unwrap();
        assert_eq!(
            explicit.one_time_tokens.unwrap(),
            std::path::PathBuf::from("/run/x/tokens")
        );
    }

    #[test]
    fn an_app_replaces_the_token_and_keeps_its_tokens_in_the_state_directory() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
        let lookup = |k: &str| match k {
            "GITHUB_APP_ISSUER" => Some("Iv23abc".to_string()),
            "GITHUB_APP_INSTALLATION_ID" => Some("42".to_string()),
            "GITHUB_APP_PRIVATE_KEY" => Some(encoded.clone()),
            "CHARM_TOKEN" => Some("c".to_string()),
            "STATE_DIRECTORY" => Some("/var/lib/p".to_string()),
            _ => None,
        };
        let env = ServiceEnv::from_lookup(lookup).unwrap();
        let github_client::Credential::App { key, cache } = env.github else {
            panic!("an App credential");
        };
        assert_eq!((key.issuer.as_str(), key.installation_id), ("Iv23abc", 42));
        assert_eq!(key.private_key.expose(), pem);
        assert_eq!(
            cache.unwrap(),
            std::path::Path::new("/var/lib/p").join(APP_TOKEN_FILE)
        );
        let missing = |k: &str| {
            if k == "GITHUB_APP_PRIVATE_KEY" {
                None
            } else {
                lookup(k)
            }
        };
        assert!(matches!(
            ServiceEnv::from_lookup(missing),
            Err(PolicyError::MissingEnv("GITHUB_APP_PRIVATE_KEY"))
        ));
        let garbled = |k: &str| match k {
            "GITHUB_APP_PRIVATE_KEY" => Some("not base64!".to_string()),
            _ => lookup(k),
        };
        let err = ServiceEnv::from_lookup(garbled).err().unwrap().to_string();
        assert!(
            err.contains("GITHUB_APP_PRIVATE_KEY") && !err.contains("not base64!"),
            "{err}"
        );
    }
}
