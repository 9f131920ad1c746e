//! `test-mode=insecure` made visible: every status the charm sets while it is on says so.

use std::cell::Cell;

use serde_json::Value;

use crate::juju::{HookTools, LogLevel, Status, ToolResult};

/// What every status message ends with while `test-mode` is `insecure`, so that a unit
/// without runner hardening is never taken for a production one.
pub const INSECURE_MARK: &str = "[test-mode=insecure]";

/// The hook tools of one event, marking each status once the config the handler read
/// turned out to have `test-mode=insecure`. The raw option is looked at, so even a
/// config that is invalid otherwise (a `blocked` status) shows the mark.
pub struct MarkInsecure<'a> {
    inner: &'a dyn HookTools,
    insecure: Cell<bool>,
}

impl<'a> MarkInsecure<'a> {
    pub fn new(inner: &'a dyn HookTools) -> Self {
        MarkInsecure {
            inner,
            insecure: Cell::new(false),
        }
    }
}

/// Whether raw `config-get` output turns test-mode on.
fn is_insecure(config: &Value) -> bool {
    config
        .get("test-mode")
        .and_then(Value::as_str)
        .map(str::trim)
        == Some("insecure")
}

/// `message` with the mark appended (once), or as it is.
pub fn marked(message: &str, insecure: bool) -> String {
    if !insecure || message.ends_with(INSECURE_MARK) {
        return message.to_string();
    }
    if message.is_empty() {
        INSECURE_MARK.to_string()
    } else {
        format!("{message} {INSECURE_MARK}")
    }
}

impl HookTools for MarkInsecure<'_> {
    fn config_get(&self) -> ToolResult<Value> {
        let config = self.inner.config_get()?;
        self.insecure.set(is_insecure(&config));
        Ok(config)
    }
    fn status_set(&self, status: Status, message: &str) -> ToolResult<()> {
        self.inner
            .status_set(status, &marked(message, self.insecure.get()))
    }
    fn action_get(&self) -> ToolResult<Value> {
        self.inner.action_get()
    }
    fn action_set(&self, values: &[(String, String)]) -> ToolResult<()> {
        self.inner.action_set(values)
    }
    fn action_fail(&self, message: &str) -> ToolResult<()> {
        self.inner.action_fail(message)
    }
    fn action_log(&self, message: &str) -> ToolResult<()> {
        self.inner.action_log(message)
    }
    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        self.inner.juju_log(level, message)
    }
    fn is_leader(&self) -> ToolResult<bool> {
        self.inner.is_leader()
    }
    fn state_get(&self, key: Option<&str>) -> ToolResult<Value> {
        self.inner.state_get(key)
    }
    fn state_set(&self, values: &serde_json::Map<String, Value>) -> ToolResult<()> {
        self.inner.state_set(values)
    }
    fn state_delete(&self, key: &str) -> ToolResult<()> {
        self.inner.state_delete(key)
    }
    fn reboot(&self, now: bool) -> ToolResult<()> {
        self.inner.reboot(now)
    }
    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        self.inner.application_version_set(version)
    }
    fn private_address(&self) -> ToolResult<String> {
        self.inner.private_address()
    }
    fn relation_ids(&self, name: &str) -> ToolResult<Vec<String>> {
        self.inner.relation_ids(name)
    }
    fn relation_set(&self, id: &str, values: &serde_json::Map<String, Value>) -> ToolResult<()> {
        self.inner.relation_set(id, values)
    }
    fn secret_get(&self, uri: &str) -> ToolResult<crate::juju::SecretContent> {
        self.inner.secret_get(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::fakes::FakeJuju;

    fn statuses_after(config: Value, messages: &[&str]) -> Vec<String> {
        let fake = FakeJuju::default();
        *fake.config.borrow_mut() = Some(config);
        let juju = MarkInsecure::new(&fake);
        juju.config_get().unwrap();
        for m in messages {
            juju.status_set(Status::Active, m).unwrap();
        }
        let statuses = fake.statuses.borrow().clone();
        statuses
    }

    #[test]
    fn every_status_is_marked_while_test_mode_is_insecure() {
        let got = statuses_after(
            serde_json::json!({"test-mode": " insecure ", "vm-cpu": 0}),
            &["installing packages", "2 runners: 2 idle, 0 busy", ""],
        );
        assert_eq!(
            got,
            [
                "installing packages [test-mode=insecure]",
                "2 runners: 2 idle, 0 busy [test-mode=insecure]",
                "[test-mode=insecure]"
            ]
        );
        // A message that already carries the mark (a kept problem) gets it once.
        assert_eq!(marked(&got[0], true), got[0]);
    }

    #[test]
    fn statuses_are_untouched_otherwise() {
        for config in [serde_json::json!({}), serde_json::json!({"test-mode": ""})] {
            assert_eq!(statuses_after(config, &["host ready"]), ["host ready"]);
        }
    }
}
