//! Test harness that runs the real charm binary as Juju would: the hook environment,
//! hook tools on PATH (the `hook-standin` binary linked under each name) answering from
//! a test's config, leader flag and state, and a record of every call.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

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
    "juju-reboot",
    "application-version-set",
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
    "lxd",
    "lxc",
    "juju-exec",
    "juju-run",
];

/// One recorded call of a stand-in.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub tool: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
    /// Proxy variables and DEBIAN_FRONTEND as the call saw them.
    pub env: BTreeMap<String, String>,
}

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

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub unit: String,
    pub charm_dir: PathBuf,
    pub extra_env: BTreeMap<String, String>,
    binary: PathBuf,
    /// PATH holds only the stand-ins ([`Harness::isolate`]).
    isolated: bool,
}

pub struct HookRun {
    pub output: Output,
}

impl HookRun {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
}

fn standin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hook-standin"))
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
fn catch_all_dir() -> &'static Path {
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
    /// A harness running the binary cargo built for this test.
    pub fn new() -> Self {
        Self::with_binary(PathBuf::from(env!("CARGO_BIN_EXE_github-runner")))
    }

    /// A harness running another charm entry point (e.g. an unpacked charm's dispatch).
    pub fn with_binary(binary: PathBuf) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        for tool in HOOK_TOOLS {
            std::os::unix::fs::symlink(standin_path(), bin.join(tool)).unwrap();
        }
        let charm_dir = binary.parent().unwrap().to_path_buf();
        let h = Harness {
            dir,
            unit: "github-runner/0".into(),
            charm_dir,
            extra_env: BTreeMap::new(),
            binary,
            isolated: false,
        };
        h.set_config(json!({}));
        h
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

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

    /// Relocates the charm's host files (`GITHUB_RUNNER_ROOT`) into an empty folder of
    /// this harness, and returns it.
    pub fn relocate_root(&mut self) -> PathBuf {
        let root = self.path().join("root");
        fs::create_dir_all(&root).unwrap();
        self.extra_env
            .insert("GITHUB_RUNNER_ROOT".into(), root.display().to_string());
        root
    }

    /// The options config-get answers with, on top of config.yaml's defaults.
    pub fn set_config(&self, overrides: Value) {
        let mut config = default_config();
        for (k, v) in overrides.as_object().cloned().unwrap_or_default() {
            config.insert(k, v);
        }
        fs::write(
            self.path().join("config.json"),
            Value::Object(config).to_string(),
        )
        .unwrap();
    }

    pub fn set_action_params(&self, params: Value) {
        fs::write(self.path().join("action.json"), params.to_string()).unwrap();
    }

    pub fn set_leader(&self, leader: bool) {
        fs::write(self.path().join("leader.json"), json!(leader).to_string()).unwrap();
    }

    pub fn state(&self) -> Value {
        fs::read_to_string(self.path().join("state.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(json!({}))
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

    /// Forgets every scripted answer of TOOL.
    pub fn clear_script(&self, tool: &str) {
        let _ = fs::remove_file(self.path().join("rules").join(tool));
    }

    fn command(&self, dispatch_path: &str) -> Command {
        let standins = self.path().join("bin").display().to_string();
        let path = if self.isolated {
            format!("{standins}:{}", catch_all_dir().display())
        } else {
            format!("{standins}:{}", std::env::var("PATH").unwrap_or_default())
        };
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .env("PATH", path)
            .env("HOOK_HARNESS_DIR", self.path())
            .env("JUJU_DISPATCH_PATH", dispatch_path)
            .env("JUJU_UNIT_NAME", &self.unit)
            .env("JUJU_CHARM_DIR", &self.charm_dir)
            .env("JUJU_MODEL_NAME", "test-model")
            .env("JUJU_VERSION", "3.4.0");
        if let Some(action) = dispatch_path.strip_prefix("actions/") {
            cmd.env("JUJU_ACTION_NAME", action);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs an event under `wrapper` (e.g. `/usr/bin/time -f %M -o FILE`).
    pub fn run_wrapped(&self, dispatch_path: &str, wrapper: &[&str]) -> HookRun {
        let inner = self.command(dispatch_path);
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(inner.get_program());
        cmd.env_clear();
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        HookRun {
            output: cmd.output().expect("run wrapped charm binary"),
        }
    }

    /// Runs one hook, action or custom event, e.g. `hooks/config-changed`.
    pub fn run(&self, dispatch_path: &str) -> HookRun {
        let output = self
            .command(dispatch_path)
            .output()
            .expect("run charm binary");
        HookRun { output }
    }

    /// Starts one event without waiting for it (to kill it, or run another beside it).
    pub fn spawn(&self, dispatch_path: &str) -> std::process::Child {
        self.command(dispatch_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn charm binary")
    }

    pub fn calls(&self) -> Vec<Call> {
        let text = fs::read_to_string(self.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| Call {
                tool: v["tool"].as_str().unwrap_or_default().to_string(),
                args: v["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                stdin: v["stdin"].as_str().map(String::from),
                env: v["env"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    pub fn clear_calls(&self) {
        let _ = fs::remove_file(self.path().join("calls.jsonl"));
    }

    /// `(status, message)` of every status-set, in order.
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.calls_of("status-set")
            .map(|c| {
                let rest: Vec<&String> = c.args.iter().filter(|a| !a.starts_with("--")).collect();
                (
                    rest[0].clone(),
                    rest.get(1).map(|s| s.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }

    pub fn last_status(&self) -> Option<(String, String)> {
        self.statuses().pop()
    }

    /// All action-set pairs, merged.
    pub fn action_results(&self) -> BTreeMap<String, String> {
        self.calls_of("action-set")
            .flat_map(|c| c.args.clone())
            .filter_map(|a| {
                a.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    }

    pub fn action_failure(&self) -> Option<String> {
        self.calls_of("action-fail")
            .last()
            .and_then(|c| c.args.first().cloned())
    }

    /// `(level, message)` of every juju-log call.
    pub fn logs(&self) -> Vec<(String, String)> {
        self.calls_of("juju-log")
            .map(|c| {
                (
                    c.args.get(1).cloned().unwrap_or_default(),
                    c.args.last().cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    pub fn reboots(&self) -> Vec<Vec<String>> {
        self.calls_of("juju-reboot")
            .map(|c| c.args.clone())
            .collect()
    }

    pub fn calls_of<'a>(&self, tool: &'a str) -> impl Iterator<Item = Call> + 'a {
        self.calls().into_iter().filter(move |c| c.tool == tool)
    }
}

/// Programs that scripted answers started are ended by PID, also when a test fails.
impl Drop for Harness {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        let pids: Vec<_> = self
            .spawned()
            .into_iter()
            .map(nix::unistd::Pid::from_raw)
            .collect();
        for pid in &pids {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        // Gone before the next test binds the same ports.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pids.iter().any(|p| kill(*p, None).is_ok()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Every file and folder under `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path().display().to_string());
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        }
    }
    out
}

/// config.yaml's defaults, as config-get would return them.
pub fn default_config() -> serde_json::Map<String, Value> {
    let v = json!({
        "path": "", "group": "default", "token": "", "virtual-machines": 1, "vm-cpu": 2,
        "vm-memory": "7GiB", "vm-disk": "10GiB", "reconcile-interval": 10, "denylist": "",
        "dockerhub-mirror": "", "experimental-use-aproxy": false, "test-mode": "",
        "labels": "", "github-url": "https://github.com",
        "runner-instance-type": "virtual-machine", "runner-image": ""
    });
    v.as_object().unwrap().clone()
}
