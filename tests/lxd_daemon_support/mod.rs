//! A real LXD daemon of a test's own: a temporary `LXD_DIR`, inside a network namespace
//! of its own, so the bridge and NAT rules host setup makes never appear on the host.
//! Started ready (waited for, loopback up); stopping it on drop also ends every process
//! it left. Shared by the host setup tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A prerequisite of a daemon of our own that this machine lacks.
#[derive(Debug, thiserror::Error)]
pub enum Missing {
    /// The tests are not run as root.
    #[error("needs root to run an LXD daemon")]
    Root,
    /// A program the daemon or its namespace needs is not installed.
    #[error("{0} is not installed")]
    Program(&'static str),
}

/// Root and the tools a daemon of our own needs, or why not.
pub fn prerequisites() -> Result<(), Missing> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Missing::Root);
    }
    for program in ["lxd", "lxc", "unshare", "nsenter"] {
        let found = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(Missing::Program(program));
        }
    }
    Ok(())
}

/// Prints why a test is skipped, or fails it when CI=true (CI must run everything).
pub fn skip(reason: impl std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and a prerequisite is missing: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Our daemon, in its own directory and network namespace.
pub struct Daemon {
    dir: tempfile::TempDir,
    child: Child,
}

impl Daemon {
    /// Starts a fresh daemon and waits until it answers; `None` (after saying why)
    /// where this machine cannot run one.
    pub fn start() -> Option<Daemon> {
        if let Err(reason) = prerequisites() {
            skip(&reason);
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("ghr-host-lxd.")
            .tempdir_in("/tmp")
            .unwrap();
        let log = std::fs::File::create(dir.path().join("daemon.out")).unwrap();
        // --debug: the log then names every API request the daemon handles.
        let child = Command::new("unshare")
            .args([
                "--net",
                "--",
                "lxd",
                "--group",
                "root",
                "--debug",
                "--logfile",
            ])
            .arg(dir.path().join("lxd.log"))
            .env("LXD_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start lxd");
        let daemon = Daemon { dir, child };
        let ready = Command::new("lxd")
            .args(["waitready", "--timeout", "60"])
            .env("LXD_DIR", daemon.dir())
            .status()
            .unwrap();
        assert!(ready.success(), "lxd waitready: {ready}");
        daemon.loopback_up();
        Some(daemon)
    }

    /// The daemon's `LXD_DIR`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir().join("unix.socket")
    }

    /// `lxc ARGS` against this daemon; its trimmed output, or a panic naming the error.
    pub fn lxc(&self, args: &[&str]) -> String {
        let out = Command::new("lxc")
            .args(args)
            .env("LXD_DIR", self.dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lxc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The API requests that change something (every method but GET) the daemon has
    /// handled so far, as `METHOD URL`, from its debug log.
    pub fn writes(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir().join("lxd.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("Handling API request"))
            .filter_map(|l| Some(format!("{} {}", field(l, "method")?, field(l, "url")?)))
            .filter(|r| !r.starts_with("GET "))
            .collect()
    }

    /// A fresh namespace has no routing table until an interface is up; LXD's bridge
    /// setup flushes routes and needs one.
    fn loopback_up(&self) {
        let ns = format!("--net=/proc/{}/ns/net", self.child.id());
        let status = Command::new("nsenter")
            .args([ns.as_str(), "ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Processes LXD spawned (dnsmasq outlives `lxd shutdown`) carry our directory in
    /// their command line; only those are ended.
    fn leftover_pids(&self) -> Vec<i32> {
        let needle = self.dir().to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }
}

/// `key=value` or `key="value"` from a logfmt line.
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"')?],
        None => rest.split_whitespace().next()?,
    };
    Some(value.to_string())
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let quiet = |args: &[&str], program: &str| {
            let _ = Command::new(program)
                .args(args)
                .env("LXD_DIR", self.dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["profile", "device", "remove", "default", "eth0"], "lxc");
        quiet(&["network", "delete", "lxdbr0"], "lxc");
        quiet(&["shutdown", "--timeout", "30"], "lxd");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.leftover_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}
