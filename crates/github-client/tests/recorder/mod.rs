//! A call observer that keeps what each test's thread reported. The observer is one per
//! process and the tests of a binary run in parallel threads; the blocking client
//! reports on the thread that sends, so a thread-local record is each test's own.

use std::cell::RefCell;
use std::sync::Once;
use std::time::Duration;

use ghr_types::telemetry::{self, Api, Call, CallObserver, Outcome, RateLimit};
use github_client::{ClientOptions, RetryPolicy};

/// One reported call, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub api: Api,
    pub method: String,
    pub route: String,
    pub outcome: Outcome,
}

/// A GitHub call as the tests expect it.
pub fn github(method: &str, route: &str, outcome: Outcome) -> Seen {
    Seen {
        api: Api::Github,
        method: method.into(),
        route: route.into(),
        outcome,
    }
}

thread_local! {
    static CALLS: RefCell<Vec<Seen>> = const { RefCell::new(Vec::new()) };
    static LIMITS: RefCell<Vec<RateLimit>> = const { RefCell::new(Vec::new()) };
}

struct Recorder;

impl CallObserver for Recorder {
    fn call(&self, call: &Call<'_>) {
        let seen = Seen {
            api: call.api,
            method: call.method.into(),
            route: call.route.into(),
            outcome: call.outcome,
        };
        CALLS.with(|calls| calls.borrow_mut().push(seen));
    }
    fn rate_limit(&self, limit: &RateLimit) {
        LIMITS.with(|limits| limits.borrow_mut().push(*limit));
    }
}

static INSTALL: Once = Once::new();

/// Installs the recorder (once per test binary) and forgets what this thread saw:
/// with `--test-threads=1` every test runs on the same thread.
pub fn start() {
    INSTALL.call_once(|| assert!(telemetry::install(Box::new(Recorder))));
    take_calls();
    take_limits();
}

pub fn take_calls() -> Vec<Seen> {
    CALLS.with(|calls| calls.take())
}

pub fn take_limits() -> Vec<RateLimit> {
    LIMITS.with(|limits| limits.take())
}

/// Two quick tries with short waits: a fault case ends at once, retry still included.
pub fn quick() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            max_total: Duration::from_secs(5),
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(10),
            max_rate_limit_wait: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(1),
        },
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

/// What no route may carry: a host, a query, a token.
pub fn assert_no_host_query_or_token(routes: &[Seen], token: &str) {
    for seen in routes {
        let route = &seen.route;
        assert!(
            !route.contains("127.0.0.1") && !route.contains('?') && !route.contains(token),
            "{route}"
        );
    }
}
