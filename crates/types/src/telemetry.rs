//! Where the GitHub and LXD clients report each call they make, for the runner
//! manager's metrics. One observer per process, installed once at the edge (the
//! manager's start); with none installed a report costs a failed `OnceLock` read.
//!
//! A process-wide hook rather than an observer handed to every client: the clients are
//! made in many places (hooks, the manager, the listener, the policy service) and
//! counting calls changes none of their behaviour, so threading a parameter through
//! each would widen every constructor for no decision anyone makes with it.

use std::sync::OnceLock;

/// Which API a call went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Github,
    Lxd,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An answer with this status (2xx and 3xx count as success).
    Status(u16),
    /// No answer: connection, timeout or a body that could not be read.
    Transport,
}

impl Outcome {
    /// The bounded error class, `None` for a success.
    pub fn error_class(self) -> Option<&'static str> {
        match self {
            Outcome::Status(s) if s < 400 => None,
            Outcome::Status(429) => Some("rate-limited"),
            Outcome::Status(s) if s < 500 => Some("client"),
            Outcome::Status(_) => Some("server"),
            Outcome::Transport => Some("transport"),
        }
    }
}

/// One call: `route` is a template (see [`route_template`]), never a name or an id,
/// so the metrics' labels stay bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call<'a> {
    pub api: Api,
    pub method: &'a str,
    pub route: &'a str,
    pub outcome: Outcome,
}

/// GitHub's `x-ratelimit-*` headers of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// When the window resets, in seconds since the Unix epoch.
    pub reset_epoch_secs: u64,
}

pub trait CallObserver: Send + Sync {
    fn call(&self, call: &Call<'_>);
    fn rate_limit(&self, limit: &RateLimit);
}

impl<T: CallObserver> CallObserver for std::sync::Arc<T> {
    fn call(&self, call: &Call<'_>) {
        T::call(self, call)
    }
    fn rate_limit(&self, limit: &RateLimit) {
        T::rate_limit(self, limit)
    }
}

static OBSERVER: OnceLock<Box<dyn CallObserver>> = OnceLock::new();

/// Installs the process's observer; `false` when one already was (the first stays).
pub fn install(observer: Box<dyn CallObserver>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Whether an observer listens: a client builds a call's route only then.
pub fn observing() -> bool {
    OBSERVER.get().is_some()
}

pub fn report_call(call: &Call<'_>) {
    if let Some(observer) = OBSERVER.get() {
        observer.call(call);
    }
}

pub fn report_rate_limit(limit: &RateLimit) {
    if let Some(observer) = OBSERVER.get() {
        observer.rate_limit(limit);
    }
}

/// `path` (query dropped) with every segment that is not one of `literals` replaced by
/// `{}`: `/repos/o/r/actions/runners/7` -> `/repos/{}/{}/actions/runners/{}`. The
/// literals are the words of the API's own routes, so the result is one of a bounded
/// set whatever the names and ids in the path.
pub fn route_template(path: &str, literals: &[&str]) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| {
            if s.is_empty() || literals.contains(&s) {
                s
            } else {
                "{}"
            }
        })
        .collect();
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_become_placeholders() {
        let words = ["repos", "actions", "runners", "orgs"];
        assert_eq!(
            route_template(
                "/repos/canonical/actions/actions/runners/7?per_page=100",
                &words
            ),
            "/repos/{}/actions/actions/runners/{}"
        );
        assert_eq!(
            route_template("/orgs/x/actions/runners", &words),
            "/orgs/{}/actions/runners"
        );
    }

    #[test]
    fn error_classes_are_bounded() {
        let classes: Vec<_> = [200, 304, 404, 429, 502]
            .map(|s| Outcome::Status(s).error_class())
            .into();
        assert_eq!(
            classes,
            vec![
                None,
                None,
                Some("client"),
                Some("rate-limited"),
                Some("server")
            ]
        );
        assert_eq!(Outcome::Transport.error_class(), Some("transport"));
    }
}
