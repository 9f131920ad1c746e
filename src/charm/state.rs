//! Values that must survive between hooks, kept in Juju's unit state (`state-get`,
//! `state-set`). Never the token itself: only its fingerprint.

use serde_json::{Map, Value};

use crate::juju::{HookTools, ToolResult};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CharmState {
    /// The `path` runners were last registered to, to flush them when it changes.
    pub previous_path: Option<String>,
    /// [`crate::config::Token::fingerprint`] of the token last used.
    pub token_fingerprint: Option<String>,
    /// Version of the runner application last installed on the host.
    pub runner_app_version: Option<String>,
}

const KEYS: [&str; 3] = ["previous-path", "token-fingerprint", "runner-app-version"];

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
        })
    }

    /// Writes the fields that are set and deletes the ones that are not.
    pub fn save(&self, juju: &dyn HookTools) -> ToolResult<()> {
        let fields = [
            &self.previous_path,
            &self.token_fingerprint,
            &self.runner_app_version,
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
}
