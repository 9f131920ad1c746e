//! The real policy-server binary on the LXD test bridge, reached from real containers:
//! the charm's routes (`/one-time-token`, `/policy`) answer on loopback only, never on
//! the runners' bridge address, even to the charm token; and one runner holding 800
//! idle connections cannot starve another runner's check-run, with the server under
//! the unit's file-descriptor limit (`LimitNOFILE=`, applied with `prlimit`).
//!
//! Needs root and the LXD test daemon (scripts/testbed.sh up); skips with the reason
//! otherwise, unless CI=true. Run under /run/ghr-helpers.lock (it binds the bridge).

mod firewall_support;
mod policy_binary_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firewall_support::{skip, Container, Lxd};
use github_runner::host::units::{render_policy_unit, PolicyUnit};
use github_sim::{SimConfig, SimServer};
use policy_binary_support::{call, PolicyProcess, RUNNER};

const CHARM_TOKEN: &str = "charm-token-listeners-lxd-test";
const GITHUB_TOKEN: &str = "ghp_listeners_lxd_test_token";
/// The testbed's bridge (scripts/testbed.sh): the host's address runners reach.
const BRIDGE_IP: &str = "10.216.1.1";
const BRIDGE_NETWORK: &str = "ghrbr0";
const POLICY_DOC: &str = r#"{"pull_request": {"disallow_fork": {"enabled": true}}}"#;

fn lxd() -> Option<Lxd> {
    match Lxd::from_env() {
        Ok(l) => Some(l),
        Err(reason) => {
            skip(&reason);
            None
        }
    }
}

/// The simulator on loopback with canonical/app, whose protected main branch lets a
/// push check pass.
fn sim() -> SimServer {
    let sim =
        SimServer::start(SimConfig::new(GITHUB_TOKEN), "127.0.0.1:0".parse().unwrap()).unwrap();
    ureq::post(&format!("{}/_sim/repos/canonical/app/branches", sim.url))
        .send_json(serde_json::json!({"name": "main", "protection": {"required_reviews": {}}}))
        .unwrap();
    sim
}

/// The service with the listeners the unit gives it (the bridge for runners, loopback
/// for the charm; any free ports) and, when `nofile` is set, that descriptor limit.
struct Service {
    process: PolicyProcess,
    runner: String,
    charm: String,
    _dir: tempfile::TempDir,
}

fn start(sim: &SimServer, nofile: Option<u64>) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GITHUB_TOKEN", GITHUB_TOKEN.to_string()),
        ("CHARM_TOKEN", CHARM_TOKEN.to_string()),
        ("GITHUB_URL", sim.url.clone()),
        ("STATE_DIRECTORY", dir.path().display().to_string()),
        ("RUST_LOG", "info".to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let args = [
        "--bind".to_string(),
        format!("{BRIDGE_IP}:0"),
        "--charm-bind".into(),
        "127.0.0.1:0".into(),
    ];
    let limit = nofile.map(|n| format!("--nofile={n}:{n}"));
    let wrapper: Vec<&str> = match &limit {
        Some(l) => vec!["prlimit", l, "--"],
        None => Vec::new(),
    };
    let mut process = PolicyProcess::start(&wrapper, &args, &env);
    let runner = format!("http://{}", process.listening("listening for runners on"));
    let charm = format!("http://{}", process.listening("listening for the charm on"));
    Service {
        process,
        runner,
        charm,
        _dir: dir,
    }
}

impl Service {
    fn one_time_token(&self) -> String {
        let url = format!("{}/one-time-token?runner={RUNNER}", self.charm);
        let (status, token) = call("GET", &url, Some(CHARM_TOKEN), None);
        assert_eq!(status, 200, "{token}");
        token
    }
}

