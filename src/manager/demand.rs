//! On demand: what GitHub says of the unit's runner scale set ([`Demand`], shared by the
//! listener and the worker), why it cannot serve ([`DemandProblem`], read from GitHub's
//! answers), how many runners to hold for it, and the state a restarted listener needs
//! (the last message handled).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::charm::outcome::Cause;
use crate::charm::CharmError;
use crate::runner::registry::{port_error, ScaleSetLink};
use github_client::scaleset::{is_unsupported, Statistics};
use github_client::GithubError;

/// What the listener learnt, as the worker reads it.
#[derive(Clone, Default)]
pub struct Demand {
    /// The scale set, once the listener has found or made it.
    pub link: Option<ScaleSetLink>,
    /// The last statistics GitHub sent.
    pub statistics: Statistics,
    /// Why no scale set serves now, said for the status.
    pub problem: Option<DemandProblem>,
    /// Whether a session is open.
    pub listening: bool,
}

/// Why on-demand runners cannot be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemandProblem {
    /// Only the operator can fix it (no scale-set API, no runner group).
    Blocked(String),
    /// It may pass (GitHub unreachable, a session still held after a crash).
    Waiting(String),
}

impl DemandProblem {
    /// An older GitHub Enterprise Server has no scale-set API, which only the operator
    /// can change.
    fn unsupported() -> Self {
        DemandProblem::Blocked(
            "max-total-virtual-machines: this GitHub has no runner scale-set API \
             (GitHub Enterprise Server before 3.10?); set it to 0 for a fixed pool"
                .into(),
        )
    }

    /// Before any scale set exists, a 404 from the Actions service's runner groups or
    /// scale sets is a GitHub without them, as much as one from the runner registration.
    pub fn unsupported_if_missing(e: GithubError) -> Self {
        match e {
            GithubError::ServiceNotFound { .. } => Self::unsupported(),
            e => Self::from_github(e),
        }
    }

    /// Why GitHub's answer stops the listener.
    pub fn from_github(e: GithubError) -> Self {
        if is_unsupported(&e) {
            return Self::unsupported();
        }
        let port = port_error(e);
        let message = format!("runner scale set: {port}");
        if port.needs_operator_fix() {
            DemandProblem::Blocked(message)
        } else {
            DemandProblem::Waiting(message)
        }
    }

    pub fn to_error(&self) -> CharmError {
        match self {
            DemandProblem::Blocked(m) => CharmError::blocked(Cause::new(m.clone())),
            DemandProblem::Waiting(m) => CharmError::transient(Cause::new(m.clone())),
        }
    }
}

/// Runners to hold on demand: the warm ones plus one per job assigned to the scale set
/// (a running job's runner included), at most `max`. The machine's memory may admit
/// fewer (host capacity, applied by the reconcile).
pub fn wanted(warm: u32, max: u32, statistics: &Statistics) -> u32 {
    let assigned = u32::try_from(statistics.assigned).unwrap_or(u32::MAX);
    warm.saturating_add(assigned).min(max)
}

/// What a restarted listener needs: the session it had (taken back, so that it need
/// not wait for it to time out, and its messages and jobs stay its own) and the last
/// message of it that was handled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerState {
    pub scale_set_id: u64,
    pub session_id: Option<String>,
    pub last_message_id: u64,
}

impl ListenerState {
    /// The state kept, whatever its scale set.
    pub fn kept(file: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(file).ok()?).ok()
    }

    /// The state kept for `scale_set_id`; a fresh one for another scale set.
    pub fn load(file: &Path, scale_set_id: u64) -> Self {
        let kept: Option<ListenerState> = std::fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        match kept {
            Some(state) if state.scale_set_id == scale_set_id => state,
            _ => ListenerState {
                scale_set_id,
                ..ListenerState::default()
            },
        }
    }

    pub fn save(&self, file: &Path) {
        let written = serde_json::to_vec(self)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                fs_state::write_atomic(file, &bytes, 0o600).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            log::warn!("listener state {}: {e}", file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(n: u64) -> Statistics {
        Statistics {
            assigned: n,
            ..Statistics::default()
        }
    }

    #[test]
    fn the_pool_is_the_warm_runners_plus_the_assigned_jobs_up_to_the_maximum() {
        assert_eq!(wanted(2, 6, &assigned(0)), 2);
        assert_eq!(wanted(2, 6, &assigned(3)), 5);
        assert_eq!(wanted(2, 6, &assigned(10)), 6);
        assert_eq!(wanted(0, 6, &assigned(u64::MAX)), 6);
    }

    #[test]
    fn the_state_of_another_scale_set_is_not_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("listener.json");
        let state = ListenerState {
            scale_set_id: 7,
            session_id: Some("s-1".into()),
            last_message_id: 42,
        };
        state.save(&file);
        assert_eq!(ListenerState::load(&file, 7), state);
        let other = ListenerState::load(&file, 8);
        assert_eq!((other.session_id, other.last_message_id), (None, 0));
    }
}
