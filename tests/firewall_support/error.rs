//! Why a fixture could not be set up: a missing prerequisite (the test skips outside CI)
//! or a command, daemon or socket that failed, each naming what was being done.

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::mpsc::RecvTimeoutError;

/// One failure of the firewall fixtures; its message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The tests are not run as root; says what root is needed for.
    #[error("needs root ({0})")]
    NotRoot(&'static str),
    /// A program the tests need is not on this machine.
    #[error("`{0}` is not installed")]
    NotInstalled(String),
    /// A program could not be started, a file or socket not opened.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A command ran and failed: its command line, exit status and stderr.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// `lxc` ran and failed: its arguments and stderr.
    #[error("lxc {args} failed: {stderr}")]
    Lxc { args: String, stderr: String },
    /// The testbed's LXD daemon does not answer.
    #[error("no LXD test daemon at {dir} (run scripts/testbed.sh up): {source}")]
    NoDaemon {
        dir: String,
        source: Box<FixtureError>,
    },
    /// The testbed's runner image is missing.
    #[error("no image {image} (run scripts/testbed.sh up): {source}")]
    NoImage {
        image: String,
        source: Box<FixtureError>,
    },
    /// LXD failed to start a container; how long it tried shows a stalled daemon.
    #[error("{source} (after {elapsed:?})")]
    Start {
        source: Box<FixtureError>,
        elapsed: std::time::Duration,
    },
    /// The responder thread could not enter its network namespace.
    #[error("setns {netns}: {source}")]
    Setns { netns: String, source: nix::Error },
    /// The responder thread never said whether it listens.
    #[error("responder {addr}: {source}")]
    ResponderSilent {
        addr: SocketAddr,
        source: RecvTimeoutError,
    },
    /// A server the test started has already exited.
    #[error("{what} exited: {status}")]
    Exited { what: String, status: ExitStatus },
}

impl FixtureError {
    /// Wraps an I/O error with what was being done (for `map_err`).
    pub fn io(what: impl ToString) -> impl FnOnce(std::io::Error) -> FixtureError {
        let what = what.to_string();
        move |source| FixtureError::Io { what, source }
    }
}
