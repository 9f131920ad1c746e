//! The `github-runner policy-server` binary itself: environment, repeated `--bind`,
//! stderr logging without secrets, the stored policy, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHARM_TOKEN: &str = "charm-token-binary-test";
const GITHUB_TOKEN: &str = "ghp_binary_test_token";

/// The server process; killed by PID on drop if a test failed before stopping it.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_github-runner"))
            .args([
                "policy-server",
                "--bind",
                "127.0.0.1:0",
                "--bind",
                "127.0.0.1:0",
            ])
            .env_clear()
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Stderr lines until one contains `needle` (or the deadline passes).
    fn wait_for(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    fn addresses(&mut self) -> Vec<String> {
        (0..2)
            .map(|_| {
                let line = self.wait_for("listening on").expect("listening line");
                line.rsplit(' ').next().unwrap().to_string()
            })
            .collect()
    }

    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A GET as runner [`RUNNER`] would send it (its name in the runner header).
fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = ureq::get(url)
        .timeout(Duration::from_secs(10))
        .set("X-Runner-Name", RUNNER);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    }
}

#[test]
fn serves_on_every_bind_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("policy.json");
    // GitHub on a closed loopback port: /health must say 500, and nothing leaves the machine.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let github_url = format!("http://{closed}");
    let env = [
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("CHARM_TOKEN", CHARM_TOKEN),
        ("GITHUB_URL", github_url.as_str()),
        ("POLICY_DOCUMENT", document.to_str().unwrap()),
    ];
    let mut server = Server::start(&env);
    let addresses = server.addresses();
    for address in &addresses {
        let (status, token) = get(
            &format!("http://{address}/one-time-token?runner={RUNNER}"),
            Some(CHARM_TOKEN),
        );
        assert_eq!((status, token.len()), (200, 64));
        assert_eq!(
            get(&format!("http://{address}/one-time-token"), Some(&token)).0,
            403
        );
    }
    let (status, body) = get(&format!("http://{}/health", addresses[0]), None);
    assert_eq!(status, 500, "{body}");

    let doc = r#"{"pull_request": {"disallow_fork": {"enabled": true}}}"#;
    let posted = ureq::post(&format!("http://{}/policy", addresses[1]))
        .set("Authorization", &format!("Bearer {CHARM_TOKEN}"))
        .set("Content-Type", "application/json")
        .send_string(doc)
        .unwrap();
    assert_eq!(posted.status(), 204);
    assert!(document.exists());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(server.exit_code(), Some(0), "clean exit on SIGTERM");
    server.wait_for("never printed");
    assert!(
        server.seen.iter().any(|l| l.contains("SIGTERM")),
        "{:?}",
        server.seen
    );
    for line in &server.seen {
        assert!(
            !line.contains(CHARM_TOKEN) && !line.contains(GITHUB_TOKEN),
            "secret in {line:?}"
        );
    }
}

#[test]
fn refuses_to_start_without_its_environment() {
    let mut server = Server::start(&[("CHARM_TOKEN", CHARM_TOKEN)]);
    assert!(
        server.wait_for("GITHUB_TOKEN").is_some(),
        "{:?}",
        server.seen
    );
    assert_eq!(server.exit_code(), Some(1));

    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("policy.json");
    std::fs::write(
        &document,
        r#"{"push": {"colaborators": {"enabled": false}}}"#,
    )
    .unwrap();
    let env = [
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("CHARM_TOKEN", CHARM_TOKEN),
        ("POLICY_DOCUMENT", document.to_str().unwrap()),
    ];
    let mut server = Server::start(&env);
    assert!(
        server.wait_for("colaborators").is_some(),
        "a corrupt stored policy stops the start: {:?}",
        server.seen
    );
    assert_eq!(server.exit_code(), Some(1));
}

