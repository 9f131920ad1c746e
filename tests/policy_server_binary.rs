//! The `github-runner policy-server` binary itself: environment, the runners' listeners
//! (`--bind`, repeated) apart from the charm's (`--charm-bind`, loopback only), stderr
//! logging without secrets, the stored policy (also in `STATE_DIRECTORY`), and a clean
//! stop on SIGTERM.

mod policy_binary_support;

use policy_binary_support::{call, PolicyProcess, RUNNER};
use policy_service::POLICY_PORT;

const CHARM_TOKEN: &str = "charm-token-binary-test";
const GITHUB_TOKEN: &str = "ghp_binary_test_token";

const ARGS: [&str; 6] = [
    "--bind",
    "127.0.0.1:0",
    "--bind",
    "127.0.0.1:0",
    "--charm-bind",
    "127.0.0.1:0",
];

/// The server with two runners' listeners and the charm's, as the unit has them (on
/// loopback, any free ports), under exactly `env`.
struct Server {
    process: PolicyProcess,
    runners: Vec<String>,
    charm: String,
}

/// The process only, for starts that are meant to fail.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> PolicyProcess {
    PolicyProcess::start(&[], &strings(args), &owned(env))
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut process = spawn(&ARGS, env);
        let runners = (0..2)
            .map(|_| format!("http://{}", process.listening("listening for runners on")))
            .collect();
        let charm = format!("http://{}", process.listening("listening for the charm on"));
        Server {
            process,
            runners,
            charm,
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    call("GET", url, token, None)
}

#[test]
fn serves_each_route_on_its_listener_and_stops_on_sigterm() {
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
    let (status, token) = get(
        &format!("{}/one-time-token?runner={RUNNER}", server.charm),
        Some(CHARM_TOKEN),
    );
    assert_eq!((status, token.len()), (200, 64));
    let doc = r#"{"pull_request": {"disallow_fork": {"enabled": true}}}"#;
    let policy = format!("{}/policy", server.charm);
    assert_eq!(call("POST", &policy, Some(CHARM_TOKEN), Some(doc)).0, 204);
    assert!(document.exists());
    for url in server.runners.iter().chain([&server.charm]) {
        let (status, body) = get(&format!("{url}/health"), None);
        assert_eq!(status, 500, "{body}");
    }
    // The runners' listeners know neither charm route, whatever the token.
    for url in &server.runners {
        let mint = format!("{url}/one-time-token");
        assert_eq!(get(&mint, Some(CHARM_TOKEN)).0, 404);
        let set = format!("{url}/policy");
        assert_eq!(call("POST", &set, Some(CHARM_TOKEN), Some(doc)).0, 404);
    }
    // Nor does the charm's listener run checks.
    let check = format!("{}/push/check-run", server.charm);
    assert_eq!(call("POST", &check, Some(&token), Some("{}")).0, 404);

    server.process.stop();
    server.process.wait_for("never printed");
    let seen = &server.process.seen;
    assert!(seen.iter().any(|l| l.contains("SIGTERM")), "{seen:?}");
    for line in seen {
        assert!(
            !line.contains(CHARM_TOKEN) && !line.contains(GITHUB_TOKEN),
            "secret in {line:?}"
        );
    }
}

#[test]
fn refuses_to_start_without_its_environment() {
    let mut server = spawn(&ARGS, &[("CHARM_TOKEN", CHARM_TOKEN)]);
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
    let mut server = spawn(&ARGS, &env);
    assert!(
        server.wait_for("colaborators").is_some(),
        "a corrupt stored policy stops the start: {:?}",
        server.seen
    );
    assert_eq!(server.exit_code(), Some(1));
}

#[test]
fn refuses_a_charm_listener_off_loopback() {
    let env = [("GITHUB_TOKEN", GITHUB_TOKEN), ("CHARM_TOKEN", CHARM_TOKEN)];
    let bridge = format!("10.216.1.1:{POLICY_PORT}");
    for bad in ["0.0.0.0:0", bridge.as_str(), "[::]:0"] {
        let args = ["--bind", "127.0.0.1:0", "--charm-bind", bad];
        let mut server = spawn(&args, &env);
        let line = server.wait_for("loopback");
        assert!(line.is_some_and(|l| l.contains(bad)), "{:?}", server.seen);
        assert_eq!(server.exit_code(), Some(2), "a usage error");
    }
    // Both kinds of listener are required.
    let mut server = spawn(&["--bind", "127.0.0.1:0"], &env);
    assert!(
        server.wait_for("--charm-bind").is_some(),
        "{:?}",
        server.seen
    );
    assert_eq!(server.exit_code(), Some(2));
}

