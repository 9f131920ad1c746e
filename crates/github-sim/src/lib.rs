//! An in-memory, stateful GitHub for tests and demos: the runner REST endpoints (at the
//! root, api.github.com style, and under `/api/v3`, GHES style), a runner application
//! made of shell scripts, and an admin API under `/_sim/`.
//!
//! Module map: [`state`] (the world and its rules) with [`runner_tokens`]
//! (registration and remove tokens), [`budget`] (the rate limit) and [`faults`]
//! (injected faults), [`jobs`] (workflow jobs),
//! [`api`] (auth, rate limit, faults and counters around every GitHub route) with
//! [`auth`] (PATs, App installation tokens and JWTs), [`apps`] (GitHub Apps),
//! [`app_jwt`] (the JWT check), [`app_tokens`] (the access-token route), [`app_admin`],
//! [`runners`] (GitHub's runner endpoints), [`repos`] (repository endpoints the policy
//! checks read) over [`repo_state`] and [`repo_json`], [`admin`] and [`repo_admin`] (`/_sim/` admin API),
//! [`runner_app`] (the runner app's private endpoints and tarball), [`tarball`],
//! [`scaleset`] (the runner scale-set protocol: registration, the actions service,
//! sessions and their message queues; its module doc lists those routes).
//!
//! # Scale-set jobs
//! A job whose labels fit a runner scale set of its org or repository (see
//! [`scaleset::world::ScaleSet::fits`]) is offered to the scale sets' sessions and
//! goes only to the runners of the scale set that acquired it; REST runners never take
//! it. Any other job goes to the first idle REST runner it fits, as before.
//!
//! # Repository endpoints (authenticated, rate-limited, faults and counters as above)
//! `GET /repos/{o}/{r}`, `.../branches/{b}`, `.../branches/{b}/protection` (404 "Branch
//! not protected" without a rule), `.../collaborators?affiliation=outside|direct|all`,
//! `.../collaborators/{u}/permission` (404 for a user the repository does not know),
//! `.../pulls?state=open|closed|all`, `.../issues/{n}/comments`, and `GET /rate_limit`
//! (free). Lists take `per_page` (1..=100, default 30) and `page` and answer a `Link`
//! header that keeps the other query parameters. A new repository has the default
//! branch `main`, unprotected; its owner login is admin.
//!
//! # GitHub Apps
//! `POST /app/installations/{installation_id}/access_tokens` (also under `/api/v3`)
//! trades an App's JWT for an installation token that then works on the REST routes,
//! within its installation's account, until it expires: see [`app_tokens`]; Apps are
//! set up under `/_sim/apps`: see [`app_admin`].
//!
//! # Any other path (outside `/_sim/`)
//! Counted (under the path), faults, 401 and the budget as above, then 404
//! `{"message": "Not Found", "documentation_url"}` with the `x-ratelimit-*` headers,
//! as GitHub answers a path it does not serve.
//!
//! # Admin API (no authentication; JSON in and out)
//! - `POST /_sim/orgs {"name"}`; `POST /_sim/repos {"repository": "owner/name"}`;
//!   `POST /_sim/orgs/{org}/runner-groups {"name"}` -> `{"id"}`;
//!   `DELETE /_sim/orgs/{org}/runner-groups/{name}` (its runners move to `default`);
//!   `POST /_sim/tokens {"token"}` adds an accepted PAT; `/_sim/apps...` registers
//!   GitHub Apps (see [`app_admin`]).
//! - `POST /_sim/jobs {"repository", "labels": [..], "event_name", "event": {..},
//!   "steps": ["shell", ..], "workflow"?, "ref_name"?, "base_ref"?, "head_ref"?, "sha"?}`
//!   -> the job. Refs not given come from the event (pull_request: base/head ref and
//!   head sha; push: `ref`, `after`).
//! - `GET /_sim/jobs`, `GET /_sim/jobs/{id}` -> `{"id", "run_id", "repository",
//!   "labels", "state": "queued"|"assigned"|"in_progress"|"completed", "conclusion":
//!   "success"|"failure"|null, "runner_id", "runner_name", "lost", "scale_set_id",
//!   "acquired_by", "queued_at", "assigned_at", "started_at", "finished_at", ...}`
//!   (`assigned`: a scale set acquired it, `scale_set_id`; `acquired_by` is the
//!   owner name of the session that acquired it).
//! - `GET /_sim/runners` -> `[{"id", "name", "scope": {"kind": "org"|"repo", "name"},
//!   "labels", "group_id", "scale_set_id", "ephemeral", "jit", "busy", "online",
//!   "job_id"}]`.
//! - `GET /_sim/scalesets` -> `[{"id", "name", "scope", "labels", "runner_group_id",
//!   "ephemeral", "disable_update", "session": null | {"id", "owner", "max_capacity",
//!   "alive", "polling", "token_valid", "pending", "unacknowledged": [message ids]},
//!   "statistics": {"totalAvailableJobs", ... as the messages carry them}, "runners":
//!   [{"id", "name", "busy", "job_id"}]}]`.
//! - `POST /_sim/scalesets/long-poll {"secs"}` (default 50) and
//!   `POST /_sim/scalesets/session-timeout {"secs"}` (default 120; fractions allowed)
//!   -> `{"secs"}`. `POST /_sim/scalesets/{id}/drop-session` makes the session vanish
//!   (its unstarted jobs are offered again; its next poll gets 404), 404 without one.
//!   `POST /_sim/scalesets/expire-tokens`: every admin and queue token stops working
//!   (401) until the client gets a new one.
//! - `POST /_sim/faults {"route", "count", "status"?, "retry_after"?, "latency_ms"?,
//!   "drop"?, "rate_limit_reset_in"?, "message"?}`: the next `count` requests whose
//!   route matches misbehave. `route` is `"METHOD /template"` with axum's `:param`
//!   syntax and without `/api/v3` (e.g. `"GET /orgs/:org/actions/runners"`), a bare
//!   template for any method, or `"*"`. `drop` closes the connection mid-response;
//!   `rate_limit_reset_in` answers 403 as an exhausted primary limit. `DELETE
//!   /_sim/faults` clears them. The scale-set routes count and take faults too, e.g.
//!   `"POST /_services/:tenant/_apis/runtime/runnerscalesets/:id/acquirejobs"`, the
//!   queue's `"GET /_services/:tenant/_queue/:id/:session"` or `"POST
//!   /actions/runner-registration"` (but skip the PAT check and the rate-limit budget:
//!   they take their own tokens).
//! - `GET /_sim/counters` -> `{"GET /orgs/:org/actions/runners": 3, ...}` (requests per
//!   route, every status); `DELETE /_sim/counters` resets them.
//! - `POST /_sim/rate-limit {"remaining", "reset_in_secs"?}` sets the hourly budget
//!   (default 5000, shared by all PATs); `GET /_sim/rate-limit` reads it.
//!
//! - `PATCH /_sim/repos/{o}/{r} {"default_branch"}`; `GET /_sim/repos/{o}/{r}` shows
//!   the repository's data. Every `/_sim/repos/{o}/{r}/...` call creates the
//!   repository when it does not exist.
//! - `POST /_sim/repos/{o}/{r}/branches {"name", "sha"?, "protection"?: {
//!   "required_reviews"?: {"required_approving_review_count"?, "bypass"?: {"users",
//!   "teams", "apps"}}}}` adds or replaces a branch (no `protection`: unprotected).
//! - `PUT /_sim/repos/{o}/{r}/outside-collaborators [{"login", "role"}]` and
//!   `PUT /_sim/repos/{o}/{r}/roles [{"login", "role"}]` replace the outside
//!   collaborators and other users' roles (`read`, `triage`, `write`, `maintain`,
//!   `admin`, a custom name, or `none`).
//! - `POST /_sim/repos/{o}/{r}/pulls {"head_ref", "head_sha", "head_repo" ("owner/name"
//!   or null), "base_ref", "number"?, "state"? ("open"), "user"?}` -> `{"number"}`.
//! - `POST /_sim/repos/{o}/{r}/issues/{n}/comments [{"user", "body"}]` appends comments.
//!
//! The runner app talks to `/_sim/runner/...` with its own credential (see
//! [`runner_app`]); the tarball is at `/_sim/runner-app/{filename}`.

