//! The two narrow interfaces the engine drives: where runner instances live
//! ([`RunnerHost`], LXD in production) and where runners are registered
//! ([`RunnerRegistry`], GitHub). Tests use in-memory fakes; production adapters wrap
//! the real clients.

use std::future::Future;

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

/// A failure of either side, with whether retrying later may help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    pub message: String,
    /// The operator must act (bad token, missing image): `blocked`, not `waiting`.
    pub needs_operator: bool,
}

impl PortError {
    pub fn transient(message: impl Into<String>) -> Self {
        PortError {
            message: message.into(),
            needs_operator: false,
        }
    }
    pub fn operator(message: impl Into<String>) -> Self {
        PortError {
            message: message.into(),
            needs_operator: true,
        }
    }
}

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
