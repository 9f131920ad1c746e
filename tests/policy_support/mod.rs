//! Shared by the policy service tests: the real server on 127.0.0.1:0, the runners'
//! and the charm's listeners apart (stopped by Drop)
//! over an in-memory GitHub, a raw HTTP helper, and a logger that keeps every line so
//! tests can prove no token was logged.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

pub mod sim_repo;

use policy_service::document::DocumentFile;
use policy_service::fake::{collaborator, pull, FakeRepo, FakeRepoApi};
use policy_service::github::{Permission, RepoApi};
use policy_service::listen::Limits;
use policy_service::server::{serve_with, AppState, Listeners};

pub const CHARM_TOKEN: &str = "charm-secret-0123456789";
/// The runner [`Service::one_time_token`] issues for and [`request`] speaks as.
pub const RUNNER: &str = "test-runner-0-00000001";

/// Every log line written in this test process.
pub fn log_lines() -> Vec<String> {
    LOGGER
        .get()
        .map(|l| l.lines.lock().unwrap().clone())
        .unwrap_or_default()
}

struct Capture {
    lines: Mutex<Vec<String>>,
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.lines
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

static LOGGER: OnceLock<&'static Capture> = OnceLock::new();

fn init_capture() {
    LOGGER.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture {
            lines: Mutex::new(Vec::new()),
        }));
        log::set_logger(capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
        capture
    });
}

/// A running policy server; dropping it shuts the server down and joins its thread.
pub struct Service {
    /// The runners' listeners.
    pub urls: Vec<String>,
    /// The charm's listener (loopback).
    pub charm: String,
    pub api: Arc<FakeRepoApi>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Service {
    pub fn start(api: Arc<FakeRepoApi>, document: Option<PathBuf>) -> Self {
        Self::start_on(api, document, 1)
    }

    /// Starts on `listeners` loopback ports for runners (the `--bind` repeat case).
    pub fn start_on(api: Arc<FakeRepoApi>, document: Option<PathBuf>, listeners: usize) -> Self {
        let addresses = vec!["127.0.0.1:0".parse().unwrap(); listeners];
        Self::start_at(api, document, &addresses)
    }

    /// Starts the runners' listeners on the given addresses (port 0: any free port),
    /// the charm's on a loopback port.
    pub fn start_at(
        api: Arc<FakeRepoApi>,
        document: Option<PathBuf>,
        addresses: &[std::net::SocketAddr],
    ) -> Self {
        let limits = [Limits::RUNNERS, Limits::CHARM];
        let mut service = Self::launch(api.clone(), document, addresses, limits);
        service.api = api;
        service
    }

    /// Starts on one loopback port for runners with `[runner, charm]` limits.
    pub fn with_limits(api: Arc<FakeRepoApi>, limits: [Limits; 2]) -> Self {
        let mut service = Self::launch(api.clone(), None, &[loopback()], limits);
        service.api = api;
        service
    }

    /// Starts on one loopback port over any GitHub view (the simulator's client);
    /// `self.api` is then an unused, empty fake.
    pub fn over(api: Arc<dyn RepoApi>, document: Option<PathBuf>) -> Self {
        let limits = [Limits::RUNNERS, Limits::CHARM];
        Self::launch(api, document, &[loopback()], limits)
    }

    fn launch(
        api: Arc<dyn RepoApi>,
        document: Option<PathBuf>,
        addresses: &[std::net::SocketAddr],
        limits: [Limits; 2],
    ) -> Self {
        init_capture();
        let state =
            AppState::new(CHARM_TOKEN, api, document.map(DocumentFile::new)).expect("state");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let bind = |address: &std::net::SocketAddr| {
            let l = std::net::TcpListener::bind(address).unwrap();
            l.set_nonblocking(true).unwrap();
            l
        };
        let bound: Vec<std::net::TcpListener> = addresses.iter().map(bind).collect();
        let charm_bound = bind(&loopback());
        let url = |l: &std::net::TcpListener| format!("http://{}", l.local_addr().unwrap());
        let urls = bound.iter().map(url).collect();
        let charm = url(&charm_bound);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let tokio = |l| tokio::net::TcpListener::from_std(l).unwrap();
                let listeners = Listeners {
                    runners: bound.into_iter().map(tokio).collect(),
                    charm: vec![tokio(charm_bound)],
                };
                serve_with(listeners, Arc::new(state), limits, async move {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Service {
            urls,
            charm,
            api: Arc::new(FakeRepoApi::new()),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The (first) runners' listener.
    pub fn url(&self) -> &str {
        &self.urls[0]
    }

    /// The charm's listener: /one-time-token, /policy, /health.
    pub fn charm_url(&self) -> &str {
        &self.charm
    }

    /// Stops the server and returns what `serve` returned.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().expect("server thread"),
            None => Ok(()),
        }
    }

    /// A token for [`RUNNER`], the runner [`request`] speaks as.
    pub fn one_time_token(&self) -> String {
        self.token_for(RUNNER)
    }

    /// A token for runner `runner` alone.
    pub fn token_for(&self, runner: &str) -> String {
        let path = format!("/one-time-token?runner={runner}");
        let r = request(self.charm_url(), "GET", &path, Some(CHARM_TOKEN), None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub body: String,
}

/// One request as runner [`RUNNER`] would send it; `body` is `(content type, text)`.
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Reply {
    request_as(Some(RUNNER), base, method, path, token, body)
}

/// One request naming `runner` in the runner header (none: no header).
pub fn request_as(
    runner: Option<&str>,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Reply {
    let mut req =
        ureq::request(method, &format!("{base}{path}")).timeout(std::time::Duration::from_secs(10));
    if let Some(name) = runner {
        req = req.set("X-Runner-Name", name);
    }
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let result = match body {
        Some((content_type, text)) => req.set("Content-Type", content_type).send_string(text),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    Reply {
        status: response.status(),
        www_authenticate: response.header("www-authenticate").map(str::to_string),
        body: response.into_string().unwrap(),
    }
}

pub fn json(text: &str) -> Option<(&'static str, &str)> {
    Some(("application/json", text))
}

pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// canonical/app: compliant, with an open pull request from the fork alice/app.
pub fn app() -> FakeRepo {
    let mut app = FakeRepo::compliant("main");
    app.pulls.push(pull(
        7,
        "alice/app",
        "feature",
        SHA,
        "canonical/app",
        "main",
    ));
    app.permissions.insert("maint".into(), Permission::Write);
    app
}

pub fn github() -> Arc<FakeRepoApi> {
    let mut leaky = FakeRepo::compliant("main");
    leaky.outside_collaborators = vec![collaborator("mallory", "write")];
    Arc::new(
        FakeRepoApi::new()
            .with_repo("canonical/app", app())
            .with_repo("canonical/leaky", leaky),
    )
}

pub fn pr_body(source: &str) -> String {
    format!(
        r#"{{"repository_name": "canonical/app", "source_repository_name": "{source}",
            "target_branch_name": "main", "source_branch_name": "feature", "commit_sha": "{SHA}"}}"#
    )
}
