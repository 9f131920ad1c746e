//! Test harness that runs the real charm binary as Juju would: the hook environment,
//! hook tools on PATH (the `hook-standin` binary linked under each name) answering from
//! a test's config, leader flag and state, and a record of every call. `standins`: what
//! is shadowed and how it answers; `calls`: the record, and views of it; `relations`:
//! the unit's relations and what was set in them; `secrets`: Juju secrets the unit
//! reads with `secret-get`, and `secret-changed`.
#![allow(dead_code, unused_imports)]

mod calls;
mod relations;
mod secrets;
mod standins;

pub use calls::Call;
pub use standins::{Reply, HOOK_TOOLS, HOST_COMMANDS};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use standins::{catch_all_dir, standin_path};

/// The model uuid every harness hook sees (`JUJU_MODEL_UUID`; a version-4 uuid, as
/// Juju's are).
pub const MODEL_UUID: &str = "4f0d2a6e-1c3b-4e8a-9b7d-2c5e8f1a6b3d";

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

impl Harness {
    /// A harness running the binary cargo built for this test, with aproxy's built
    /// beside it, as the packed charm holds them.
    pub fn new() -> Self {
        let aproxy = test_support::bins::path("aproxy");
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_github-runner"));
        assert_eq!(aproxy.parent(), binary.parent(), "aproxy beside the charm");
        Self::with_binary(binary)
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
            // Any free port: units of tests running at once would share the unit's.
            extra_env: BTreeMap::from([(
                "GITHUB_RUNNER_TEST_METRICS_PORT".to_string(),
                "0".to_string(),
            )]),
            binary,
            isolated: false,
        };
        h.set_config(json!({}));
        h
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
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

    fn command(&self, dispatch_path: &str) -> Command {
        let mut cmd = Command::new(&self.binary);
        self.hook_env(&mut cmd, dispatch_path);
        cmd
    }

    /// The environment a hook gets: stand-ins first on PATH, Juju's variables, the
    /// test's extra ones.
    fn hook_env(&self, cmd: &mut Command, dispatch_path: &str) {
        let standins = self.path().join("bin").display().to_string();
        let path = if self.isolated {
            format!("{standins}:{}", catch_all_dir().display())
        } else {
            format!("{standins}:{}", std::env::var("PATH").unwrap_or_default())
        };
        cmd.env_clear()
            .env("PATH", path)
            .env("HOOK_HARNESS_DIR", self.path())
            .env("JUJU_DISPATCH_PATH", dispatch_path)
            .env("JUJU_UNIT_NAME", &self.unit)
            .env("JUJU_CHARM_DIR", &self.charm_dir)
            .env("JUJU_MODEL_NAME", "test-model")
            .env("JUJU_MODEL_UUID", MODEL_UUID)
            .env("JUJU_VERSION", "3.4.0");
        if let Some(action) = dispatch_path.strip_prefix("actions/") {
            cmd.env("JUJU_ACTION_NAME", action);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
    }

    /// Runs the stand-in `systemctl ARGS` with a hook's environment: what systemd does
    /// on its own, e.g. starting a crashed service again (`Restart=always`).
    pub fn systemctl(&self, args: &[&str]) {
        let mut cmd = Command::new(self.path().join("bin").join("systemctl"));
        self.hook_env(&mut cmd, "");
        let status = cmd.args(args).status().expect("run the stand-in systemctl");
        assert!(status.success(), "systemctl {args:?}: {status}");
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
        self.run_with_env(dispatch_path, &[])
    }

    /// Runs one event with extra environment variables for this run only, e.g. the
    /// `JUJU_SECRET_ID` of a `secret-changed` hook.
    pub fn run_with_env(&self, dispatch_path: &str, env: &[(&str, &str)]) -> HookRun {
        let mut cmd = self.command(dispatch_path);
        cmd.envs(env.iter().copied());
        let output = cmd.output().expect("run charm binary");
        calls::append(&self.path().join(calls::HOOK_STDERR), &output.stderr);
        HookRun { output }
    }

    /// Runs an event and insists it succeeded, with what the charm logged if not.
    pub fn run_ok(&self, dispatch_path: &str) -> HookRun {
        let run = self.run(dispatch_path);
        assert!(
            run.success(),
            "{} {dispatch_path} failed: {}\nlogs: {:#?}",
            self.unit,
            run.stderr(),
            self.logs()
        );
        run
    }

    /// Starts one event without waiting for it (to kill it, or run another beside it).
    pub fn spawn(&self, dispatch_path: &str) -> std::process::Child {
        self.command(dispatch_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn charm binary")
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
