//! The testbed's LXD daemon as a fault to inject: stopped by the PID scripts/testbed.sh
//! recorded for it, started again through the same script. A [`Daemon`] guard starts it
//! again on drop if it is not answering, also when the test fails, because every later
//! test needs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::firewall_support::{retry, Lxd};

/// Why the testbed's daemon could not be found, stopped or started.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The `LXD_DIR` is not `GHR_TESTBED_DIR/lxd`, so this is not a daemon of testbed.sh.
    #[error("{0} is not a testbed's LXD_DIR")]
    NotTestbed(String),
    /// testbed.sh could not be run.
    #[error("{}: {source}", script.display())]
    Script {
        script: PathBuf,
        source: std::io::Error,
    },
    /// testbed.sh ran and failed: the command given, its exit status and stderr.
    #[error("testbed.sh {command} failed ({status}): {stderr}")]
    ScriptFailed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// `testbed.sh pid` printed something that is not a pid.
    #[error("testbed.sh pid printed {printed:?}: {source}")]
    BadPid {
        printed: String,
        source: std::num::ParseIntError,
    },
    /// The signal could not be sent.
    #[error("kill {pid}: {source}")]
    Kill { pid: i32, source: nix::Error },
    /// The daemon outlived the wait after the signal.
    #[error("lxd {pid} still running {elapsed:?} after {signal}")]
    StillRunning {
        pid: i32,
        elapsed: Duration,
        signal: Signal,
    },
    /// The daemon was started but does not answer on its socket.
    #[error("lxd does not answer after testbed.sh start")]
    NoAnswer,
}

/// How long the daemon may take to exit after a signal, or to answer after a start.
const DAEMON_WAIT: Duration = Duration::from_secs(90);

/// The testbed daemon behind an [`Lxd`], with what is needed to stop and start it.
pub struct Daemon {
    lxd: Lxd,
    /// The testbed's state dir (`GHR_TESTBED_DIR`): the daemon's `LXD_DIR` is its `lxd`.
    state_dir: PathBuf,
}

impl Daemon {
    /// The daemon scripts/testbed.sh started for `lxd`, or why it cannot be stopped
    /// (an `LXD_DIR` that is not a testbed's, no pid of ours).
    pub fn of(lxd: &Lxd) -> Result<Daemon, DaemonError> {
        let dir = Path::new(&lxd.dir);
        let state_dir = match (dir.file_name(), dir.parent()) {
            (Some(name), Some(parent)) if name == "lxd" => parent.to_path_buf(),
            _ => return Err(DaemonError::NotTestbed(lxd.dir.clone())),
        };
        // Checked before the guard exists: a guard dropped on this error would start a
        // daemon in a directory that never had one.
        pid_in(&state_dir)?;
        Ok(Daemon {
            lxd: lxd.clone(),
            state_dir,
        })
    }

    /// The daemon's pid, as testbed.sh validates it (a live `lxd` with our `LXD_DIR`).
    pub fn pid(&self) -> Result<i32, DaemonError> {
        pid_in(&self.state_dir)
    }

    /// Whether the daemon answers on its socket.
    pub fn answers(&self) -> bool {
        self.lxd.lxc(&["query", "/1.0"]).is_ok()
    }

    /// Sends `signal` to the daemon by its pid and waits until that process is gone;
    /// returns how long it took to go.
    pub fn stop(&self, signal: Signal) -> Result<Duration, DaemonError> {
        let pid = self.pid()?;
        let started = Instant::now();
        kill(Pid::from_raw(pid), signal).map_err(|source| DaemonError::Kill { pid, source })?;
        retry(DAEMON_WAIT, || {
            // Gone, or a zombie of the script's setsid that nobody reaps.
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| !stat.contains(") Z "))
                .unwrap_or(false);
            if alive {
                Err(DaemonError::StillRunning {
                    pid,
                    elapsed: started.elapsed(),
                    signal,
                })
            } else {
                Ok(())
            }
        })?;
        Ok(started.elapsed())
    }

    /// Starts the daemon (testbed.sh reuses a running one) and waits until it answers;
    /// returns how long that took.
    pub fn start(&self) -> Result<Duration, DaemonError> {
        let started = Instant::now();
        testbed(&self.state_dir, "start")?;
        retry(DAEMON_WAIT, || {
            if self.answers() {
                Ok(())
            } else {
                Err(DaemonError::NoAnswer)
            }
        })?;
        Ok(started.elapsed())
    }
}

/// The pid of the daemon testbed.sh started with `GHR_TESTBED_DIR=state_dir`.
fn pid_in(state_dir: &Path) -> Result<i32, DaemonError> {
    let printed = testbed(state_dir, "pid")?;
    printed
        .parse()
        .map_err(|source| DaemonError::BadPid { printed, source })
}

/// Runs `scripts/testbed.sh COMMAND` for the testbed in `state_dir`; its trimmed stdout.
fn testbed(state_dir: &Path, command: &str) -> Result<String, DaemonError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testbed.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(command)
        .env("GHR_TESTBED_DIR", state_dir)
        .output()
        .map_err(|source| DaemonError::Script {
            script: script.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(DaemonError::ScriptFailed {
            command: command.to_string(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.answers() {
            return;
        }
        eprintln!("restoring the LXD test daemon");
        if let Err(e) = self.start() {
            eprintln!("cannot restore the LXD test daemon: {e}");
        }
    }
}
