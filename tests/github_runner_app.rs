//! The simulator's runner app, run on this machine as host processes against the
//! simulator: registers through `config.sh` and through `--jitconfig`, goes online,
//! takes a queued job, runs the job-started hook and the steps, and deregisters.
//! Also `config.sh` with `--runnergroup` and `--replace`, and `config.sh remove`
//! refusing a bad token. Needs bash, curl and jq (scripts/deps.sh installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use github_runner::config::{GithubPath, Token};
use github_runner::github::{GithubClient, JitRequest, RunnerName};
use github_runner::proxy::ProxyConfig;
use github_runner::sim::{SimConfig, SimServer};
use serde_json::{json, Value};

const PAT: &str = "ghp_runnerAppTestToken0001";

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
fn skip() -> bool {
    match tools_missing() {
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => panic!("{reason}"),
        Some(reason) => {
            eprintln!("skipping: {reason}");
            true
        }
        None => false,
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A runner process, killed by PID if the test ends before it exits.
struct RunnerProcess(Child);

impl RunnerProcess {
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
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
}

impl RunnerProcess {
    /// SIGKILL to the runner's own process group: the listener, its job and heartbeat,
    /// as when the instance under a runner dies.
    fn kill_group(&mut self) {
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

struct Setup {
    server: SimServer,
    client: GithubClient,
    dir: tempfile::TempDir,
    org: GithubPath,
}

impl Setup {
    fn new() -> Setup {
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
    fn install(&self, name: &str, hook_exit: i32) -> PathBuf {
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

    fn marks(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}-marks"))
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = ureq::request(method, &format!("{}{path}", self.server.url));
        let response = match body {
            Some(b) => request.send_json(b),
            None => request.call(),
        }
        .unwrap();
        response.into_json().unwrap_or(Value::Null)
    }

    fn queue_job(&self, name: &str, labels: &[&str]) -> u64 {
        let marks = self.marks(name);
        let steps = [
            format!("echo one > {}/step1", marks.display()),
            format!("echo \"$GITHUB_REPOSITORY\" > {}/step2", marks.display()),
        ];
        self.queue_job_with(labels, &steps)
    }

    fn queue_job_with(&self, labels: &[&str], steps: &[String]) -> u64 {
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

    fn runner_state(&self, name: &str) -> Option<(bool, bool)> {
        let runners = self.client.list_runners(&self.org).unwrap();
        runners
            .iter()
            .find(|r| r.name.as_str() == name)
            .map(|r| (r.is_online(), r.busy))
    }
}

fn spawn(root: &Path, args: &[&str]) -> RunnerProcess {
    use std::os::unix::process::CommandExt;
    let child = Command::new(root.join("run.sh"))
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn();
    RunnerProcess(child.unwrap())
}

fn assert_job_ran(setup: &Setup, name: &str, job_id: u64, conclusion: &str) {
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

#[test]
fn config_sh_runner_registers_runs_a_job_and_deregisters() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("cfg-runner", 0);
    let token = setup.client.registration_token(&setup.org).unwrap();
    let url = format!("{}/acme", setup.server.url);
    let status = Command::new(root.join("config.sh"))
        .args([
            "--url",
            &url,
            "--token",
            token.token.expose(),
            "--name",
            "cfg-runner",
            "--labels",
            "custom1,gpu",
        ])
        .args(["--ephemeral", "--unattended", "--work", "_work"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        setup.runner_state("cfg-runner"),
        Some((false, false)),
        "registered, not yet online"
    );

    let mut runner = spawn(&root, &[]);
    wait_until("runner online", Duration::from_secs(20), || {
        setup.runner_state("cfg-runner") == Some((true, false))
    });
    let job = setup.queue_job("cfg-runner", &["self-hosted", "custom1"]);
    let status = runner.wait_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "ephemeral runner exits 0 after its job: {status:?}"
    );
    assert_job_ran(&setup, "cfg-runner", job, "success");
    let marks = setup.marks("cfg-runner");
    assert_eq!(
        std::fs::read_to_string(marks.join("step1")).unwrap().trim(),
        "one"
    );
    assert_eq!(
        std::fs::read_to_string(marks.join("step2")).unwrap().trim(),
        "acme/web"
    );
    assert_eq!(
        setup.runner_state("cfg-runner"),
        None,
        "ephemeral runner deregistered"
    );
}

#[test]
fn jit_runner_registers_runs_a_job_and_its_config_is_single_use() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("jit-runner", 0);
    let group = setup
        .client
        .runner_group_id("acme", "default")
        .unwrap()
        .unwrap();
    let request = JitRequest {
        name: RunnerName::new("jit-runner"),
        runner_group_id: group,
        labels: vec!["jitlabel".into(), "linux".into()],
        work_folder: "_work".into(),
    };
    let jit = setup
        .client
        .generate_jitconfig(&setup.org, &request)
        .unwrap();
    assert_eq!(jit.runner.ephemeral, Some(true));
    assert_eq!(
        setup.runner_state("jit-runner"),
        Some((false, false)),
        "JIT registers at once"
    );

    let mut runner = spawn(&root, &["--jitconfig", jit.encoded_jit_config.expose()]);
    wait_until("runner online", Duration::from_secs(20), || {
        setup.runner_state("jit-runner") == Some((true, false))
    });
    let copy = setup.install("jit-again", 0);
    let status = spawn(&copy, &["--jitconfig", jit.encoded_jit_config.expose()])
        .wait_exit(Duration::from_secs(20));
    assert!(!status.success(), "a JIT config works once");

    let job = setup.queue_job("jit-runner", &["jitlabel"]);
    let status = runner.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert_job_ran(&setup, "jit-runner", job, "success");
    assert!(setup.marks("jit-runner").join("step1").exists());
    assert_eq!(setup.runner_state("jit-runner"), None);
}

#[test]
fn failing_hook_fails_the_job_before_its_steps() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("hook-fails", 3);
    let request = JitRequest {
        name: RunnerName::new("hook-fails"),
        runner_group_id: 1,
        labels: vec!["h".into()],
        work_folder: "_work".into(),
    };
    let jit = setup
        .client
        .generate_jitconfig(&setup.org, &request)
        .unwrap();
    let mut runner = spawn(&root, &["--jitconfig", jit.encoded_jit_config.expose()]);
    let job = setup.queue_job("hook-fails", &["h"]);
    assert!(runner.wait_exit(Duration::from_secs(30)).success());
    assert_job_ran(&setup, "hook-fails", job, "failure");
    assert!(
        !setup.marks("hook-fails").join("step1").exists(),
        "steps must not run after a failed hook"
    );
}

#[test]
fn listener_stops_on_sigint_and_config_remove_deregisters() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("persistent", 0);
    let token = setup.client.registration_token(&setup.org).unwrap();
    let url = format!("{}/acme", setup.server.url);
    let status = Command::new(root.join("config.sh"))
        .args([
            "--url",
            &url,
            "--token",
            token.token.expose(),
            "--name",
            "persistent",
            "--unattended",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mut runner = spawn(&root, &[]);
    wait_until("runner online", Duration::from_secs(20), || {
        setup.runner_state("persistent") == Some((true, false))
    });
    let pid = nix::unistd::Pid::from_raw(runner.0.id() as i32);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(
        comm.trim(),
        "Runner.Listener",
        "pkill -2 Runner.Listener must find it"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = runner.wait_exit(Duration::from_secs(5));
    assert!(!status.success());
    wait_until("runner offline", Duration::from_secs(10), || {
        setup.runner_state("persistent") == Some((false, false))
    });

    let remove = setup.client.remove_token(&setup.org).unwrap();
    let status = Command::new(root.join("config.sh"))
        .args(["remove", "--token", remove.token.expose()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(setup.runner_state("persistent"), None);
}

#[test]
fn a_runner_that_dies_mid_job_stays_busy_until_the_job_is_lost() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("dies", 0);
    let request = JitRequest {
        name: RunnerName::new("dies"),
        runner_group_id: 1,
        labels: vec!["die".into()],
        work_folder: "_work".into(),
    };
    let jit = setup
        .client
        .generate_jitconfig(&setup.org, &request)
        .unwrap();
    let id = jit.runner.id;
    let mut runner = spawn(&root, &["--jitconfig", jit.encoded_jit_config.expose()]);
    let job = setup.queue_job_with(&["die"], &["sleep 60".to_string()]);
    wait_until("runner busy", Duration::from_secs(20), || {
        setup.runner_state("dies") == Some((true, true))
    });
    runner.kill_group();
    runner.wait_exit(Duration::from_secs(5));
    assert_eq!(
        setup.client.delete_runner(&setup.org, id).unwrap(),
        github_runner::github::DeleteOutcome::Busy
    );
    wait_until("job given up", Duration::from_secs(15), || {
        setup.runner_state("dies") == Some((false, false))
    });
    let state = setup.admin("GET", &format!("/_sim/jobs/{job}"), None);
    assert_eq!(
        (
            state["state"].as_str(),
            state["conclusion"].as_str(),
            state["lost"].as_bool()
        ),
        (Some("completed"), Some("failure"), Some(true))
    );
    assert_eq!(
        setup.client.delete_runner(&setup.org, id).unwrap(),
        github_runner::github::DeleteOutcome::Deleted
    );
}

/// Runs `config.sh ARGS` in `root`; its exit status, and stdout then stderr.
fn config_sh(root: &Path, args: &[&str]) -> (ExitStatus, String) {
    let out = Command::new(root.join("config.sh"))
        .args(args)
        .output()
        .unwrap();
    let text = [out.stdout, out.stderr].concat();
    (out.status, String::from_utf8_lossy(&text).into_owned())
}

impl Setup {
    /// `config.sh` registering `name` to the org with a fresh registration token.
    fn register(&self, root: &Path, name: &str, more: &[&str]) -> (ExitStatus, String) {
        let token = self.client.registration_token(&self.org).unwrap();
        let url = format!("{}/acme", self.server.url);
        let mut args = vec!["--url", &url, "--token", token.token.expose()];
        args.extend(["--name", name, "--unattended"]);
        args.extend(more);
        config_sh(root, &args)
    }

    fn registered(&self, name: &str) -> Vec<github_runner::github::Runner> {
        let runners = self.client.list_runners(&self.org).unwrap();
        runners
            .into_iter()
            .filter(|r| r.name.as_str() == name)
            .collect()
    }
}

#[test]
fn config_sh_registers_into_a_runner_group_and_replace_takes_over_a_name() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let group = setup.admin(
        "POST",
        "/_sim/orgs/acme/runner-groups",
        Some(json!({"name": "gpu"})),
    );
    let group_id = group["id"].as_u64().unwrap();
    let first = setup.install("first", 0);
    let (status, stderr) = setup.register(&first, "shared", &["--runnergroup", "gpu"]);
    assert!(status.success(), "{stderr}");
    let old = setup.registered("shared");
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].runner_group_id, Some(group_id), "in the gpu group");
    let (status, stderr) =
        setup.register(&setup.install("lost", 0), "x", &["--runnergroup", "nope"]);
    assert!(!status.success(), "an unknown group is refused");
    assert!(stderr.contains("runner group not found"), "{stderr}");

    // Another machine under the same name: refused, unless it replaces the old one.
    let second = setup.install("second", 0);
    let (status, stderr) = setup.register(&second, "shared", &[]);
    assert!(!status.success());
    assert!(stderr.contains("same name"), "{stderr}");
    let (status, stderr) = setup.register(&second, "shared", &["--replace"]);
    assert!(status.success(), "{stderr}");
    let now = setup.registered("shared");
    assert_eq!(now.len(), 1, "one registration under the name");
    assert_ne!(now[0].id, old[0].id, "the old registration was replaced");
    assert_eq!(now[0].runner_group_id, Some(1), "back in the default group");

    // The replaced runner's own registration is gone: its removal is skipped.
    let remove = setup.client.remove_token(&setup.org).unwrap();
    let (status, output) = config_sh(&first, &["remove", "--token", remove.token.expose()]);
    assert!(status.success(), "{output}");
    assert!(output.contains("Does not exist. Skipping"), "{output}");
    assert_eq!(setup.registered("shared").len(), 1);
}

#[test]
fn config_remove_with_a_bad_token_fails_and_keeps_the_runner() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("keeper", 0);
    let (status, stderr) = setup.register(&root, "keeper", &[]);
    assert!(status.success(), "{stderr}");

    let (status, output) = config_sh(&root, &["remove", "--token", "AAAAbogusRemoveToken"]);
    assert!(!status.success(), "a rejected remove token is a failure");
    assert!(
        output.contains("removing the runner failed (401)"),
        "{output}"
    );
    assert_eq!(setup.registered("keeper").len(), 1);
    assert!(root.join(".runner").exists(), "still configured");

    let remove = setup.client.remove_token(&setup.org).unwrap();
    let (status, output) = config_sh(&root, &["remove", "--token", remove.token.expose()]);
    assert!(status.success(), "{output}");
    assert!(output.contains("Runner removed"), "{output}");
    assert!(setup.registered("keeper").is_empty());
    assert!(!root.join(".runner").exists());
}
