//! Measures the service's own time to answer a check: the real HTTP server on loopback,
//! requests sent one at a time, minus the time spent inside GitHub calls (measured by
//! wrapping the [`RepoApi`]), so the numbers hold with a fake or a simulated GitHub.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use policy_service::github::{
    ApiError, Branch, BranchProtection, Collaborator, Comment, Permission, PullRequest, RepoApi,
    RepoName, Repository,
};
use policy_service::server::{serve, AppState, Listeners};

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bench setup: {0}")]
    Io(#[from] std::io::Error),
    #[error("policy service: {0}")]
    Policy(#[from] policy_service::PolicyError),
    #[error("GitHub client: {0}")]
    Github(#[from] github_client::GithubError),
    #[error("request: {0}")]
    Request(#[from] Box<ureq::Error>),
    #[error("{path} answered {status}, expected {expected}")]
    Status {
        path: String,
        status: u16,
        expected: u16,
    },
}

/// Latency percentiles over the samples.
#[derive(Clone, Debug)]
pub struct LatencyReport {
    pub samples: usize,
    /// Round trip minus time inside GitHub calls.
    pub own_p50: Duration,
    pub own_p95: Duration,
    pub own_max: Duration,
    /// Full round trip, as the pre-job script sees it.
    pub total_p50: Duration,
    /// GitHub calls per check.
    pub github_calls: usize,
}

impl std::fmt::Display for LatencyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} checks, {} GitHub calls each: own time p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms; round trip p50 {:.2} ms",
            self.samples,
            self.github_calls,
            ms(self.own_p50),
            ms(self.own_p95),
            ms(self.own_max),
            ms(self.total_p50)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A [`RepoApi`] that adds up the time its calls take.
struct Timed {
    inner: Arc<dyn RepoApi>,
    spent: Mutex<(Duration, usize)>,
}

impl Timed {
    fn time<T>(&self, call: impl FnOnce(&dyn RepoApi) -> T) -> T {
        let start = Instant::now();
        let result = call(self.inner.as_ref());
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        spent.0 += start.elapsed();
        spent.1 += 1;
        result
    }
    fn take(&self) -> (Duration, usize) {
        std::mem::take(&mut *self.spent.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl RepoApi for Timed {
    fn repository(&self, repo: &RepoName) -> Result<Repository, ApiError> {
        self.time(|a| a.repository(repo))
    }
    fn branch(&self, repo: &RepoName, branch: &str) -> Result<Branch, ApiError> {
        self.time(|a| a.branch(repo, branch))
    }
    fn branch_protection(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<BranchProtection>, ApiError> {
        self.time(|a| a.branch_protection(repo, branch))
    }
    fn outside_collaborators(&self, repo: &RepoName) -> Result<Vec<Collaborator>, ApiError> {
        self.time(|a| a.outside_collaborators(repo))
    }
    fn collaborator_permission(&self, repo: &RepoName, user: &str) -> Result<Permission, ApiError> {
        self.time(|a| a.collaborator_permission(repo, user))
    }
    fn open_pull_requests(&self, repo: &RepoName) -> Result<Vec<PullRequest>, ApiError> {
        self.time(|a| a.open_pull_requests(repo))
    }
    fn issue_comments(&self, repo: &RepoName, number: u64) -> Result<Vec<Comment>, ApiError> {
        self.time(|a| a.issue_comments(repo, number))
    }
    fn check_token(&self) -> Result<(), ApiError> {
        self.time(|a| a.check_token())
    }
}

/// Sends `samples` check-runs (`POST {path}` with `body`, each with a fresh one-time
/// token fetched outside the timing) to a server on 127.0.0.1:0 over `api`, and
/// reports the latency. Every check must answer `expected_status`.
pub fn measure_check_latency(
    api: Arc<dyn RepoApi>,
    path: &str,
    body: &str,
    expected_status: u16,
    samples: usize,
) -> Result<LatencyReport, BenchError> {
    const CHARM_TOKEN: &str = "bench-charm-token";
    /// The runner every measured check is made as (tokens are bound to a runner).
    const BENCH_RUNNER: &str = "bench-runner-0-00000000";
    let timed = Arc::new(Timed {
        inner: api,
        spent: Mutex::new((Duration::ZERO, 0)),
    });
    let state = AppState::new(CHARM_TOKEN, timed.clone(), None)?;
    // The runners' routes and the charm's listen apart, as in production.
    let bind = || -> std::io::Result<(std::net::TcpListener, String)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok((listener, url))
    };
    let ((runners, base), (charm, charm_base)) = (bind()?, bind()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(async move {
        let listeners = Listeners {
            runners: vec![tokio::net::TcpListener::from_std(runners)?],
            charm: vec![tokio::net::TcpListener::from_std(charm)?],
        };
        serve(listeners, Arc::new(state), async move {
            let _ = stopped.await;
        })
        .await
    });
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let result = (|| {
        let mut own = Vec::with_capacity(samples);
        let mut total = Vec::with_capacity(samples);
        let mut calls = 0;
        for _ in 0..samples.max(1) {
            let token = agent
                .get(&format!(
                    "{charm_base}/one-time-token?runner={BENCH_RUNNER}"
                ))
                .set("Authorization", &format!("Bearer {CHARM_TOKEN}"))
                .call()
                .map_err(Box::new)?
                .into_string()?;
            timed.take();
            let start = Instant::now();
            let status = match agent
                .post(&format!("{base}{path}"))
                .set("Authorization", &format!("Bearer {token}"))
                .set("X-Runner-Name", BENCH_RUNNER)
                .set("Content-Type", "application/json")
                .send_string(body)
            {
                Ok(r) => r.status(),
                Err(ureq::Error::Status(code, _)) => code,
                Err(e) => return Err(Box::new(e).into()),
            };
            let elapsed = start.elapsed();
            if status != expected_status {
                return Err(BenchError::Status {
                    path: path.to_string(),
                    status,
                    expected: expected_status,
                });
            }
            let (github, n) = timed.take();
            calls = n;
            own.push(elapsed.saturating_sub(github));
            total.push(elapsed);
        }
        own.sort();
        total.sort();
        let pick = |v: &[Duration], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Ok(LatencyReport {
            samples: own.len(),
            own_p50: pick(&own, 0.5),
            own_p95: pick(&own, 0.95),
            own_max: *own.last().expect("at least one sample"),
            total_p50: pick(&total, 0.5),
            github_calls: calls,
        })
    })();
    let _ = stop.send(());
    let _ = runtime.block_on(server);
    result
}
