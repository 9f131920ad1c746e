//! The two narrow interfaces the engine drives: where runner instances live
//! ([`RunnerHost`], LXD in production) and where runners are registered
//! ([`RunnerRegistry`], GitHub). Tests use in-memory fakes; production adapters wrap
//! the real clients.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::plan::{ObservedInstance, ObservedRegistration};
use ghr_types::{RunnerName, Secret};

/// A secret handed from GitHub to a new runner: a JIT config or a registration token.
/// Debug never shows it ([`Secret`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `encoded_jit_config`: the runner is already registered under `id`.
    Jit { id: u64, encoded: Secret },
    /// A registration token for `config.sh --ephemeral` (older GHES without JIT).
    RegistrationToken(Secret),
}

impl Credential {
    pub fn registration_id(&self) -> Option<u64> {
        match self {
            Credential::Jit { id, .. } => Some(*id),
            Credential::RegistrationToken(_) => None,
        }
    }
}

/// What deleting a registration achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Already gone: as good as deleted.
    NotFound,
    /// GitHub refuses: the runner is running a job.
    Busy,
}

/// Who can make a failed call succeed: the adapters decide it from their own typed
/// errors (the engine knows neither HTTP nor LXD), the charm's error policy acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortErrorKind {
    /// Trying again later may work (a server error, a timeout, an instance that never
    /// came up): counted in the report, retried by the next reconcile.
    Transient,
    /// Only the operator can fix it (a rejected token, a missing permission, runner
    /// group or image): the message names what to fix.
    NeedsOperator,
}

/// A failure of either side: its kind, the message for the operator, and the typed
/// error it comes from (a `GithubError`, an `LxdError`, ...), kept as its source.
#[derive(Clone)]
pub struct PortError {
    pub kind: PortErrorKind,
    message: String,
    source: Option<Arc<dyn Error + Send + Sync + 'static>>,
}

impl PortError {
    pub fn transient(message: impl Into<String>) -> Self {
        PortError {
            kind: PortErrorKind::Transient,
            message: message.into(),
            source: None,
        }
    }
    pub fn needs_operator(message: impl Into<String>) -> Self {
        PortError {
            kind: PortErrorKind::NeedsOperator,
            message: message.into(),
            source: None,
        }
    }
    /// A transient failure said as `source` says it, keeping `source` under it.
    pub fn transient_from(source: impl Error + Send + Sync + 'static) -> Self {
        PortError::transient(source.to_string()).with_source(source)
    }
    /// The same failure with `source`, the typed error it comes from, under it.
    pub fn with_source(mut self, source: impl Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
    /// The same failure, said as `context: message`.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
    pub fn needs_operator_fix(&self) -> bool {
        self.kind == PortErrorKind::NeedsOperator
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl Error for PortError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        // The typed error itself (not the Arc around it), so that callers can downcast.
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Equal when the kind and the message are: two sources cannot be compared.
impl PartialEq for PortError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for PortError {}

pub type PortResult<T> = Result<T, PortError>;

/// Runner instances (LXD). Every method only sees names the caller owns.
pub trait RunnerHost: Send + Sync + 'static {
    /// This unit's instances.
    fn list(&self) -> impl Future<Output = PortResult<Vec<ObservedInstance>>> + Send;
    /// Launch an instance for `name`, wait until it is ready, put the runner in it and
    /// start it with `credential`.
    fn provision(
        &self,
        name: &RunnerName,
        credential: &Credential,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Delete the instance; an instance already gone is not an error.
    fn delete(&self, name: &RunnerName) -> impl Future<Output = PortResult<()>> + Send;
    /// The runner `name` is being removed: whatever it was handed to prove itself (its
    /// one-time policy token) stops counting. Never fails the removal: a failure is
    /// logged, and the credential's own expiry still bounds it.
    fn revoke(&self, name: &RunnerName) -> impl Future<Output = ()> + Send {
        let _ = name;
        async {}
    }
}

/// Runner registrations (GitHub). Blocking: the engine calls it off the async threads.
pub trait RunnerRegistry: Send + Sync + 'static {
    /// This unit's registrations (one listing of the path's runners).
    fn list(&self) -> PortResult<Vec<ObservedRegistration>>;
    /// A credential for a new runner named `name`.
    fn register(&self, name: &RunnerName) -> PortResult<Credential>;
    fn delete(&self, id: u64) -> PortResult<Deletion>;
}
