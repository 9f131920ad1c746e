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
    pub fn of(lxd: &Lxd) -> Result<Daemon, String> {
        let dir = Path::new(&lxd.dir);
        let state_dir = match (dir.file_name(), dir.parent()) {
            (Some(name), Some(parent)) if name == "lxd" => parent.to_path_buf(),
            _ => return Err(format!("{} is not a testbed's LXD_DIR", lxd.dir)),
        };
        let daemon = Daemon {
            lxd: lxd.clone(),
            state_dir,
        };
        daemon.pid()?;
        Ok(daemon)
    }

    fn testbed(&self, command: &str) -> Result<String, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/testbed.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(command)
            .env("GHR_TESTBED_DIR", &self.state_dir)
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "testbed.sh {command} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The daemon's pid, as testbed.sh validates it (a live `lxd` with our `LXD_DIR`).
    pub fn pid(&self) -> Result<i32, String> {
        let pid = self.testbed("pid")?;
        pid.parse()
            .map_err(|e| format!("testbed.sh pid printed {pid:?}: {e}"))
    }

    /// Whether the daemon answers on its socket.
    pub fn answers(&self) -> bool {
        self.lxd.lxc(&["query", "/1.0"]).is_ok()
    }

    /// Sends `signal` to the daemon by its pid and waits until that process is gone;
    /// returns how long it took to go.
    pub fn stop(&self, signal: Signal) -> Result<Duration, String> {
        let pid = self.pid()?;
        let started = Instant::now();
        kill(Pid::from_raw(pid), signal).map_err(|e| format!("kill {pid}: {e}"))?;
        retry(DAEMON_WAIT, || {
            // Gone, or a zombie of the script's setsid that nobody reaps.
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| !stat.contains(") Z "))
                .unwrap_or(false);
            if alive {
                Err(format!(
                    "lxd {pid} still running {:?} after {signal}",
                    started.elapsed()
                ))
            } else {
                Ok(())
            }
        })?;
        Ok(started.elapsed())
    }

    /// Starts the daemon (testbed.sh reuses a running one) and waits until it answers;
    /// returns how long that took.
    pub fn start(&self) -> Result<Duration, String> {
        let started = Instant::now();
        self.testbed("start")?;
        retry(DAEMON_WAIT, || {
            if self.answers() {
                Ok(())
            } else {
                Err("lxd does not answer after testbed.sh start".to_string())
            }
        })?;
        Ok(started.elapsed())
    }
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
