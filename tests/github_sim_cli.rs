//! `github-sim` as a process: prints its base URL first, serves the flags' orgs
//! and repositories at the root and under /api/v3, and stops promptly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The simulator process, killed by PID if the test fails before it stops.
struct SimProcess(std::process::Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn sim_subcommand_prints_url_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("tokens");
    std::fs::write(&token_file, "file-token\n").unwrap();
    let child = Command::new(test_support::bins::path("github-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            "cli-token",
            "--org",
            "acme",
        ])
        .args([
            "--repo",
            "acme/web",
            "--offline-after",
            "5",
            "--lost-job-after",
            "60",
        ])
        .arg("--token-file")
        .arg(&token_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sim = SimProcess(child);
    let mut url = String::new();
    BufReader::new(sim.0.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    for path in [
        "/orgs/acme/actions/runners",
        "/api/v3/repos/acme/web/actions/runners",
    ] {
        let response = ureq::get(&format!("{url}{path}"))
            .set("Authorization", "token cli-token")
            .call()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.header("x-ratelimit-limit"), Some("5000"));
    }

    let from_file = ureq::get(&format!("{url}/orgs/acme/actions/runners"))
        .set("Authorization", "Bearer file-token")
        .call()
        .unwrap();
    assert_eq!(from_file.status(), 200);

    let pid = nix::unistd::Pid::from_raw(sim.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = sim.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "sim did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
