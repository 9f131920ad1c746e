//! The stand-in `systemctl` as systemd for the runner manager's units: it starts the
//! unit file's `ExecStart` the charm wrote (under `$GITHUB_RUNNER_ROOT`), with the
//! caller's environment (the test's knobs), and ends it by PID.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

const PREFIX: &str = "github-runner-manager-";

/// Acts on `systemctl ARGS` when they name a manager unit; anything else is left alone.
pub fn systemctl(dir: &Path, args: &[String]) {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let (verb, unit) = match words.as_slice() {
        [verb @ ("start" | "restart"), unit] => (*verb, *unit),
        ["enable", "--now", unit] => ("start", *unit),
        ["stop", unit] | ["disable", "--now", unit] => ("stop", *unit),
        _ => return,
    };
    if !unit.starts_with(PREFIX) {
        return;
    }
    if verb == "stop" || verb == "restart" {
        stop(dir, unit);
    }
    if verb != "stop" && !running(dir, unit) {
        start(dir, unit);
    }
}

fn pid_file(dir: &Path, unit: &str) -> PathBuf {
    dir.join("services").join(format!("{unit}.pid"))
}

fn pid(dir: &Path, unit: &str) -> Option<Pid> {
    let text = fs::read_to_string(pid_file(dir, unit)).ok()?;
    text.trim().parse().ok().map(Pid::from_raw)
}

fn running(dir: &Path, unit: &str) -> bool {
    pid(dir, unit).is_some_and(|p| kill(p, None).is_ok())
}

/// SIGTERM, then waits (as systemd's stop does) up to 30 s before SIGKILL.
fn stop(dir: &Path, unit: &str) {
    let Some(pid) = pid(dir, unit) else {
        return;
    };
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while kill(pid, None).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = kill(pid, Signal::SIGKILL);
    let _ = fs::remove_file(pid_file(dir, unit));
}

fn start(dir: &Path, unit: &str) {
    let Some(root) = std::env::var_os("GITHUB_RUNNER_ROOT") else {
        return;
    };
    let file = Path::new(&root).join("etc/systemd/system").join(unit);
    let Some(argv) = exec_start(&file) else {
        eprintln!("systemctl: no ExecStart in {}", file.display());
        return;
    };
    let _ = fs::create_dir_all(dir.join("services"));
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("services").join(format!("{unit}.log")))
        .ok()
        .map(std::process::Stdio::from);
    let argv: Vec<Value> = argv.into_iter().map(Value::String).collect();
    if let Some(pid) = super::spawn(dir, &argv, log) {
        let _ = fs::write(pid_file(dir, unit), pid.to_string());
    }
}

/// The unit's `ExecStart=` split on spaces (the charm's manager line has no quoting).
fn exec_start(file: &Path) -> Option<Vec<String>> {
    let text = fs::read_to_string(file).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("ExecStart="))?;
    Some(line.split_whitespace().map(String::from).collect())
}
