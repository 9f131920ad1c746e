//! The stand-ins on a harness's PATH: which programs are shadowed (hook tools always,
//! host commands on request, every program when isolated) and what they answer.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::Harness;

/// Juju's hook tools; always shadowed by the stand-in.
pub const HOOK_TOOLS: &[&str] = &[
    "config-get",
    "status-set",
    "action-get",
    "action-set",
    "action-fail",
    "action-log",
    "juju-log",
    "is-leader",
    "state-get",
    "state-set",
    "state-delete",
    "secret-get",
    "juju-reboot",
    "unit-get",
    "application-version-set",
    "relation-ids",
    "relation-set",
    "relation-get",
];

/// Host commands that change the machine; shadowed when a test asks for it.
pub const HOST_COMMANDS: &[&str] = &[
    "nft",
    "apt-get",
    "dpkg",
    "dpkg-query",
    "snap",
    "systemctl",
    "modprobe",
    "sysctl",
    "lxd",
    "lxc",
    "juju-exec",
    "juju-run",
];

/// One scripted answer of a shadowed host command (see [`Harness::script`]).
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub stdout: String,
    pub stderr: String,
    pub exit: u8,
    /// How many calls this answer serves; `None`: all.
    pub times: Option<u32>,
    /// A program (and its arguments) the stand-in starts in the background when it
    /// answers, e.g. the service a `systemctl restart` restarts.
    pub spawn: Vec<String>,
}

impl Reply {
    pub fn ok(stdout: &str) -> Self {
        Reply {
            stdout: stdout.into(),
            ..Reply::default()
        }
    }
    pub fn fail(exit: u8, stderr: &str) -> Self {
        Reply {
            stderr: stderr.into(),
            exit,
            ..Reply::default()
        }
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    pub fn spawn(mut self, argv: &[&str]) -> Self {
        self.spawn = argv.iter().map(|a| a.to_string()).collect();
        self
    }
}

pub(super) fn standin_path() -> PathBuf {
    test_support::bins::path("hook-standin")
}

/// Makes `dir/name` the stand-in, unless it already is.
fn link_standin(dir: &Path, name: &std::ffi::OsStr) {
    let link = dir.join(name);
    if fs::read_link(&link).ok() == Some(standin_path()) {
        return;
    }
    let _ = fs::remove_file(&link);
    match std::os::unix::fs::symlink(standin_path(), &link) {
        // Another test process made it meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        other => other.unwrap(),
    }
}

/// A folder with a stand-in under every program name on the test's PATH, made once
/// and shared by every isolated harness: the stand-in records into the harness whose
/// `HOOK_HARNESS_DIR` the call sees, so one set of links serves them all.
pub(super) fn catch_all_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("standin-catch-all");
        fs::create_dir_all(&dir).unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        for folder in std::env::split_paths(&path) {
            for entry in fs::read_dir(folder).into_iter().flatten().flatten() {
                link_standin(&dir, &entry.file_name());
            }
        }
        dir
    })
}

impl Harness {
    /// Also shadows these host commands with recording stand-ins.
    pub fn shadow(&self, commands: &[&str]) {
        for c in commands {
            link_standin(&self.path().join("bin"), std::ffi::OsStr::new(c));
        }
    }

    /// Lets the charm run no real program: its PATH holds only stand-ins, one for
    /// every name on the test's PATH. A command nobody expected then shows in
    /// [`Harness::calls`] instead of running unseen.
    pub fn isolate(&mut self) {
        self.isolated = true;
    }

    /// Makes TOOL fail with MESSAGE on stderr.
    pub fn fail_tool(&self, tool: &str, message: &str) {
        let dir = self.path().join("fail");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(tool), message).unwrap();
    }

    /// Canned stdout and exit code for a shadowed host command.
    pub fn respond(&self, tool: &str, stdout: &str, exit: u8) {
        for (sub, content) in [("stdout", stdout.to_string()), ("exit", exit.to_string())] {
            let dir = self.path().join(sub);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(tool), content).unwrap();
        }
    }

    /// Answers TOOL calls whose arguments start with `args_prefix` with `reply`. Rules
    /// are tried in the order they were added, before [`Harness::respond`]'s answer.
    pub fn script(&self, tool: &str, args_prefix: &[&str], reply: Reply) {
        let dir = self.path().join("rules");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(tool);
        let mut rules: Vec<Value> = fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        rules.push(json!({
            "args": args_prefix, "stdout": reply.stdout, "stderr": reply.stderr,
            "exit": reply.exit, "times": reply.times, "spawn": reply.spawn,
        }));
        fs::write(path, Value::Array(rules).to_string()).unwrap();
    }

    /// PIDs of the programs scripted answers started ([`Reply::spawn`]).
    pub fn spawned(&self) -> Vec<i32> {
        fs::read_to_string(self.path().join("spawned"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// PIDs of the services the stand-in `systemctl` runs (the runner manager).
    pub fn service_pids(&self) -> Vec<i32> {
        let dir = self.path().join("services");
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
            .filter_map(|e| fs::read_to_string(e.path()).ok()?.trim().parse().ok())
            .collect()
    }

    /// Ends those services as `systemctl stop` would (SIGTERM, then SIGKILL after 30 s),
    /// so that none acts on LXD while a test cleans up.
    pub fn stop_services(&self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let pids: Vec<Pid> = self.service_pids().into_iter().map(Pid::from_raw).collect();
        for pid in &pids {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while pids.iter().any(|p| kill(*p, None).is_ok()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        for pid in &pids {
            let _ = kill(*pid, Signal::SIGKILL);
        }
    }

    /// Forgets every scripted answer of TOOL.
    pub fn clear_script(&self, tool: &str) {
        let _ = fs::remove_file(self.path().join("rules").join(tool));
    }
}
