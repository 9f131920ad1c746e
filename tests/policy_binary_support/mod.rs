//! The real `github-runner policy-server` process for tests: started with a command line
//! (optionally behind a wrapper such as `prlimit` or `setpriv`), its stderr kept line by
//! line, the addresses it says it listens on, and ended by PID (also on drop).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_github-runner")
}

/// The server process; killed by PID on drop if a test did not stop it.
pub struct PolicyProcess {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl PolicyProcess {
    /// Runs `wrapper... BINARY policy-server args...` with exactly `env`.
    pub fn start(wrapper: &[&str], args: &[String], env: &[(String, String)]) -> Self {
        Self::start_program(wrapper, std::path::Path::new(binary()), args, env)
    }

    /// As [`PolicyProcess::start`], with another copy of the binary.
    pub fn start_program(
        wrapper: &[&str],
        program: &std::path::Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Self {
        let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        argv.push(program.display().to_string());
        argv.push("policy-server".into());
        argv.extend(args.iter().cloned());
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        PolicyProcess {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Stderr lines until one contains `needle` (or 20 s pass).
    pub fn wait_for(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// The address of the next "listening ... on ADDR" line that contains `needle`.
    pub fn listening(&mut self, needle: &str) -> String {
        let line = self
            .wait_for(needle)
            .unwrap_or_else(|| panic!("no {needle:?} line: {:?}", self.seen));
        line.rsplit(' ').next().unwrap().to_string()
    }

    /// The exit code once the process ended (None: still running after 20 s, or a signal).
    pub fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, and a clean exit.
    pub fn stop(&mut self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
        assert_eq!(self.exit_code(), Some(0), "{:?}", self.seen);
    }

    /// SIGKILL by PID (a crash), then reaped.
    pub fn kill(&mut self) {
        let _ = nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for PolicyProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
        }
    }
}

/// The runner the tests' one-time tokens are issued for and [`call`] speaks as.
pub const RUNNER: &str = "test-runner-0-00000001";

/// A GET or POST with an optional bearer token, as runner [`RUNNER`] sends it (its
/// name in the runner header); any HTTP answer is returned, a transport error panics.
pub fn call(method: &str, url: &str, token: Option<&str>, json: Option<&str>) -> (u16, String) {
    let mut req = ureq::request(method, url)
        .timeout(Duration::from_secs(20))
        .set("X-Runner-Name", RUNNER);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let result = match json {
        Some(body) => req
            .set("Content-Type", "application/json")
            .send_string(body),
        None => req.call(),
    };
    match result {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}
