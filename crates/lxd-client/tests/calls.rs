//! Every request over the LXD socket is reported to the process's call observer with
//! its method, a route template and how it ended: against the real test daemon
//! (`scripts/testbed.sh up`; `$LXD_DIR`, image `ghr-runner` or `$GHR_TEST_IMAGE`), and
//! against a socket nobody listens on. Without the daemon's socket the daemon tests
//! skip, unless CI=true. The container a test launches is removed by a guard.
//!
//! The observer is one per process and the tests run in parallel threads; each test
//! runs its client on a current-thread runtime, so the thread-local record is its own.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use ghr_types::telemetry::{self, Api, Call, CallObserver, Outcome, RateLimit};
use ghr_types::InstanceType;
use lxd_client::{ExecSpec, ImageSource, InstanceSpec, LxdClient, LxdError};

thread_local! {
    static CALLS: RefCell<Vec<(String, String, Outcome)>> = const { RefCell::new(Vec::new()) };
}

struct Recorder;

impl CallObserver for Recorder {
    fn call(&self, call: &Call<'_>) {
        assert_eq!(call.api, Api::Lxd);
        let seen = (call.method.into(), call.route.into(), call.outcome);
        CALLS.with(|calls| calls.borrow_mut().push(seen));
    }
    fn rate_limit(&self, _: &RateLimit) {
        panic!("LXD has no rate limit to report");
    }
}

static INSTALL: Once = Once::new();

/// Installs the recorder once per binary; forgets what this thread saw before.
fn start() {
    INSTALL.call_once(|| assert!(telemetry::install(Box::new(Recorder))));
    take();
}

fn take() -> Vec<(String, String, Outcome)> {
    CALLS.with(|calls| calls.take())
}

fn call(method: &str, route: &str, status: u16) -> (String, String, Outcome) {
    (method.into(), route.into(), Outcome::Status(status))
}

fn shown((method, route, outcome): &(String, String, Outcome)) -> String {
    format!("{method} {route} {outcome:?}")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// The test daemon's client, or None (with the reason printed) when there is none.
fn daemon_or_skip() -> Option<LxdClient> {
    let dir = std::env::var_os("LXD_DIR").map_or("/var/lib/ghr-testbed/lxd".into(), PathBuf::from);
    let socket = dir.join("unix.socket");
    if socket.exists() {
        return Some(LxdClient::new(socket));
    }
    let reason = format!(
        "no LXD socket at {} (scripts/testbed.sh up)",
        socket.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and {reason}"
    );
    eprintln!("skipping: {reason}");
    None
}

#[tokio::test]
async fn a_socket_nobody_listens_on_reports_no_answer() {
    start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("unix.socket");
    // Bound, then closed: the file stays and a connect is refused.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let err = LxdClient::new(&socket)
        .get_instance("zq-c1")
        .await
        .unwrap_err();
    assert!(matches!(err, LxdError::Transport { .. }), "{err}");
    let expected = ("GET".into(), "/1.0/instances/{}".into(), Outcome::Transport);
    assert_eq!(take(), [expected]);
}

#[tokio::test]
async fn the_daemon_s_answers_report_method_route_and_status() {
    let Some(lxd) = daemon_or_skip() else { return };
    start();
    let missing = unique("zq-missing");
    lxd.server().await.unwrap();
    assert!(lxd.get_instance(&missing).await.unwrap_err().is_not_found());
    assert!(lxd.get_profile(&missing).await.unwrap_err().is_not_found());
    let wait = lxd.wait_operation(
        "00000000-0000-0000-0000-00000000dead",
        Duration::from_secs(1),
    );
    assert!(wait.await.unwrap_err().is_not_found());
    assert_eq!(
        take(),
        [
            call("GET", "/1.0", 200),
            call("GET", "/1.0/instances/{}", 404),
            call("GET", "/1.0/profiles/{}", 404),
            call("GET", "/1.0/operations/{}/wait", 404),
        ]
    );
}

/// Removes the instance when dropped, also when the test fails; on a runtime of its
/// own, since the test's current-thread runtime cannot block on it.
struct Guard(PathBuf, String);

impl Drop for Guard {
    fn drop(&mut self) {
        let (socket, name) = (self.0.clone(), self.1.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            if let Err(e) = runtime.block_on(LxdClient::new(socket).remove_instance(&name)) {
                eprintln!("cleanup of instance {name} failed: {e}");
            }
        });
        let _ = cleanup.join();
    }
}

#[tokio::test]
async fn an_exec_reports_the_daemon_s_own_urls_as_templates() {
    let Some(lxd) = daemon_or_skip() else { return };
    start();
    let name = unique("zq-calls");
    let _guard = Guard(lxd.socket().to_path_buf(), name.clone());
    let image = std::env::var("GHR_TEST_IMAGE").unwrap_or_else(|_| "ghr-runner".into());
    let spec = InstanceSpec::new(&name, InstanceType::Container, ImageSource::local(&image));
    lxd.launch(&spec).await.unwrap();
    take();
    let out = lxd
        .exec(&name, &ExecSpec::new(["echo", "zq"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"zq\n");
    let seen: BTreeSet<String> = take().iter().map(shown).collect();
    // LXD 5.0 names the logs `logs/{file}`, later releases `logs/exec-output/{file}`.
    let logs = [
        "/1.0/instances/{}/logs/{}",
        "/1.0/instances/{}/logs/exec-output/{}",
    ]
    .into_iter()
    .find(|log| seen.contains(&shown(&call("GET", log, 200))))
    .expect("the output fetched from a log route");
    let expected: BTreeSet<String> = [
        call("POST", "/1.0/instances/{}/exec", 202),
        call("GET", "/1.0/operations/{}/wait", 200),
        call("GET", logs, 200),
        call("DELETE", logs, 200),
    ]
    .iter()
    .map(shown)
    .collect();
    assert_eq!(seen, expected);
}
