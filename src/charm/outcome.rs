//! Handler results as values, and the one error policy that turns a failure into a
//! status, an action failure, or an exit code.

use crate::config::ConfigError;
use crate::juju::{HookToolError, Status};

/// What a handler achieved, for the status line or the action result.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The unit status to set, if the handler decided one.
    pub status: Option<(Status, String)>,
    /// `action-set` pairs for an action.
    pub results: Vec<(String, String)>,
}

impl Outcome {
    pub fn status(status: Status, message: impl Into<String>) -> Self {
        Outcome {
            status: Some((status, message.into())),
            results: Vec::new(),
        }
    }
    pub fn with_result(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.results.push((key.into(), value.to_string()));
        self
    }
}

/// Every way a handler can fail, each with a fixed meaning for the operator.
#[derive(Debug, thiserror::Error)]
pub enum CharmError {
    /// The operator must fix the configuration: `blocked`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something the operator must fix outside the config (GitHub says the token is
    /// bad, the image does not exist, ...): `blocked`.
    #[error("{0}")]
    Blocked(String),
    /// Something that will likely pass on its own (GitHub down, LXD restarting, the
    /// reconcile lock held): `waiting` with the reason, and the next reconcile retries.
    #[error("{0}")]
    Transient(String),
    /// Bad action parameters: the action fails, the unit status is untouched.
    #[error("{0}")]
    BadParams(String),
    /// Juju's own tools failed: exit non-zero so Juju retries the hook.
    #[error("hook tool failure: {0}")]
    HookTool(#[from] HookToolError),
    /// A bug or an unforeseen failure: `maintenance` with the reason; exit non-zero so
    /// Juju retries.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

/// What the dispatcher does with a failure.
#[derive(Debug, PartialEq, Eq)]
pub struct Disposition {
    pub status: Option<(Status, String)>,
    /// Whether the process exits non-zero so that Juju retries the hook.
    pub retry: bool,
}

impl CharmError {
    /// The single error policy. Actions report every failure through `action-fail`
    /// (done by the caller), and keep the unit status unless the failure says something
    /// about the unit itself.
    pub fn disposition(&self, in_action: bool) -> Disposition {
        let (status, retry) = match self {
            CharmError::Config(e) => (Some((Status::Blocked, e.to_string())), false),
            CharmError::Blocked(m) => (Some((Status::Blocked, m.clone())), false),
            CharmError::Transient(m) => (Some((Status::Waiting, m.clone())), false),
            CharmError::BadParams(_) => (None, false),
            CharmError::HookTool(_) => (None, true),
            CharmError::Internal(e) => (Some((Status::Maintenance, format!("{e:#}"))), true),
        };
        let status = if in_action && matches!(self, CharmError::Transient(_)) {
            None
        } else {
            status
        };
        Disposition {
            status,
            retry: retry && !in_action,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_block_and_do_not_retry() {
        let d = CharmError::Config(ConfigError::Missing(vec!["token"])).disposition(false);
        assert_eq!(
            d.status,
            Some((
                Status::Blocked,
                "Missing required charm configuration: token".into()
            ))
        );
        assert!(!d.retry);
    }

    #[test]
    fn hook_tool_failures_retry_hooks_but_not_actions() {
        let err = || {
            CharmError::HookTool(HookToolError::Failed {
                tool: "status-set".into(),
                status: "exit status: 1".into(),
                stderr: "boom".into(),
            })
        };
        assert!(err().disposition(false).retry);
        assert!(!err().disposition(true).retry);
    }

    #[test]
    fn transient_failures_wait() {
        let d = CharmError::Transient("GitHub unreachable".into()).disposition(false);
        assert_eq!(
            d.status,
            Some((Status::Waiting, "GitHub unreachable".into()))
        );
        assert_eq!(
            CharmError::Transient("x".into()).disposition(true).status,
            None
        );
    }
}
