//! Shared by the runner app tests (`github_runner_app*.rs`): the simulator in process
//! with org `acme` and repository `acme/web`, the simulator's runner app downloaded and
//! unpacked into a folder of its own with a job-started hook that records what it saw,
//! runner processes killed by process group on drop, `config.sh` and JIT registration,
//! queued jobs and the checks after one ran. Needs bash, curl, jq and tar.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use github_client::{GithubClient, JitConfig, JitRequest, Runner, RunnerName};
use github_runner::config::{GithubPath, Token};
use github_runner::proxy::ProxyConfig;
use github_sim::{SimConfig, SimServer};
use serde_json::{json, Value};

pub const PAT: &str = "ghp_runnerAppTestToken0001";

fn tools_missing() -> Option<String> {
    for tool in ["bash", "curl", "jq", "tar"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(Stdio::null())
            .status();
        if !found.is_ok_and(|s| s.success()) {
            return Some(format!("{tool} is not installed (run scripts/deps.sh)"));
        }
    }
    None
}

/// Skips (returns true) when a tool is missing, unless CI=true, where that fails.
pub fn skip() -> bool {
    match tools_missing() {
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => panic!("{reason}"),
        Some(reason) => {
            eprintln!("skipping: {reason}");
            true
        }
        None => false,
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A runner process, killed by PID if the test ends before it exits.
pub struct RunnerProcess(pub Child);

impl RunnerProcess {
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "runner did not exit in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL to the runner's own process group: the listener, its job and heartbeat,
    /// as when the instance under a runner dies.
    pub fn kill_group(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        self.kill_group();
        let _ = self.0.wait();
    }
}

/// Starts `run.sh ARGS` in `root`, in a process group of its own.
pub fn spawn(root: &Path, args: &[&str]) -> RunnerProcess {
    use std::os::unix::process::CommandExt;
    let child = Command::new(root.join("run.sh"))
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn();
    RunnerProcess(child.unwrap())
}

/// Runs `config.sh ARGS` in `root`; its exit status, and stdout then stderr.
pub fn config_sh(root: &Path, args: &[&str]) -> (ExitStatus, String) {
    let out = Command::new(root.join("config.sh"))
        .args(args)
        .output()
        .unwrap();
    let text = [out.stdout, out.stderr].concat();
    (out.status, String::from_utf8_lossy(&text).into_owned())
}

pub struct Setup {
    pub server: SimServer,
    pub client: GithubClient,
    dir: tempfile::TempDir,
    pub org: GithubPath,
}

impl Setup {
    pub fn new() -> Setup {
        let mut config = SimConfig::new(PAT);
        config.orgs = vec!["acme".into()];
        config.repos = vec!["acme/web".into()];
        config.offline_after = Duration::from_secs(3);
        config.lost_job_after = Duration::from_secs(3);
        let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let client = GithubClient::new(
            &format!("{}/api/v3", server.url),
            Token::new(PAT),
            &ProxyConfig::default(),
        )
        .unwrap();
        let org = GithubPath::Org {
            org: "acme".into(),
            group: "default".into(),
        };
        Setup {
            server,
            client,
            dir: tempfile::tempdir().unwrap(),
            org,
        }
    }

    /// Downloads and unpacks the runner app from the simulator, with a hook in `.env`.
    pub fn install(&self, name: &str, hook_exit: i32) -> PathBuf {
        let downloads = self.client.runner_downloads(&self.org).unwrap();
        let x64 = downloads
            .iter()
            .find(|d| d.os == "linux" && d.architecture == "x64")
            .unwrap();
        assert!(downloads.iter().any(|d| d.architecture == "arm64"));
        let root = self.dir.path().join(name);
        std::fs::create_dir_all(&root).unwrap();
        let tarball = root.join(&x64.filename);
        self.client
            .download(
                &x64.download_url,
                &tarball,
                x64.sha256_checksum.as_deref().unwrap(),
            )
            .unwrap();
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success());
        let marks = self.marks(name);
        std::fs::create_dir_all(&marks).unwrap();
        let hook = root.join("pre-job.sh");
        std::fs::write(
            &hook,
            format!(
                "env | grep ^GITHUB_ | sort > {m}/hook.env\ncp \"$GITHUB_EVENT_PATH\" {m}/event.json\nexit {hook_exit}\n",
                m = marks.display()
            ),
        )
        .unwrap();
        std::fs::write(
            root.join(".env"),
            format!(
                "ACTIONS_RUNNER_HOOK_JOB_STARTED={}\nLANG=C.UTF-8\n",
                hook.display()
            ),
        )
        .unwrap();
        root
    }

    pub fn marks(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}-marks"))
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = ureq::request(method, &format!("{}{path}", self.server.url));
        let response = match body {
            Some(b) => request.send_json(b),
            None => request.call(),
        }
        .unwrap();
        response.into_json().unwrap_or(Value::Null)
    }

    /// `config.sh` registering `name` to the org with a fresh registration token.
    pub fn register(&self, root: &Path, name: &str, more: &[&str]) -> (ExitStatus, String) {
        let token = self.client.registration_token(&self.org).unwrap();
        let url = format!("{}/acme", self.server.url);
        let mut args = vec!["--url", &url, "--token", token.token.expose()];
        args.extend(["--name", name, "--unattended"]);
        args.extend(more);
        config_sh(root, &args)
    }

    /// A JIT config for runner `name` in the org's group `runner_group_id`.
    pub fn jit(&self, name: &str, runner_group_id: u64, labels: &[&str]) -> JitConfig {
        let request = JitRequest {
            name: RunnerName::new(name),
            runner_group_id,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            work_folder: "_work".into(),
        };
        self.client.generate_jitconfig(&self.org, &request).unwrap()
    }

    /// Queues a pull_request job for `labels` whose two steps leave marks in `name`'s
    /// folder: `step1` (one) and `step2` (the repository).
    pub fn queue_job(&self, name: &str, labels: &[&str]) -> u64 {
        let marks = self.marks(name);
        let steps = [
            format!("echo one > {}/step1", marks.display()),
            format!("echo \"$GITHUB_REPOSITORY\" > {}/step2", marks.display()),
        ];
        self.queue_job_with(labels, &steps)
    }

    pub fn queue_job_with(&self, labels: &[&str], steps: &[String]) -> u64 {
        let job = self.admin(
            "POST",
            "/_sim/jobs",
            Some(json!({
                "repository": "acme/web",
                "labels": labels,
                "event_name": "pull_request",
                "event": {"number": 42, "pull_request": {"base": {"ref": "main"}, "head": {"ref": "feature", "sha": "abc123"}}},
                "steps": steps,
            })),
        );
        job["id"].as_u64().unwrap()
    }

    /// `(online, busy)` of the runner registered as `name`, if any.
    pub fn runner_state(&self, name: &str) -> Option<(bool, bool)> {
        let runners = self.client.list_runners(&self.org).unwrap();
        runners
            .iter()
            .find(|r| r.name.as_str() == name)
            .map(|r| (r.is_online(), r.busy))
    }

    pub fn registered(&self, name: &str) -> Vec<Runner> {
        let runners = self.client.list_runners(&self.org).unwrap();
        runners
            .into_iter()
            .filter(|r| r.name.as_str() == name)
            .collect()
    }
}

/// Job `job_id` completed with `conclusion` on runner `name`, after the job-started
/// hook saw the job's GITHUB_* variables and event.
pub fn assert_job_ran(setup: &Setup, name: &str, job_id: u64, conclusion: &str) {
    let job = setup.admin("GET", &format!("/_sim/jobs/{job_id}"), None);
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["conclusion"], conclusion, "{job}");
    assert_eq!(job["runner_name"], name);
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());
    let marks = setup.marks(name);
    let hook_env = std::fs::read_to_string(marks.join("hook.env")).expect("the hook ran");
    for expected in [
        "GITHUB_EVENT_NAME=pull_request",
        "GITHUB_REPOSITORY=acme/web",
        "GITHUB_REF_NAME=42/merge",
        "GITHUB_BASE_REF=main",
        "GITHUB_HEAD_REF=feature",
        "GITHUB_SHA=abc123",
        "GITHUB_WORKFLOW=CI",
        "GITHUB_RUN_ID=",
    ] {
        assert!(
            hook_env.contains(expected),
            "{expected} missing from {hook_env}"
        );
    }
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(marks.join("event.json")).unwrap()).unwrap();
    assert_eq!(event["number"], 42);
}
