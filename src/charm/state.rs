//! Values that must survive between hooks, kept in Juju's unit state (`state-get`,
//! `state-set`). Never the token itself: only its fingerprint.

use serde_json::{Map, Value};

use crate::config::CharmConfig;
use crate::juju::{HookTools, ToolResult};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CharmState {
    /// The `path` runners were last registered to, to flush them when it changes.
    pub previous_path: Option<String>,
    /// [`crate::config::GithubAuth::fingerprint`] of the credential last used.
    pub token_fingerprint: Option<String>,
    /// [`CharmConfig::credential_source`] last used: the same token secret or App with a
    /// new value is a rotation, another one a new account.
    pub credential_source: Option<String>,
    /// Version of the runner application last installed on the host.
    pub runner_app_version: Option<String>,
}

const KEYS: [&str; 4] = [
    "previous-path",
    "token-fingerprint",
    "runner-app-version",
    "credential-source",
];

impl CharmState {
    pub fn load(juju: &dyn HookTools) -> ToolResult<Self> {
        let all = juju.state_get(None)?;
        let get = |k: &str| {
            all.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        Ok(CharmState {
            previous_path: get(KEYS[0]),
            token_fingerprint: get(KEYS[1]),
            runner_app_version: get(KEYS[2]),
            credential_source: get(KEYS[3]),
        })
    }

    /// Writes the fields that are set and deletes the ones that are not.
    pub fn save(&self, juju: &dyn HookTools) -> ToolResult<()> {
        let fields = [
            &self.previous_path,
            &self.token_fingerprint,
            &self.runner_app_version,
            &self.credential_source,
        ];
        let mut set = Map::new();
        for (key, value) in KEYS.iter().zip(fields) {
            match value {
                Some(v) => {
                    set.insert((*key).to_string(), Value::String(v.clone()));
                }
                None => juju.state_delete(key)?,
            }
        }
        if !set.is_empty() {
            juju.state_set(&set)?;
        }
        Ok(())
    }

    /// The path runners were registered to before, when `config` names another one.
    pub fn path_left(&self, config: &CharmConfig) -> Option<&str> {
        let now = config.path.to_string();
        self.previous_path.as_deref().filter(|old| *old != now)
    }

    /// Whether `config` holds another token than the one last used. A unit that never
    /// stored a fingerprint has nothing to flush for.
    pub fn token_changed(&self, config: &CharmConfig) -> bool {
        let now = config.auth.fingerprint();
        self.token_fingerprint.as_ref().is_some_and(|f| *f != now)
    }

    /// Whether a changed credential is another account's rather than the same secret or
    /// App rotated (a state from before sources were kept counts as another).
    pub fn credential_replaced(&self, config: &CharmConfig) -> bool {
        self.token_changed(config)
            && self
                .credential_source
                .as_ref()
                .is_none_or(|s| *s != config.credential_source)
    }

    /// Remembers the path and token a config-changed acted on.
    pub fn remember(&mut self, config: &CharmConfig) {
        self.previous_path = Some(config.path.to_string());
        self.token_fingerprint = Some(config.auth.fingerprint());
        self.credential_source = Some(config.credential_source.clone());
    }

    /// Stores the runner application version now installed, keeping the other values.
    pub fn record_app_version(juju: &dyn HookTools, version: &str) -> ToolResult<()> {
        let mut state = Self::load(juju)?;
        state.runner_app_version = Some(version.to_string());
        state.save(juju)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::juju::fakes::FakeJuju;

    const TOKEN: &str = "ghp_stateTestToken0123456789";

    fn config(path: &str, token: &str) -> CharmConfig {
        CharmConfig::from_json(&json!({"path": path, "token": token})).unwrap()
    }

    #[test]
    fn config_changed_stores_path_and_fingerprint_never_the_token() {
        let juju = FakeJuju::default();
        let mut state = CharmState::load(&juju).unwrap();
        let first = config("acme/widgets", TOKEN);
        assert_eq!(state.path_left(&first), None);
        assert!(!state.token_changed(&first), "nothing stored yet");
        state.remember(&first);
        state.save(&juju).unwrap();

        let stored = juju.state.borrow().clone();
        assert_eq!(stored["previous-path"], "acme/widgets");
        assert_eq!(stored["token-fingerprint"], json!(first.auth.fingerprint()));
        let written = juju.state_sets.borrow().join("\n");
        assert!(!written.is_empty() && !written.contains(TOKEN), "{written}");
        assert_eq!(CharmState::load(&juju).unwrap(), state);
    }

    #[test]
    fn a_new_token_or_path_is_noticed_the_same_ones_are_not() {
        let juju = FakeJuju::default();
        let mut state = CharmState::default();
        state.remember(&config("acme/widgets", TOKEN));
        state.save(&juju).unwrap();
        let state = CharmState::load(&juju).unwrap();

        let same = config("acme/widgets", TOKEN);
        assert!(!state.token_changed(&same));
        assert_eq!(state.path_left(&same), None);
        let other = config("acme", "ghp_anotherToken9876543210");
        assert!(state.token_changed(&other));
        assert_eq!(state.path_left(&other), Some("acme/widgets"));
        assert_ne!(other.auth.fingerprint(), same.auth.fingerprint());
    }

    const URI: &str = "secret:d3k8b0r2v7s1m4q6p5c0";

    fn from_secret(uri: &str, token: &str) -> CharmConfig {
        let mut secrets = crate::config::SecretSnapshot::default();
        secrets.insert(uri, "token", ghr_types::Secret::new(token));
        CharmConfig::from_json_with(&json!({"path": "acme", "token": uri}), &secrets).unwrap()
    }

    fn remembered(config: &CharmConfig) -> CharmState {
        let mut state = CharmState::default();
        state.remember(config);
        state
    }

    #[test]
    fn a_rotated_secret_is_no_new_account_another_source_is() {
        let state = remembered(&from_secret(URI, TOKEN));
        let rotated = from_secret(URI, "ghp_rotatedRevision0123");
        assert!(state.token_changed(&rotated));
        assert!(!state.credential_replaced(&rotated), "a new revision");
        assert!(!state.credential_replaced(&from_secret(URI, TOKEN)));
        let another = from_secret("secret:e4m9c1s3w8t2n5r7q6d1", "ghp_rotatedRevision0123");
        assert!(state.credential_replaced(&another), "another secret");
        assert!(state.credential_replaced(&config("acme", "ghp_plainToken0123")));
        // A plain token changed is a new token from wherever it came.
        let plain = remembered(&config("acme", TOKEN));
        assert!(plain.credential_replaced(&config("acme", "ghp_plainToken0123")));
        // Kept before sources were: whatever changed is taken as another account.
        let old = CharmState {
            credential_source: None,
            ..state
        };
        assert!(old.credential_replaced(&rotated));
    }

    #[test]
    fn the_app_version_is_stored_beside_the_rest_and_unset_values_deleted() {
        let juju = FakeJuju::default();
        let mut state = CharmState::default();
        state.remember(&config("acme", TOKEN));
        state.save(&juju).unwrap();
        CharmState::record_app_version(&juju, "actions-runner-linux-x64-2.319.1.tar.gz").unwrap();
        let loaded = CharmState::load(&juju).unwrap();
        assert_eq!(
            loaded.runner_app_version.as_deref(),
            Some("actions-runner-linux-x64-2.319.1.tar.gz")
        );
        assert_eq!(loaded.previous_path.as_deref(), Some("acme"));

        CharmState::default().save(&juju).unwrap();
        assert!(juju.state.borrow().is_empty(), "{:?}", juju.state.borrow());
    }
}
