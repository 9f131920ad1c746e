//! The pre-job script inside a real LXD container (the test daemon of
//! scripts/testbed.sh), calling the real policy service on the test bridge: a compliant
//! push job is let through and the instance keeps running; a fork's pull request
//! without approval is refused and the instance powers itself off.
//!
//! Needs the testbed (`scripts/testbed.sh up`); skipped with a reason when it is not
//! there, except with CI=true, where that is a failure.

mod policy_support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_service::fake::{pull, FakeRepo, FakeRepoApi};
use policy_service::prejob::render_pre_job;
use policy_support::{Service, RUNNER};

const SHA: &str = "00112233445566778899aabbccddeeff00112233";

fn lxd_dir() -> String {
    std::env::var("LXD_DIR").unwrap_or_else(|_| "/var/lib/ghr-testbed/lxd".into())
}

fn image() -> String {
    std::env::var("GHR_TEST_IMAGE").unwrap_or_else(|_| "ghr-runner".into())
}

/// The host's address on the test bridge, where instances reach the service.
const BRIDGE_IP: &str = "10.216.1.1";

fn lxc(args: &[&str]) -> Output {
    Command::new("lxc")
        .args(args)
        .env("LXD_DIR", lxd_dir())
        .output()
        .expect("lxc runs")
}

fn lxc_with_input(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new("lxc")
        .args(args)
        .env("LXD_DIR", lxd_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lxc runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Why the testbed cannot be used, if it cannot.
fn testbed_missing() -> Option<String> {
    if Command::new("lxc").arg("--version").output().is_err() {
        return Some("lxc is not installed".into());
    }
    if !std::path::Path::new(&format!("{}/unix.socket", lxd_dir())).exists() {
        return Some(format!(
            "no LXD daemon at {} (scripts/testbed.sh up)",
            lxd_dir()
        ));
    }
    let images = lxc(&["image", "list", "--format", "csv", "-c", "l"]);
    if !String::from_utf8_lossy(&images.stdout)
        .lines()
        .any(|l| l == image())
    {
        return Some(format!("image {} missing (scripts/testbed.sh up)", image()));
    }
    let bridge = Command::new("ip")
        .args(["-4", "-br", "addr", "show", "ghrbr0"])
        .output();
    if !bridge.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BRIDGE_IP)) {
        return Some(format!("bridge ghrbr0 with {BRIDGE_IP} missing"));
    }
    None
}

/// A container deleted on drop, also when the test fails.
struct Instance {
    name: String,
}

impl Instance {
    fn launch() -> Self {
        let name = format!("t-policy-{:x}", std::process::id());
        let instance = Instance { name };
        let out = lxc(&["launch", &image(), &instance.name]);
        assert!(
            out.status.success(),
            "launch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Networking is up once there is a default route (DHCP done).
        instance.wait_until(Duration::from_secs(60), "a default route", |i| {
            String::from_utf8_lossy(
                &i.exec_root(&["ip", "-4", "route", "show", "default"])
                    .stdout,
            )
            .contains("default")
        });
        instance
    }

    fn wait_until(&self, limit: Duration, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{}: no {what} within {limit:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn exec_root(&self, command: &[&str]) -> Output {
        let mut args = vec!["exec", &self.name, "--"];
        args.extend_from_slice(command);
        lxc(&args)
    }

    fn state(&self) -> String {
        let out = lxc(&[
            "list",
            &format!("^{}$", self.name),
            "--format",
            "csv",
            "-c",
            "s",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn push(&self, path: &str, content: &str) {
        let target = format!("{}{path}", self.name);
        let args = [
            "file", "push", "-", &target, "--uid", "1000", "--gid", "1000", "--mode", "0600",
        ];
        let out = lxc_with_input(&args, content.as_bytes());
        assert!(
            out.status.success(),
            "push {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the pre-job script as the runner user, as the runner app would.
    fn run_pre_job(&self, env: &[(&str, &str)]) -> (bool, String) {
        let mut args: Vec<String> = [
            "exec",
            &self.name,
            "--user",
            "1000",
            "--group",
            "1000",
            "--cwd",
            "/home/ubuntu",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (k, v) in [("HOME", "/home/ubuntu")].iter().chain(env) {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(["--", "bash", "-e", "/home/ubuntu/pre-job.sh"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = lxc(&args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A stop in progress makes delete fail for a moment: retry until a deadline.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !lxc(&["delete", "--force", &self.name]).status.success() && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn pre_job_lets_compliant_jobs_run_and_powers_off_on_refusal() {
    if let Some(reason) = testbed_missing() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    }
    let mut app = FakeRepo::compliant("main");
    app.pulls
        .push(pull(5, "alice/app", "fix", SHA, "canonical/app", "main"));
    let api = Arc::new(FakeRepoApi::new().with_repo("canonical/app", app));
    let service = Service::start_at(api, None, &[format!("{BRIDGE_IP}:0").parse().unwrap()]);
    let instance = Instance::launch();

    // A push on a compliant repository: passes, and the instance keeps running.
    instance.push("/home/ubuntu/push.json", r#"{"ref": "refs/heads/main"}"#);
    instance.push(
        "/home/ubuntu/pre-job.sh",
        &render_pre_job(service.url(), &service.one_time_token(), RUNNER),
    );
    let (ok, stderr) = instance.run_pre_job(&[
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REPOSITORY", "canonical/app"),
        ("GITHUB_EVENT_PATH", "/home/ubuntu/push.json"),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("push check passed"), "{stderr}");
    assert_eq!(instance.state(), "RUNNING");

    // A fork's pull request without approval: refused, and the instance powers off.
    let event = serde_json::json!({"pull_request": {
        "head": {"ref": "fix", "sha": SHA, "repo": {"full_name": "alice/app"}},
        "base": {"ref": "main", "repo": {"full_name": "canonical/app"}}
    }});
    instance.push("/home/ubuntu/event.json", &event.to_string());
    instance.push(
        "/home/ubuntu/pre-job.sh",
        &render_pre_job(service.url(), &service.one_time_token(), RUNNER),
    );
    let (ok, stderr) = instance.run_pre_job(&[
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_REPOSITORY", "canonical/app"),
        ("GITHUB_EVENT_PATH", "/home/ubuntu/event.json"),
    ]);
    assert!(!ok, "the refused job's hook must fail: {stderr}");
    assert!(
        stderr.contains("job refused") && stderr.contains("execute_job"),
        "{stderr}"
    );
    instance.wait_until(Duration::from_secs(60), "power-off", |i| {
        i.state() == "STOPPED"
    });
}