pub mod admin;
pub mod api;
pub mod app_admin;
pub mod app_jwt;
pub mod app_tokens;
pub mod apps;
pub mod auth;
pub mod budget;
pub mod faults;
pub mod jobs;
pub mod repo_admin;
pub mod repo_json;
pub mod repo_state;
pub mod repos;
pub mod runner_app;
pub mod runner_tokens;
pub mod runners;
pub mod scaleset;
pub mod state;
pub mod tarball;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use tokio::sync::Notify;

use state::{Timing, World};

/// The JWT library the simulator verifies App JWTs with, for tests that sign them: the
/// same version, without every test crate declaring it.
pub use jsonwebtoken;

/// The runner version the simulator's app claims to be.
pub const RUNNER_VERSION: &str = "2.319.1";

/// Command-line flags of the `github-sim` binary.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// A personal access token to accept (repeatable).
    #[arg(long = "token", required_unless_present = "token_file")]
    pub tokens: Vec<String>,
    /// A file holding tokens to accept, one a line: keeps them out of `ps`.
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    #[arg(long = "org")]
    pub orgs: Vec<String>,
    /// `owner/name`.
    #[arg(long = "repo")]
    pub repos: Vec<String>,
    /// Seconds without polling after which a runner shows offline.
    #[arg(long, default_value_t = 30)]
    pub offline_after: u64,
    /// Seconds of silence after which a busy runner's job is given up as lost.
    #[arg(long, default_value_t = 120)]
    pub lost_job_after: u64,
}

