//! Handler results as values, and the one error policy that turns a failure into a
//! status, an action failure, or an exit code.

use crate::config::ConfigError;
use crate::host::HostError;
use crate::juju::{HookToolError, Status};
use reconcile::execute::Report;
use reconcile::lock::LockError;
use reconcile::ports::PortError;

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

/// Every way a handler can fail, each with a fixed meaning for the operator. Display is
/// the operator's message; the typed error under it stays its source.
#[derive(Debug, thiserror::Error)]
pub enum CharmError {
    /// The operator must fix the configuration: `blocked`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A runner operation failed at one of the engine's ports (GitHub, LXD, the policy
    /// service): `blocked` when only the operator can fix its cause (a rejected token,
    /// a missing permission, runner group or image), else `waiting`.
    #[error(transparent)]
    Runner(#[from] PortError),
    /// Another reconcile held the lock too long (`waiting`), or the lock file failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Something else the operator must fix outside the config (the bridge is not a
    /// valid interface name, nft refuses the ruleset, ...): `blocked`.
    #[error(transparent)]
    Blocked(Cause),
    /// Something else that will likely pass on its own (the policy service not
    /// installed yet, a timer unit not started): `waiting`; the next reconcile retries.
    #[error(transparent)]
    Transient(Cause),
    /// A step on this machine failed (packages, LXD's setup, the policy service's
    /// files): `maintenance` with the reason; exit non-zero so Juju retries.
    #[error("{step} failed: {source}")]
    Host {
        step: &'static str,
        #[source]
        source: HostError,
    },
    /// Work that must be done within this hook (a unit's removal, taking over the
    /// single-unit layout) could not finish: `maintenance`; exit non-zero so Juju runs
    /// the hook again instead of going on without it.
    #[error("{0}")]
    Unfinished(Cause),
    /// Bad action parameters: the action fails, the unit status is untouched.
    #[error("{0}")]
    BadParams(String),
    /// Juju's own tools failed: exit non-zero so Juju retries the hook.
    #[error("hook tool failure: {0}")]
    HookTool(#[from] HookToolError),
    /// A bug or an unforeseen failure: `maintenance` with the reason; exit non-zero so
    /// Juju retries. Display says the whole chain; the chain stays the source.
    #[error("{0:#}")]
    Internal(#[source] anyhow::Error),
}

/// The operator's message for a [`CharmError::Blocked`] or [`CharmError::Transient`],
/// and the typed error it comes from, if any (its source).
#[derive(Debug)]
pub struct Cause {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// A message with nothing typed under it.
    pub fn new(message: impl Into<String>) -> Self {
        Cause {
            message: message.into(),
            source: None,
        }
    }
    /// `source` said as it says itself, and kept as the source.
    pub fn of(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause {
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }
    /// The same cause, said as `context: message`.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::new(message)
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause::new(message)
    }
}

/// What the dispatcher does with a failure.
#[derive(Debug, PartialEq, Eq)]
pub struct Disposition {
    pub status: Option<(Status, String)>,
    /// Whether the process exits non-zero so that Juju retries the hook.
    pub retry: bool,
}

impl CharmError {
    pub fn blocked(cause: impl Into<Cause>) -> Self {
        CharmError::Blocked(cause.into())
    }
    pub fn transient(cause: impl Into<Cause>) -> Self {
        CharmError::Transient(cause.into())
    }

    /// The same failure, retried by Juju: for a hook that must not end without its work.
    pub fn unfinished(self) -> Self {
        match self {
            CharmError::Unfinished(_) => self,
            other => CharmError::Unfinished(Cause::of(other)),
        }
    }

    /// The same failure, said as `context: message` (e.g. "firewall: ..."); the kind
    /// and the typed source are kept.
    pub fn context(self, context: &str) -> Self {
        match self {
            CharmError::Runner(e) => CharmError::Runner(e.context(context)),
            CharmError::Blocked(c) => CharmError::Blocked(c.context(context)),
            CharmError::Transient(c) => CharmError::Transient(c.context(context)),
            CharmError::Lock(e) => CharmError::Transient(Cause::of(e).context(context)),
            CharmError::Internal(e) => CharmError::Internal(e.context(context.to_string())),
            other => other,
        }
    }

    /// The single error policy. Actions report every failure through `action-fail`
    /// (done by the caller), and keep the unit status unless the failure says something
    /// about the unit itself.
    pub fn disposition(&self, in_action: bool) -> Disposition {
        let message = self.to_string();
        let (status, retry) = match self {
            CharmError::Config(_) | CharmError::Blocked(_) => (Some(Status::Blocked), false),
            CharmError::Runner(e) if e.needs_operator_fix() => (Some(Status::Blocked), false),
            CharmError::Runner(_) | CharmError::Transient(_) => (Some(Status::Waiting), false),
            CharmError::Lock(LockError::Busy(_)) => (Some(Status::Waiting), false),
            CharmError::Lock(LockError::Io { .. })
            | CharmError::Host { .. }
            | CharmError::Unfinished(_)
            | CharmError::Internal(_) => (Some(Status::Maintenance), true),
            CharmError::BadParams(_) => (None, false),
            CharmError::HookTool(_) => (None, true),
        };
        // An action's passing trouble is its own failure, not news about the unit.
        let status = status.filter(|s| !(in_action && *s == Status::Waiting));
        Disposition {
            status: status.map(|s| (s, message)),
            retry: retry && !in_action,
        }
    }
}

/// Where a reconcile's report becomes the hook's result: a runner's step that failed
/// for a cause only the operator can fix (see [`PortError`]) fails the hook with it, so
/// that [`CharmError::disposition`] blocks naming it; other failures stay counted in
/// the report and the next reconcile tries them again.
pub fn settle(report: Report) -> Result<Report, CharmError> {
    match report.needs_operator() {
        Some(cause) => Err(CharmError::Runner(cause.clone())),
        None => Ok(report),
    }
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
