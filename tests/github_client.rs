//! The client against the simulator in fault cases: retries recover from transient
//! faults, every failure is the right error, timeouts and the proxy are honoured, and
//! no token appears in any error message, Debug output or log record. Its request
//! headers are read off the wire by a plain loopback server.

mod client_options;
mod recording_server;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use github_client::{ClientOptions, GithubClient, GithubError, JitRequest, RunnerName};
use github_runner::config::{GithubPath, Token};
use github_runner::proxy::ProxyConfig;
use github_sim::{SimConfig, SimServer};
use recording_server::{header, recording_server};
use serde_json::{json, Value};

const PAT: &str = "ghp_redactionCanary7f3a9c";
const WRONG: &str = "ghp_wrongCanary5e1d0b";

/// Keeps every log record, at every level, so tests can search them.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0.lock().unwrap().push(format!(
            "{} {} {}",
            record.level(),
            record.target(),
            record.args()
        ));
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

fn capture_logs() {
    if log::set_logger(&LOGS).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

fn assert_clean(what: &str, text: &str) {
    for secret in [PAT, WRONG] {
        assert!(!text.contains(secret), "{what} leaks a token: {text}");
    }
}

fn sim() -> SimServer {
    let mut config = SimConfig::new(PAT);
    config.orgs = vec!["acme".into()];
    SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn fast() -> ClientOptions {
    client_options::quick(Duration::from_millis(800))
}

fn client(base: &str, token: &str) -> GithubClient {
    GithubClient::with_options(base, Token::new(token), &ProxyConfig::default(), fast()).unwrap()
}

/// Replaces any fault left over with `fault`.
fn fault(server: &SimServer, fault: Value) {
    ureq::delete(&format!("{}/_sim/faults", server.url))
        .call()
        .unwrap();
    ureq::post(&format!("{}/_sim/faults", server.url))
        .send_json(fault)
        .unwrap();
}

fn counter(server: &SimServer, route: &str) -> u64 {
    let counters: Value = ureq::get(&format!("{}/_sim/counters", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    counters[route].as_u64().unwrap_or(0)
}

fn org() -> GithubPath {
    GithubPath::Org {
        org: "acme".into(),
        group: "default".into(),
    }
}

const LIST: &str = "GET /orgs/:org/actions/runners";

#[test]
fn transient_faults_are_retried_until_success() {
    capture_logs();
    let server = sim();
    let gh = client(&server.url, PAT);
    fault(&server, json!({"route": LIST, "count": 2, "status": 503}));
    assert!(gh.list_runners(&org()).unwrap().is_empty());
    assert_eq!(counter(&server, LIST), 3);
    assert_eq!(gh.request_count(), 3);
    fault(&server, json!({"route": LIST, "count": 1, "drop": true}));
    gh.list_runners(&org()).unwrap();
    assert_eq!(counter(&server, LIST), 5);
}

#[test]
fn every_fault_gives_its_error_and_no_token_leaks() {
    capture_logs();
    let server = sim();
    let gh = client(&server.url, PAT);
    let path = org();
    let mut errors: Vec<(&str, GithubError)> = Vec::new();

    errors.push((
        "wrong token",
        client(&server.url, WRONG).list_runners(&path).unwrap_err(),
    ));
    fault(&server, json!({"route": LIST, "count": 5, "status": 500}));
    errors.push(("5xx", gh.list_runners(&path).unwrap_err()));
    fault(&server, json!({"route": LIST, "count": 5, "drop": true}));
    errors.push(("dropped", gh.list_runners(&path).unwrap_err()));
    fault(
        &server,
        json!({"route": LIST, "count": 1, "rate_limit_reset_in": 3000}),
    );
    errors.push(("primary", gh.list_runners(&path).unwrap_err()));
    fault(
        &server,
        json!({"route": LIST, "count": 1, "status": 429, "retry_after": 600}),
    );
    errors.push(("secondary", gh.list_runners(&path).unwrap_err()));
    fault(
        &server,
        json!({"route": LIST, "count": 3, "latency_ms": 1500}),
    );
    errors.push(("timeout", gh.list_runners(&path).unwrap_err()));
    fault(
        &server,
        json!({"route": "/orgs/:org/actions/runners/registration-token", "count": 1, "status": 403,
        "message": format!("token {PAT} lacks admin:org")}),
    );
    errors.push(("echoed", gh.registration_token(&path).unwrap_err()));
    let missing = GithubPath::Org {
        org: "nobody".into(),
        group: "default".into(),
    };
    errors.push(("not found", gh.list_runners(&missing).unwrap_err()));
    let request = JitRequest {
        name: RunnerName::new("j"),
        runner_group_id: 1,
        labels: vec!["a".into()],
        work_folder: "_work".into(),
    };
    fault(
        &server,
        json!({"route": "POST /orgs/:org/actions/runners/generate-jitconfig", "count": 1, "status": 404}),
    );
    errors.push((
        "no jit",
        gh.generate_jitconfig(&path, &request).unwrap_err(),
    ));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    errors.push((
        "refused",
        client(&format!("http://{closed}"), PAT)
            .list_runners(&path)
            .unwrap_err(),
    ));

    let kind = |name: &str| &errors.iter().find(|(n, _)| *n == name).unwrap().1;
    assert!(matches!(kind("wrong token"), GithubError::TokenRejected));
    assert!(matches!(
        kind("5xx"),
        GithubError::Server {
            status: 500,
            attempts: 3
        }
    ));
    assert!(matches!(
        kind("dropped"),
        GithubError::Transport { attempts: 3, .. }
    ));
    assert!(matches!(kind("primary"), GithubError::RateLimited { .. }));
    assert!(matches!(
        kind("secondary"),
        GithubError::SecondaryRateLimited { .. }
    ));
    assert!(
        matches!(kind("timeout"), GithubError::Transport { .. }),
        "{:?}",
        kind("timeout")
    );
    assert!(matches!(
        kind("echoed"),
        GithubError::Forbidden { status: 403, .. }
    ));
    assert!(matches!(
        kind("not found"),
        GithubError::PathNotFound { .. }
    ));
    assert!(matches!(kind("no jit"), GithubError::JitUnavailable));
    assert!(matches!(kind("refused"), GithubError::Transport { .. }));
    assert!(
        kind("echoed").to_string().contains("<redacted>"),
        "{}",
        kind("echoed")
    );

    for (name, error) in &errors {
        assert_clean(name, &format!("{error} / {error:?}"));
    }
    let logs = LOGS.0.lock().unwrap().join("\n");
    assert!(logs.contains("retrying"), "retries are logged");
    assert_clean("logs", &logs);
}

#[test]
fn one_time_secrets_are_redacted_in_debug_output() {
    let server = sim();
    let gh = client(&server.url, PAT);
    let token = gh.registration_token(&org()).unwrap();
    assert!(!format!("{token:?}").contains(token.token.expose()));
    let request = JitRequest {
        name: RunnerName::new("j"),
        runner_group_id: 1,
        labels: vec!["a".into()],
        work_folder: "_work".into(),
    };
    let jit = gh.generate_jitconfig(&org(), &request).unwrap();
    assert!(!format!("{jit:?}").contains(jit.encoded_jit_config.expose()));
}

#[test]
fn proxy_settings_are_honoured() {
    let server = sim();
    // The simulator answers absolute-form requests too, so it can stand in for a proxy:
    // the API host below does not resolve, so only a used proxy makes this succeed.
    let proxy = ProxyConfig {
        http: Some(server.url.clone()),
        https: None,
        no_proxy: None,
    };
    let gh =
        GithubClient::with_options("http://api.github.invalid", Token::new(PAT), &proxy, fast())
            .unwrap();
    assert!(gh.list_runners(&org()).unwrap().is_empty());

    // NO_PROXY: a proxy that refuses connections is bypassed for the listed host.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bypassed = ProxyConfig {
        http: Some(format!("http://{closed}")),
        https: None,
        no_proxy: Some("127.0.0.1".into()),
    };
    let gh = GithubClient::with_options(&server.url, Token::new(PAT), &bypassed, fast()).unwrap();
    assert!(gh.list_runners(&org()).unwrap().is_empty());
}

#[test]
fn a_checksum_mismatch_leaves_no_file() {
    let server = sim();
    let gh = client(&server.url, PAT);
    let download = &gh.runner_downloads(&org()).unwrap()[0];
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("runner.tar.gz");
    let err = gh
        .download(&download.download_url, &dest, &"0".repeat(64))
        .unwrap_err();
    assert!(matches!(err, GithubError::ChecksumMismatch { .. }));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file, no temp file left"
    );
    let started = Instant::now();
    gh.download(
        &download.download_url,
        &dest,
        download.sha256_checksum.as_deref().unwrap(),
    )
    .unwrap();
    assert!(dest.exists() && started.elapsed() < Duration::from_secs(10));
}

#[test]
fn every_request_carries_githubs_headers() {
    let (url, server) = recording_server(2, |request_line| {
        if request_line.starts_with("POST") {
            (
                201,
                r#"{"runner":{"id":1,"name":"r1","os":"linux","status":"offline","busy":false,"labels":[]},"encoded_jit_config":"e30="}"#,
            )
        } else {
            (200, r#"{"total_count":0,"runners":[]}"#)
        }
    });
    let gh = client(&url, PAT);
    assert!(gh.list_runners(&org()).unwrap().is_empty());
    let request = JitRequest {
        name: RunnerName::new("r1"),
        runner_group_id: 1,
        labels: vec!["x".into()],
        work_folder: "_work".into(),
    };
    gh.generate_jitconfig(&org(), &request).unwrap();

    let heads = server.join().unwrap();
    assert_eq!(heads.len(), 2);
    for head in &heads {
        let bearer = format!("Bearer {PAT}");
        assert_eq!(
            header(head, "authorization"),
            Some(bearer.as_str()),
            "{head:?}"
        );
        assert_eq!(
            header(head, "accept"),
            Some("application/vnd.github+json"),
            "{head:?}"
        );
        assert_eq!(
            header(head, "x-github-api-version"),
            Some("2022-11-28"),
            "{head:?}"
        );
        let agent = header(head, "user-agent").unwrap_or_default();
        assert!(
            agent.contains("github-runner") && agent.contains(github_runner::VERSION),
            "{agent:?}"
        );
    }
}