impl SimArgs {
    pub fn config(&self) -> std::io::Result<SimConfig> {
        let mut tokens = self.tokens.clone();
        if let Some(file) = &self.token_file {
            let text = std::fs::read_to_string(file)?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        Ok(SimConfig {
            tokens,
            orgs: self.orgs.clone(),
            repos: self.repos.clone(),
            offline_after: Duration::from_secs(self.offline_after),
            lost_job_after: Duration::from_secs(self.lost_job_after),
            rate_limit: 5000,
        })
    }
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub tokens: Vec<String>,
    pub orgs: Vec<String>,
    pub repos: Vec<String>,
    pub offline_after: Duration,
    pub lost_job_after: Duration,
    /// Requests per hour for all PATs together.
    pub rate_limit: u64,
}

impl SimConfig {
    pub fn new(token: &str) -> Self {
        SimConfig {
            tokens: vec![token.to_string()],
            orgs: vec![],
            repos: vec![],
            offline_after: Duration::from_secs(30),
            lost_job_after: Duration::from_secs(120),
            rate_limit: 5000,
        }
    }
}

/// The shared state of one simulator.
pub struct Sim {
    world: Mutex<World>,
    /// Wakes long polls (runners, scale-set message queues): a job was queued, a
    /// runner freed or removed, a message queued, a session ended.
    pub changed: Notify,
    closing: AtomicBool,
    pub tarball: tarball::Tarball,
}

impl Sim {
    pub fn new(config: &SimConfig) -> Arc<Sim> {
        let timing = Timing {
            offline_after: config.offline_after,
            lost_job_after: config.lost_job_after,
        };
        let mut world = World::new(timing, config.rate_limit);
        world.tokens.extend(config.tokens.iter().cloned());
        config.orgs.iter().for_each(|o| world.add_org(o));
        world.repos.extend(config.repos.iter().cloned());
        Arc::new(Sim {
            world: Mutex::new(world),
            changed: Notify::new(),
            closing: AtomicBool::new(false),
            tarball: tarball::Tarball::build(RUNNER_VERSION),
        })
    }

    /// The world, with lost jobs given up and timed-out sessions ended first so every
    /// reader sees current state.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let lost = world.expire_lost_jobs(Instant::now(), chrono::Utc::now());
        // A scale set hears of either (JobCompleted, jobs offered again) at once.
        if world.expire_sessions(Instant::now()) || lost {
            self.changed.notify_waiters();
        }
        world
    }

    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// GitHub's REST route families, each a module with its own `routes()`; a new family
/// is one more `merge` here and gets the same guard.
fn github_api() -> Router<Arc<Sim>> {
    runners::routes()
        .merge(repos::routes())
        .merge(app_tokens::routes())
}

pub fn router(sim: Arc<Sim>) -> Router {
    let github = github_api().route_layer(axum::middleware::from_fn_with_state(
        sim.clone(),
        api::guard,
    ));
    Router::new()
        .merge(github.clone())
        .nest("/api/v3", github)
        .merge(scaleset::routes(sim.clone()))
        .merge(admin::routes())
        .merge(repo_admin::routes())
        .merge(app_admin::routes())
        .merge(runner_app::routes())
        .fallback(api::unknown_route)
        .with_state(sim)
}

/// Serves until `shutdown` resolves; long polls are answered at once on shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closer = sim.clone();
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(async move {
            shutdown.await;
            closer.close();
        })
        .await
}

/// A simulator on its own thread and runtime, for blocking tests; stops on drop.
pub struct SimServer {
    pub url: String,
    pub addr: SocketAddr,
    pub sim: Arc<Sim>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimServer {
    pub fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimServer> {
        let sim = Sim::new(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = sim.clone();
        let thread = std::thread::spawn(move || {
            let result = runtime.block_on(serve(listener, served, async move {
                let _ = stopped.await;
            }));
            if let Err(e) = result {
                eprintln!("simulator stopped: {e}");
            }
        });
        Ok(SimServer {
            url: format!("http://{addr}"),
            addr,
            sim,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The `github-sim` binary: prints the base URL as the first stdout line, serves until
/// SIGTERM or SIGINT.
pub fn run_cli(args: &SimArgs) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sim: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: std::io::Result<()> = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "http://{addr}")?;
            out.flush()?;
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        serve(listener, Sim::new(&args.config()?), shutdown).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sim: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
