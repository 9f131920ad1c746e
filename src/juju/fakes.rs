//! An in-memory [`HookTools`] for unit tests: unit state held in a map, and every
//! status, reboot request and `state-set` body kept for assertions.

use std::cell::RefCell;

use serde_json::{json, Map, Value};

use super::{HookTools, LogLevel, Status, ToolResult};

/// A secret's content as `(key, value)` pairs, or the stderr of a refusal.
pub type SecretAnswer = Result<Vec<(String, String)>, String>;

#[derive(Default)]
pub struct FakeJuju {
    pub statuses: RefCell<Vec<String>>,
    pub reboots: RefCell<Vec<bool>>,
    pub state: RefCell<Map<String, Value>>,
    /// What each `state-set` was given, as the JSON it would read on stdin.
    pub state_sets: RefCell<Vec<String>>,
    /// What `config-get` answers; `{}` when not set.
    pub config: RefCell<Option<Value>>,
    /// What `relation-ids` answers: `(endpoint, id)` pairs.
    pub relations: RefCell<Vec<(String, String)>>,
    /// Every `relation-set`: the relation id and the settings given.
    pub relation_sets: RefCell<Vec<(String, Map<String, Value>)>>,
    /// What `secret-get` answers, by URI: the content, or the stderr of a refusal.
    pub secrets: RefCell<std::collections::BTreeMap<String, SecretAnswer>>,
}

impl HookTools for FakeJuju {
    fn config_get(&self) -> ToolResult<Value> {
        Ok(self.config.borrow().clone().unwrap_or_else(|| json!({})))
    }
    fn status_set(&self, _: Status, message: &str) -> ToolResult<()> {
        self.statuses.borrow_mut().push(message.into());
        Ok(())
    }
    fn action_get(&self) -> ToolResult<Value> {
        Ok(json!({}))
    }
    fn action_set(&self, _: &[(String, String)]) -> ToolResult<()> {
        Ok(())
    }
    fn action_fail(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn action_log(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn juju_log(&self, _: LogLevel, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn is_leader(&self) -> ToolResult<bool> {
        Ok(true)
    }
    fn state_get(&self, key: Option<&str>) -> ToolResult<Value> {
        let state = self.state.borrow();
        Ok(match key {
            Some(k) => state.get(k).cloned().unwrap_or(Value::Null),
            None => Value::Object(state.clone()),
        })
    }
    fn state_set(&self, values: &Map<String, Value>) -> ToolResult<()> {
        self.state_sets
            .borrow_mut()
            .push(Value::Object(values.clone()).to_string());
        self.state.borrow_mut().extend(values.clone());
        Ok(())
    }
    fn state_delete(&self, key: &str) -> ToolResult<()> {
        self.state.borrow_mut().remove(key);
        Ok(())
    }
    fn reboot(&self, now: bool) -> ToolResult<()> {
        self.reboots.borrow_mut().push(now);
        Ok(())
    }
    fn application_version_set(&self, _: &str) -> ToolResult<()> {
        Ok(())
    }
    fn private_address(&self) -> ToolResult<String> {
        Ok("10.1.2.3".into())
    }
    fn relation_ids(&self, name: &str) -> ToolResult<Vec<String>> {
        let relations = self.relations.borrow();
        Ok(relations
            .iter()
            .filter(|(endpoint, _)| endpoint == name)
            .map(|(_, id)| id.clone())
            .collect())
    }
    fn relation_set(&self, id: &str, values: &Map<String, Value>) -> ToolResult<()> {
        self.relation_sets
            .borrow_mut()
            .push((id.to_string(), values.clone()));
        Ok(())
    }
    fn secret_get(&self, uri: &str) -> ToolResult<super::SecretContent> {
        let refused = |stderr: &str| super::HookToolError::Failed {
            tool: "secret-get".into(),
            status: "exit status: 1".into(),
            stderr: stderr.into(),
        };
        match self.secrets.borrow().get(uri) {
            Some(Ok(pairs)) => Ok(pairs
                .iter()
                .map(|(k, v)| (k.clone(), ghr_types::Secret::new(v.clone())))
                .collect()),
            Some(Err(stderr)) => Err(refused(stderr)),
            None => Err(refused(&format!("ERROR secret {uri:?} not found"))),
        }
    }
}
