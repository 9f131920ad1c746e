//! What hooks ask the runner manager and what it answers: one JSON line each way over
//! the unit's socket (root only: its folder is 0700), so a hook waits for exactly the
//! work it asked for.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use reconcile::plan::Flush;

/// A request's longest line: anything longer is not ours.
const MAX_LINE: u64 = 1 << 20;

/// Which runners a reconcile replaces on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushRunners {
    None,
    Idle,
    All,
}

impl From<FlushRunners> for Flush {
    fn from(f: FlushRunners) -> Flush {
        match f {
            FlushRunners::None => Flush::None,
            FlushRunners::Idle => Flush::Idle,
            FlushRunners::All => Flush::All,
        }
    }
}

/// Whether a reconcile first looks for a new runner application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppCheck {
    Skip,
    /// At most hourly.
    IfDue,
    Force,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Reread the settings the hook wrote, then reconcile.
    Reconcile { flush: FlushRunners, app: AppCheck },
    /// What GitHub and LXD hold, changing nothing (check-runners).
    Check,
}

/// A request's work, done.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The status line (a reconcile's summary); empty for a check.
    pub message: String,
    /// `action-set` pairs.
    pub results: Vec<(String, String)>,
    /// This unit's busy runners after a reconcile.
    pub busy: u32,
    /// Busy runners on the whole machine (every unit's last report), when known.
    pub machine_busy: Option<u32>,
    /// The runner application's new version, when the reconcile updated it.
    pub app_updated: Option<String>,
    /// How many of the unit's runners the machine's memory holds (after a reconcile).
    #[serde(default)]
    pub room: Option<u32>,
    /// Whether the pool was as wanted, every runner up: when not (runners starting, or
    /// one that just ended its job still on its way out), another look is due soon,
    /// as no message from GitHub may come to ask for one.
    #[serde(default)]
    pub settled: bool,
    /// Runners created but not yet online after a reconcile.
    #[serde(default)]
    pub starting: u32,
    /// Runners the reconcile created.
    #[serde(default)]
    pub created: u32,
}

/// How a failure reaches the unit: the classes of `CharmError::disposition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// Only the operator can fix it.
    Blocked,
    /// Likely to pass on its own.
    Waiting,
    /// Something on the machine failed: Juju retries the hook.
    Retry,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    Done(Done),
    Failed(Failure),
}

/// Why a hook got no answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Nothing listens yet (not started, or restarting after a crash).
    #[error("the runner manager is not running")]
    NotRunning(#[source] std::io::Error),
    #[error("the runner manager's answer: {0}")]
    Io(#[from] std::io::Error),
    #[error("the runner manager's answer is not understood: {0}")]
    Garbled(#[from] serde_json::Error),
}

/// Sends `request` and waits up to `wait` for the answer.
pub fn ask(socket: &Path, request: &Request, wait: Duration) -> Result<Reply, LinkError> {
    let mut stream = UnixStream::connect(socket).map_err(LinkError::NotRunning)?;
    stream.set_read_timeout(Some(wait))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write_line(&mut stream, request)?;
    read_line(&mut stream)
}

/// One JSON value and a newline.
pub fn write_line(stream: &mut UnixStream, value: &impl Serialize) -> Result<(), LinkError> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    Ok(stream.flush()?)
}

/// One JSON line, at most [`MAX_LINE`] long.
pub fn read_line<T: serde::de::DeserializeOwned>(stream: &mut UnixStream) -> Result<T, LinkError> {
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&mut *stream, MAX_LINE)).read_line(&mut line)?;
    if line.is_empty() {
        return Err(LinkError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(serde_json::from_str(&line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_keep_their_shape_on_the_wire() {
        let request = Request::Reconcile {
            flush: FlushRunners::Idle,
            app: AppCheck::IfDue,
        };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(line, r#"{"op":"reconcile","flush":"idle","app":"if-due"}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), request);
        let failed = Reply::Failed(Failure {
            kind: FailureKind::Blocked,
            message: "token: rejected".into(),
        });
        let line = serde_json::to_string(&failed).unwrap();
        assert_eq!(serde_json::from_str::<Reply>(&line).unwrap(), failed);
    }

    #[test]
    fn an_answer_crosses_a_socket_and_a_missing_manager_is_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("m.sock");
        let err = ask(&socket, &Request::Check, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, LinkError::NotRunning(_)), "{err:?}");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let request: Request = read_line(&mut stream).unwrap();
            let done = Done {
                message: format!("{request:?}"),
                ..Done::default()
            };
            write_line(&mut stream, &Reply::Done(done)).unwrap();
        });
        let reply = ask(&socket, &Request::Check, Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        assert!(matches!(reply, Reply::Done(d) if d.message == "Check"));
    }
}
