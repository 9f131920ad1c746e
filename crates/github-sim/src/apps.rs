//! GitHub Apps as the simulator knows them: each App's ids, the public key its JWTs are
//! checked with ([`super::app_jwt`]), its installations, and the installation tokens
//! it was issued (`ghs_...`), which expire after a lifetime tests can shorten.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};

/// One installation: the org, or the user owning repositories, that it covers.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Installation {
    pub id: u64,
    pub account: String,
}

/// An App as the admin API registers it.
#[derive(Clone, Debug, Deserialize)]
pub struct AppSpec {
    pub app_id: u64,
    pub client_id: String,
    /// SubjectPublicKeyInfo (`PUBLIC KEY`) PEM; PKCS#1 `RSA PUBLIC KEY` works too.
    pub public_key_pem: String,
    #[serde(default)]
    pub installations: Vec<Installation>,
}

pub struct App {
    pub app_id: u64,
    pub client_id: String,
    pub key: DecodingKey,
    pub installations: Vec<Installation>,
    pub tokens_issued: u64,
}

impl App {
    /// The App a spec describes; refused for a key that is not RSA in PEM.
    pub fn from_spec(spec: AppSpec) -> Result<App, String> {
        let key = DecodingKey::from_rsa_pem(spec.public_key_pem.as_bytes())
            .map_err(|e| format!("public_key_pem is not an RSA public key in PEM: {e}"))?;
        Ok(App {
            app_id: spec.app_id,
            client_id: spec.client_id,
            key,
            installations: spec.installations,
            tokens_issued: 0,
        })
    }

    /// GitHub takes the client ID or the numeric app ID as the JWT's issuer.
    pub fn issued(&self, iss: &str) -> bool {
        iss == self.client_id || iss == self.app_id.to_string()
    }

    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "app_id": self.app_id, "client_id": self.client_id,
            "installations": self.installations, "tokens_issued": self.tokens_issued,
        })
    }
}

/// Settings of the App machinery, `/_sim/apps/settings`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct AppSettings {
    /// How long an installation token lives; GitHub's is an hour.
    pub token_lifetime_secs: u64,
    /// Added to the simulator's clock when it checks a JWT's `iat` and `exp`: negative
    /// plays a GitHub whose clock is behind the client's (or a client host running
    /// ahead), so an honest 9-minute JWT reaches past GitHub's 10 minutes.
    pub clock_offset_secs: i64,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            token_lifetime_secs: 3600,
            clock_offset_secs: 0,
        }
    }
}

/// An installation token: which installation it acts for, until when.
#[derive(Clone, Debug)]
pub struct InstallationToken {
    pub app_id: u64,
    pub installation_id: u64,
    pub account: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct Apps {
    pub apps: BTreeMap<u64, App>,
    pub tokens: HashMap<String, InstallationToken>,
    pub settings: AppSettings,
}

impl Apps {
    /// Registers an App, replacing one with the same `app_id` (a new key, new
    /// installations). Refused for an installation id another App already has: ids
    /// are global on GitHub.
    pub fn add(&mut self, app: App) -> Result<(), String> {
        let taken = app.installations.iter().find(|i| {
            self.installation(i.id)
                .is_some_and(|(owner, _)| owner != app.app_id)
        });
        if let Some(i) = taken {
            return Err(format!("installation {} belongs to another App", i.id));
        }
        self.apps.insert(app.app_id, app);
        Ok(())
    }

    /// The App whose client ID or app ID is `iss`.
    pub fn by_issuer(&self, iss: &str) -> Option<&App> {
        self.apps.values().find(|a| a.issued(iss))
    }

    /// The installation `id` and the App it belongs to.
    pub fn installation(&self, id: u64) -> Option<(u64, &Installation)> {
        self.apps.values().find_map(|a| {
            let found = a.installations.iter().find(|i| i.id == id)?;
            Some((a.app_id, found))
        })
    }

    /// A new token for installation `id` of App `app_id`, with its expiry; `None` when
    /// the App has no such installation (GitHub's 404 either way).
    pub fn issue(
        &mut self,
        app_id: u64,
        id: u64,
        now: DateTime<Utc>,
    ) -> Option<(String, DateTime<Utc>)> {
        let account = match self.installation(id) {
            Some((owner, i)) if owner == app_id => i.account.clone(),
            _ => return None,
        };
        let lifetime = self.settings.token_lifetime_secs.min(i64::MAX as u64) as i64;
        let expires_at = now + chrono::Duration::seconds(lifetime);
        let token = format!("ghs_{}", alphanumeric(36));
        let entry = InstallationToken {
            app_id,
            installation_id: id,
            account,
            expires_at,
        };
        self.tokens.insert(token.clone(), entry);
        if let Some(app) = self.apps.get_mut(&app_id) {
            app.tokens_issued += 1;
        }
        Some((token, expires_at))
    }

    /// Makes every installation token expire now, as if its hour had passed.
    pub fn expire_tokens(&mut self, now: DateTime<Utc>) {
        for token in self.tokens.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }
}

/// Mixed-case letters and digits, as the body of GitHub's `ghs_` tokens.
fn alphanumeric(len: usize) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An App with a key nothing verifies against here: the JWT tests (tests/
    /// github_sim_app.rs) sign with generated keys; no key is committed.
    fn app(app_id: u64, installations: &[(u64, &str)]) -> App {
        App {
            app_id,
            client_id: format!("Iv23li{app_id}"),
            key: DecodingKey::from_rsa_components("AQAB", "AQAB").unwrap(),
            installations: installations
                .iter()
                .map(|(id, account)| Installation {
                    id: *id,
                    account: account.to_string(),
                })
                .collect(),
            tokens_issued: 0,
        }
    }

    #[test]
    fn issuers_installations_and_tokens() {
        let mut apps = Apps::default();
        apps.add(app(7, &[(70, "acme")])).unwrap();
        apps.add(app(8, &[(80, "other")])).unwrap();
        assert_eq!(apps.by_issuer("Iv23li7").map(|a| a.app_id), Some(7));
        assert_eq!(apps.by_issuer("8").map(|a| a.app_id), Some(8));
        assert!(apps.by_issuer("Iv23li9").is_none());
        assert!(apps.add(app(9, &[(70, "x")])).is_err(), "70 is App 7's");
        let now = Utc::now();
        assert!(apps.issue(7, 80, now).is_none(), "App 8's installation");
        let (token, expires_at) = apps.issue(7, 70, now).unwrap();
        assert!(token.starts_with("ghs_") && token.len() == 40, "{token}");
        assert!(token[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(expires_at, now + chrono::Duration::hours(1));
        assert_eq!(apps.tokens[&token].account, "acme");
        assert_eq!(apps.apps[&7].tokens_issued, 1);
        apps.expire_tokens(now);
        assert_eq!(apps.tokens[&token].expires_at, now);
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused() {
        let spec = AppSpec {
            app_id: 1,
            client_id: "Iv23li1".into(),
            public_key_pem: "not a key".into(),
            installations: vec![],
        };
        assert!(App::from_spec(spec).is_err());
    }
}