/// One-time tokens of the real binary: bound to the runner they were issued for,
/// revoked by the charm, expiring after `ONE_TIME_TOKEN_TTL`, and kept (runner and
/// expiry too) across a restart.
#[test]
fn one_time_tokens_are_bound_revocable_expiring_and_survive_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};
    let sim = github_sim::SimServer::start(
        github_sim::SimConfig::new(GITHUB_TOKEN),
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
    let runners = server.runners[0].clone();
    let (idle, used) = (issue(&server, a), issue(&server, b));
    assert_eq!(check_run(&runners, &used, b), 204);
    // Presented by another runner: refused, and spent for its own runner too.
    let stolen = issue(&server, c);
    assert_eq!(check_run(&runners, &stolen, b), 401);
    let misuse = format!("of runner {c} was presented as {b}");
    assert!(server.process.wait_for(&misuse).is_some());
    assert_eq!(check_run(&runners, &stolen, c), 401);
    // Revoked when the charm removes the runner: refused. Only the charm may revoke.
    let revoked = issue(&server, c);
    let other = issue(&server, b);
    assert_eq!(revoke(&server, c, &other, b), 403);
    assert_eq!(revoke(&server, c, CHARM_TOKEN, b), 204);
    assert_eq!(check_run(&runners, &revoked, c), 401);
    let file = dir.path().join("one-time-tokens");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 1, "one unused token: {text}");
    assert!(text.contains(a), "kept with its runner: {text}");
    assert!(!text.contains(&idle), "only digests are stored");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    server.process.stop();

    // The restarted service accepts the idle runner's token once, from that runner
    // only, and never the used one.
    let mut server = Server::start(&env);
    let runners = server.runners[0].clone();
    assert_eq!(check_run(&runners, &used, b), 401);
    assert_eq!(check_run(&runners, &idle, a), 204);
    assert_eq!(check_run(&runners, &idle, a), 401);
    server.process.stop();

    // Expiry: a token issued to live one second, then the service restarted with the
    // default lifetime: the stored expiry holds.
    let mut short = env.to_vec();
    short.push(("ONE_TIME_TOKEN_TTL", "1"));
    let mut server = Server::start(&short);
    let issued = Instant::now();
    let expiring = issue(&server, a);
    server.process.stop();
    let mut server = Server::start(&env);
    let runners = server.runners[0].clone();
    // Expiry is kept in whole seconds: two seconds on, it has passed for certain.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(issued.elapsed()));
    assert_eq!(check_run(&runners, &expiring, a), 401);
    let expired = format!("token of runner {a} has expired");
    assert!(server.process.wait_for(&expired).is_some());
    let fresh = issue(&server, a);
    let long = "the default lifetime is long";
    assert_eq!(check_run(&runners, &fresh, a), 204, "{long}");
    server.process.stop();

    // An explicit ONE_TIME_TOKENS_FILE wins over the derived place.
    let explicit = dir.path().join("elsewhere");
    let mut env = env.to_vec();
    env.push(("ONE_TIME_TOKENS_FILE", explicit.to_str().unwrap()));
    let mut server = Server::start(&env);
    issue(&server, a);
    assert!(explicit.exists());
    server.process.stop();
}

fn issue(server: &Server, runner: &str) -> String {
    let url = format!("{}/one-time-token?runner={runner}", server.charm);
    let (status, token) = get(&url, Some(CHARM_TOKEN));
    assert_eq!(status, 200, "{token}");
    token
}

/// Asks to revoke `runner`'s token with `token`, sent as runner `caller` would.
fn revoke(server: &Server, runner: &str, token: &str, caller: &str) -> u16 {
    let url = format!("{}/one-time-token?runner={runner}", server.charm);
    status_of(
        ureq::delete(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("X-Runner-Name", caller)
            .call(),
    )
}

/// A push check-run with `token`, as runner `runner`'s pre-job script sends it.
fn check_run(url: &str, token: &str, runner: &str) -> u16 {
    status_of(
        ureq::post(&format!("{url}/push/check-run"))
            .set("Authorization", &format!("Bearer {token}"))
            .set("X-Runner-Name", runner)
            .set("Content-Type", "application/json")
            .send_string(r#"{"repository_name": "canonical/app"}"#),
    )
}

fn status_of(result: Result<ureq::Response, ureq::Error>) -> u16 {
    match result {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn keeps_its_state_in_the_state_directory_systemd_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().display().to_string();
    let env = [
        ("GITHUB_TOKEN", GITHUB_TOKEN),
        ("CHARM_TOKEN", CHARM_TOKEN),
        ("STATE_DIRECTORY", state.as_str()),
    ];
    let mut server = Server::start(&env);
    let doc = r#"{"push": {"collaborators": {"enabled": false}}}"#;
    let policy = format!("{}/policy", server.charm);
    assert_eq!(call("POST", &policy, Some(CHARM_TOKEN), Some(doc)).0, 204);
    get(
        &format!("{}/one-time-token?runner={RUNNER}", server.charm),
        Some(CHARM_TOKEN),
    );
    assert!(dir.path().join("policy.json").exists());
    assert!(dir.path().join("one-time-tokens").exists());
    server.process.stop();
}