/// The HTTP status `curl` in the container got ("000": no answer within 30 s).
fn curl(c: &Container, method: &str, url: &str, token: Option<&str>, json: Option<&str>) -> String {
    let mut argv = vec![
        "curl".to_string(),
        "-sS".into(),
        "-o".into(),
        "/dev/null".into(),
        "-w".into(),
        "%{http_code}".into(),
        "--max-time".into(),
        "30".into(),
        "-X".into(),
        method.into(),
    ];
    if let Some(t) = token {
        argv.extend(["-H".into(), format!("Authorization: Bearer {t}")]);
        argv.extend(["-H".into(), format!("X-Runner-Name: {RUNNER}")]);
    }
    if let Some(body) = json {
        argv.extend([
            "-H".into(),
            "Content-Type: application/json".into(),
            "--data".into(),
            body.into(),
        ]);
    }
    argv.push(url.into());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = c.exec(&argv);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The descriptor limit the charm's unit gives the service (`LimitNOFILE=`).
fn unit_nofile() -> u64 {
    let unit = render_policy_unit(&PolicyUnit {
        name: "github-runner-policy-github-runner-0.service".into(),
        port: policy_service::POLICY_PORT,
        state_directory: "github-runner-policy-github-runner-0".into(),
        logs_directory: "github-runner-policy-github-runner-0".into(),
        charm_unit: "github-runner/0".into(),
        binary: "/usr/local/lib/github-runner/github-runner".into(),
        bridge_address: BRIDGE_IP.parse().unwrap(),
        env_file: "/var/lib/github-runner/policy-server.env".into(),
    });
    let limit = unit.lines().find_map(|l| l.strip_prefix("LimitNOFILE="));
    limit.expect("the unit sets LimitNOFILE=").parse().unwrap()
}

fn launch(lxd: &Lxd, role: &str) -> Container {
    let name = format!("t-pol-{role}-{:x}", std::process::id());
    let c = Container::launch(lxd, &name, BRIDGE_NETWORK).unwrap();
    c.wait_ipv4(Duration::from_secs(60));
    c
}

#[test]
fn charm_routes_answer_on_loopback_only() {
    let Some(lxd) = lxd() else { return };
    let sim = sim();
    let service = start(&sim, None);
    let (runner, charm) = (&service.runner, &service.charm);
    assert!(runner.contains(BRIDGE_IP) && charm.contains("127.0.0.1"));

    // On loopback the charm mints tokens and sets the policy.
    let url = |base: &str, path: &str| format!("{base}{path}");
    assert_eq!(service.one_time_token().len(), 64);
    let set = call(
        "POST",
        &url(charm, "/policy"),
        Some(CHARM_TOKEN),
        Some(POLICY_DOC),
    );
    assert_eq!(set.0, 204, "{}", set.1);
    // On the bridge address the same token finds neither route, even from the host.
    let mint = call(
        "GET",
        &url(runner, "/one-time-token"),
        Some(CHARM_TOKEN),
        None,
    );
    assert_eq!(mint.0, 404, "{}", mint.1);
    let set = call(
        "POST",
        &url(runner, "/policy"),
        Some(CHARM_TOKEN),
        Some(POLICY_DOC),
    );
    assert_eq!(set.0, 404, "{}", set.1);

    // A runner holding the charm token can do neither; its own routes answer.
    let c = launch(&lxd, "holder");
    let mint = curl(
        &c,
        "GET",
        &url(runner, "/one-time-token"),
        Some(CHARM_TOKEN),
        None,
    );
    assert_eq!(mint, "404");
    let set = curl(
        &c,
        "POST",
        &url(runner, "/policy"),
        Some(CHARM_TOKEN),
        Some(POLICY_DOC),
    );
    assert_eq!(set, "404");
    let token = service.one_time_token();
    let body = r#"{"repository_name": "canonical/app"}"#;
    let check = curl(
        &c,
        "POST",
        &url(runner, "/push/check-run"),
        Some(&token),
        Some(body),
    );
    assert_eq!(check, "204");
    assert_eq!(curl(&c, "GET", &url(runner, "/health"), None, None), "204");
}

/// The `lxc exec` that holds the connections open; ended by PID on drop (the
/// container's deletion ends what runs inside).
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

/// Opens `count` TCP connections from `c` to `address`, sends nothing on them and keeps
/// them open. Returns how many connected before the first that could not: a connect
/// the service's full queue leaves unanswered gives up after one SYN retry (about 3 s)
/// instead of two minutes.
fn hold_idle_connections(lxd: &Lxd, c: &Container, address: &str, count: usize) -> (Holder, usize) {
    let (host, port) = address.rsplit_once(':').unwrap();
    let script = format!(
        "echo 1 > /proc/sys/net/ipv4/tcp_syn_retries; ulimit -n 4096; n=0; \
         for i in $(seq {count}); do exec {{fd}}<>/dev/tcp/{host}/{port} || break; n=$((n+1)); done; \
         echo \"opened $n\"; exec sleep 3600"
    );
    let mut child = Command::new("lxc")
        .args(["exec", &c.name, "--", "bash", "-c", &script])
        .env("LXD_DIR", &lxd.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let holder = Holder(child);
    let opened = line.trim().strip_prefix("opened ").map(str::parse);
    let Some(Ok(opened)) = opened else {
        panic!("the holder printed {line:?}")
    };
    (holder, opened)
}

#[test]
fn one_runner_with_800_idle_connections_does_not_starve_another() {
    let Some(lxd) = lxd() else { return };
    let sim = sim();
    let service = start(&sim, Some(unit_nofile()));
    let hog = launch(&lxd, "hog");
    let other = launch(&lxd, "other");
    let address = service.runner.trim_start_matches("http://").to_string();

    // Minted before the flood, so only the runners' listener is under test here.
    let token = service.one_time_token();
    let (_held, opened) = hold_idle_connections(&lxd, &hog, &address, 800);
    let body = r#"{"repository_name": "canonical/app"}"#;
    let url = format!("{}/push/check-run", service.runner);
    assert_eq!(
        curl(&other, "POST", &url, Some(&token), Some(body)),
        "204",
        "the other runner's check-run was not answered; service log: {:?}",
        service.process.seen
    );
    assert_eq!(opened, 800, "the hog's connections all connected");
}