fn check_run(address: &str, token: &str, runner: &str) -> u16 {
    let response = ureq::post(&format!("http://{address}/push/check-run"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("X-Runner-Name", runner)
        .set("Content-Type", "application/json")
        .send_string(r#"{"repository_name": "canonical/app"}"#);
    match response {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    }
}

fn stop(server: &mut Server) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(server.exit_code(), Some(0));
}

/// One-time tokens of the real binary: bound to the runner they were issued for,
/// revoked by the charm, expiring after `ONE_TIME_TOKEN_TTL`, and kept (runner and
/// expiry too) across a restart.
#[test]
fn one_time_tokens_are_bound_revocable_expiring_and_survive_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let sim = github_runner::sim::SimServer::start(
        github_runner::sim::SimConfig::new(GITHUB_TOKEN),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    ureq::post(&format!("{}/_sim/repos/canonical/app/branches", sim.url))
        .send_json(serde_json::json!({"name": "main", "protection": {"required_reviews": {}}}))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("policy.json");
    let env = [
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("CHARM_TOKEN", CHARM_TOKEN),
        ("GITHUB_URL", sim.url.as_str()),
        ("POLICY_DOCUMENT", document.to_str().unwrap()),
    ];
    let (a, b, c) = ("app-0-0000000a", "app-0-0000000b", "app-0-0000000c");
    let mut server = Server::start(&env);
    let address = server.addresses().remove(0);
    let (idle, used) = (issue(&address, a), issue(&address, b));
    assert_eq!(check_run(&address, &used, b), 204);
    // Presented by another runner: refused, and spent for its own runner too.
    let stolen = issue(&address, c);
    assert_eq!(check_run(&address, &stolen, b), 401);
    assert!(server
        .wait_for(&format!("of runner {c} was presented as {b}"))
        .is_some());
    assert_eq!(check_run(&address, &stolen, c), 401);
    // Revoked when the charm removes the runner: refused. Only the charm may revoke.
    let revoked = issue(&address, c);
    let other = issue(&address, b);
    assert_eq!(revoke(&address, c, &other, b), 403);
    assert_eq!(revoke(&address, c, CHARM_TOKEN, b), 204);
    assert_eq!(check_run(&address, &revoked, c), 401);
    let file = dir.path().join("one-time-tokens");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 1, "one unused token: {text}");
    assert!(text.contains(a), "kept with its runner: {text}");
    assert!(!text.contains(&idle), "only digests are stored");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    stop(&mut server);

    // The restarted service accepts the idle runner's token once, from that runner
    // only, and never the used one.
    let mut server = Server::start(&env);
    let address = server.addresses().remove(0);
    assert_eq!(check_run(&address, &used, b), 401);
    assert_eq!(check_run(&address, &idle, a), 204);
    assert_eq!(check_run(&address, &idle, a), 401);
    stop(&mut server);

    // Expiry: a token issued to live one second, then the service restarted with the
    // default lifetime: the stored expiry holds.
    let mut short = env.to_vec();
    short.push(("ONE_TIME_TOKEN_TTL", "1"));
    let mut server = Server::start(&short);
    let address = server.addresses().remove(0);
    let issued = Instant::now();
    let expiring = issue(&address, a);
    stop(&mut server);
    let mut server = Server::start(&env);
    let address = server.addresses().remove(0);
    // Expiry is kept in whole seconds: two seconds on, it has passed for certain.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(issued.elapsed()));
    assert_eq!(check_run(&address, &expiring, a), 401);
    assert!(server
        .wait_for(&format!("token of runner {a} has expired"))
        .is_some());
    let fresh = issue(&address, a);
    assert_eq!(
        check_run(&address, &fresh, a),
        204,
        "the default lifetime is long"
    );
    stop(&mut server);

    // An explicit ONE_TIME_TOKENS_FILE wins over the derived place.
    let explicit = dir.path().join("elsewhere");
    let mut env = env.to_vec();
    env.push(("ONE_TIME_TOKENS_FILE", explicit.to_str().unwrap()));
    let mut server = Server::start(&env);
    let address = server.addresses().remove(0);
    issue(&address, a);
    assert!(explicit.exists());
    stop(&mut server);
}

/// A runner name the tests issue tokens for.
const RUNNER: &str = "app-0-00000001";

fn issue(address: &str, runner: &str) -> String {
    let url = format!("http://{address}/one-time-token?runner={runner}");
    let (status, token) = get(&url, Some(CHARM_TOKEN));
    assert_eq!(status, 200, "{token}");
    token
}

/// Asks to revoke `runner`'s token with `token`, sent as runner `caller` would.
fn revoke(address: &str, runner: &str, token: &str, caller: &str) -> u16 {
    let url = format!("http://{address}/one-time-token?runner={runner}");
    match ureq::delete(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .set("X-Runner-Name", caller)
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    }
}
