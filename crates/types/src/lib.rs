//! The identity and value types every other crate of the charm shares: runner names and
//! the prefix that makes a unit's own, the GitHub URL and path, the one redacting secret
//! type (tokens), sizes and instance kinds, Juju's proxy settings; and the small pure
//! tools every crate shares: the clock trait ([`clock`]), the template renderer
//! ([`template`]) and shell quoting ([`shell`]). Parsing only; no I/O.

pub mod clock;
pub mod github;
pub mod proxy;
pub mod runner;
pub mod shell;
pub mod size;
pub mod telemetry;
pub mod template;
pub mod token;

use std::borrow::Cow;

pub use clock::{Clock, SystemClock};
pub use github::{valid_github_name, GithubPath, GithubUrl};
pub use proxy::ProxyConfig;
pub use runner::{RunnerName, RunnerPrefix, MAX_NAME_LEN};
pub use size::{ByteSize, InstanceType};
pub use token::{Secret, Token};

/// Why a value could not be parsed: the reason, in words an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(Cow<'static, str>);

impl ValueError {
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        ValueError(reason.into())
    }
}
