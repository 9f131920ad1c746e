//! Juju's hook tools behind one trait ([`HookTools`]), their real command-line
//! implementation ([`Cli`]), and a `log` backend that writes to `juju-log` in a hook.

mod cli;
#[cfg(test)]
pub(crate) mod fakes;
mod logger;
mod secrets;

pub use cli::Cli;
pub use logger::init_logging;
pub use secrets::HookSecrets;

use serde_json::Value;

/// A unit or application status that `status-set` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Maintenance,
    Blocked,
    Waiting,
    Active,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Maintenance => "maintenance",
            Status::Blocked => "blocked",
            Status::Waiting => "waiting",
            Status::Active => "active",
        }
    }
}

/// Levels `juju-log --log-level` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }
}

/// A hook tool that could not run or exited non-zero.
#[derive(Debug, thiserror::Error)]
pub enum HookToolError {
    /// The tool could not be started (not on PATH, not executable).
    #[error("could not run {tool}: {source}")]
    Spawn {
        tool: String,
        source: std::io::Error,
    },
    /// The tool ran and failed; `stderr` is what it printed.
    #[error("{tool} failed ({status}): {stderr}")]
    Failed {
        tool: String,
        status: String,
        stderr: String,
    },
    /// The tool's output was not the JSON we asked for.
    #[error("{tool} returned output that is not JSON: {reason}")]
    BadOutput { tool: String, reason: String },
}

pub type ToolResult<T> = Result<T, HookToolError>;

/// Everything the charm asks of Juju. One method per hook tool, with the command lines
/// the Python `ops` framework sends (../shared/TESTBED.md).
pub trait HookTools {
    /// `config-get --format=json`
    fn config_get(&self) -> ToolResult<Value>;
    /// `status-set --application=False STATUS MESSAGE`
    fn status_set(&self, status: Status, message: &str) -> ToolResult<()>;
    /// `action-get --format=json`
    fn action_get(&self) -> ToolResult<Value>;
    /// `action-set key=value ...`; keys may be dotted for nesting.
    fn action_set(&self, values: &[(String, String)]) -> ToolResult<()>;
    /// `action-fail MESSAGE`
    fn action_fail(&self, message: &str) -> ToolResult<()>;
    /// `action-log MESSAGE`
    fn action_log(&self, message: &str) -> ToolResult<()>;
    /// `juju-log --log-level LEVEL MESSAGE`
    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()>;
    /// `is-leader --format=json`
    fn is_leader(&self) -> ToolResult<bool>;
    /// `state-get --format=json [KEY]`; a missing key is `Value::Null`.
    fn state_get(&self, key: Option<&str>) -> ToolResult<Value>;
    /// `state-set --file -` with a JSON object of string values on stdin.
    fn state_set(&self, values: &serde_json::Map<String, Value>) -> ToolResult<()>;
    /// `state-delete KEY`
    fn state_delete(&self, key: &str) -> ToolResult<()>;
    /// `juju-reboot` or `juju-reboot --now`
    fn reboot(&self, now: bool) -> ToolResult<()>;
    /// `application-version-set VERSION`
    fn application_version_set(&self, version: &str) -> ToolResult<()>;
    /// `unit-get private-address`: the unit's address on the model's network.
    fn private_address(&self) -> ToolResult<String>;
    /// `relation-ids NAME --format=json`: the ids (`NAME:N`) of the relations on endpoint
    /// NAME.
    fn relation_ids(&self, name: &str) -> ToolResult<Vec<String>>;
    /// `relation-set -r ID --file -` with a JSON object of string values on stdin (YAML
    /// reads JSON): this unit's settings in relation ID, merged into what is there. Never
    /// as arguments: one argument may not pass 128 KiB, and a dashboard can.
    fn relation_set(&self, id: &str, values: &serde_json::Map<String, Value>) -> ToolResult<()>;
    /// `secret-get --refresh --format=json URI`: the secret's latest content, which the
    /// unit tracks from then on (so a `secret-changed` follows each new revision). Always
    /// the latest: a rotated token is meant to be used at once.
    fn secret_get(&self, uri: &str) -> ToolResult<SecretContent>;
}

/// A secret's keys and values; the values never print.
pub type SecretContent = std::collections::BTreeMap<String, ghr_types::Secret>;
