//! Prism (`prism proxy --errors`) in front of the simulator for the contract tests;
//! installed by scripts/prism-setup.sh. The process is killed by PID on drop.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Prism's binary and the trimmed description; `None` when missing (in CI, installs them).
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("PRISM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/github-runner/prism".into());
    let found = || {
        let (bin, spec) = (
            dir.join("node_modules/.bin/prism"),
            dir.join("github-runners.json"),
        );
        (bin.exists() && spec.exists()).then_some((bin, spec))
    };
    // The path trim-openapi.js gained last: a spec trimmed before it is re-trimmed.
    let spec_has_repos = || {
        std::fs::read_to_string(dir.join("github-runners.json")).is_ok_and(|s| {
            s.contains(
                "/repos/{owner}/{repo}/branches/{branch}/protection/required_pull_request_reviews",
            )
        })
    };
    if found().is_none() || !spec_has_repos() {
        // The setup script is idempotent and re-trims when the path list changed.
        let setup = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/prism-setup.sh");
        let ci = std::env::var("CI").as_deref() == Ok("true");
        if ci || found().is_some() {
            let status = Command::new("bash")
                .arg(setup)
                .status()
                .expect("prism-setup.sh");
            assert!(status.success(), "prism-setup.sh failed");
        }
    }
    found()
}

pub struct Prism {
    child: Child,
    log: PathBuf,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prism {
    pub fn start(bin: &PathBuf, spec: &PathBuf, upstream: &str) -> Prism {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("prism.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args([
                "proxy",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--errors",
            ])
            .arg(spec)
            .arg(upstream)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting prism");
        let prism = Prism {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "prism did not start:\n{}",
                prism.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prism
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every violation Prism logged, for requests and responses alike.
    pub fn violations(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("Violation") || l.contains("sl-violations"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
