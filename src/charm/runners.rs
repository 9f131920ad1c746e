//! Runner operations as the handlers use them: build the real clients from the config,
//! hold the reconcile lock, keep the storage pool and runner application ready, run the
//! engine (on the hosts `runner_host` builds), and remember the result for
//! `update-status`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::policy_health::{Checked, LocalCheck};
pub use super::summary::{unix_now, Summary};
use super::{CharmError, HookEnv};
use crate::config::{CharmConfig, GithubPath};
use crate::firewall::{FirewallSpec, InterfaceName, LoadRecord, Nft};
use crate::host::SystemCommands;
use crate::runner::app::{AppCache, AppUpdate};
use crate::runner::files;
use crate::runner::layout::InstanceLayout;
use crate::runner::lxd_host::{ensure_profiles, list_own};
use crate::runner::registry::{GithubAppSource, GithubRegistry};
use crate::runner::{pool, RunnerName, RunnerPrefix};
use fs_state::ensure_private_dir;
use github_client::GithubClient;
use lxd_client::LxdClient;
use reconcile::execute::Report;
use reconcile::lock::{LockError, ReconcileLock};
use reconcile::plan::{Desired, Flush, Observed};
use reconcile::ports::{PortError, RunnerRegistry};
use reconcile::{self, DEFAULT_PARALLELISM};

pub use crate::host::HostPaths as Paths;

/// Says that a failure to learn the runners' bridge stops the firewall.
fn firewall_context(e: CharmError) -> CharmError {
    match e {
        CharmError::Blocked(m) => CharmError::Blocked(format!("firewall: {m}")),
        CharmError::Transient(m) => CharmError::Transient(format!("firewall: {m}")),
        other => other,
    }
}

/// A new instance may take this long to register and come online.
const GRACE_SECS: u64 = 300;
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// For tests only (like `GITHUB_RUNNER_ROOT`): seconds that replace the GitHub client's
/// request timeout, the reconcile lock's wait and the grace of a new instance, so tests
/// need not wait minutes.
const TEST_GITHUB_TIMEOUT: &str = "GITHUB_RUNNER_TEST_GITHUB_TIMEOUT";
const TEST_LOCK_WAIT: &str = "GITHUB_RUNNER_TEST_LOCK_WAIT";
const TEST_GRACE: &str = "GITHUB_RUNNER_TEST_GRACE";

fn test_seconds(name: &str) -> Option<Duration> {
    let secs: u64 = std::env::var(name).ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

pub(super) fn port(e: PortError) -> CharmError {
    if e.needs_operator {
        CharmError::Blocked(e.message)
    } else {
        CharmError::Transient(e.message)
    }
}

/// What a reconcile did, and the summary the status shows (its counts and the policy
/// service's health).
pub struct Reconciled {
    pub report: Report,
    pub summary: Summary,
}

/// Everything a runner operation needs, built once per hook.
pub struct Runners {
    pub config: CharmConfig,
    pub env: HookEnv,
    pub paths: Paths,
    pub prefix: RunnerPrefix,
    pub github: GithubClient,
    pub lxd: LxdClient,
    pub(super) runtime: tokio::runtime::Runtime,
    lock_wait: Duration,
}

impl Runners {
    pub fn new(config: CharmConfig, env: HookEnv) -> Result<Self, CharmError> {
        let mut options = github_client::transport::ClientOptions::default();
        if let Some(timeout) = test_seconds(TEST_GITHUB_TIMEOUT) {
            options.request_timeout = timeout;
            options.connect_timeout = options.connect_timeout.min(timeout);
        }
        let github = GithubClient::with_options(
            &config.github_url.api_base(),
            config.token.clone(),
            &env.proxy,
            options,
        )
        .map_err(|e| CharmError::Blocked(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| CharmError::Internal(e.into()))?;
        Ok(Runners {
            prefix: RunnerPrefix::from_unit(&env.unit_name),
            paths: Paths::from_env(),
            lxd: LxdClient::from_env(),
            github,
            config,
            env,
            runtime,
            lock_wait: test_seconds(TEST_LOCK_WAIT).unwrap_or(LOCK_WAIT),
        })
    }

    fn lock(&self) -> Result<ReconcileLock, CharmError> {
        ReconcileLock::acquire(&self.paths.lock_file(), self.lock_wait).map_err(|e| match e {
            LockError::Busy(_) => CharmError::Transient(e.to_string()),
            LockError::Io { .. } => CharmError::Internal(e.into()),
        })
    }

    pub(super) fn pool_name(&self) -> String {
        format!("{}pool", self.prefix.as_str())
    }

    /// Refreshes the runner application (at most hourly unless `force`).
    pub fn update_app(&self, force: bool) -> Result<AppUpdate, CharmError> {
        let cache = AppCache::new(self.paths.app_dir());
        let source = GithubAppSource {
            client: &self.github,
            path: &self.config.path,
        };
        cache
            .ensure(&source, unix_now(), force)
            .map_err(|e| CharmError::Transient(e.to_string()))
    }

    fn registry(&self, path: &GithubPath) -> Result<Arc<GithubRegistry>, CharmError> {
        let image = self
            .config
            .runner_image
            .clone()
            .unwrap_or_else(|| "jammy".into());
        let app = self
            .env
            .unit_name
            .split('/')
            .next()
            .unwrap_or("github-runner");
        Ok(Arc::new(
            GithubRegistry::new(
                self.github.clone(),
                path.clone(),
                files::runner_labels(app, &image, &self.config.labels),
                self.paths.state_dir().join("runner-group.json"),
            )
            .map_err(port)?,
        ))
    }

    /// Makes the kernel hold the firewall between the runners' bridge and everything
    /// else exactly as rendered from the current `denylist`: loaded (atomically) when
    /// it changed, is missing or was altered; only read when it is as loaded.
    pub fn apply_firewall(&self) -> Result<(), CharmError> {
        let (bridge, address) = self.bridge().map_err(firewall_context)?;
        let bridge = InterfaceName::new(&bridge)
            .map_err(|e| CharmError::Blocked(format!("firewall: {e}")))?;
        let spec = FirewallSpec::new(bridge, address, self.config.denylist.clone());
        let record = LoadRecord::at(&self.paths);
        crate::firewall::ensure(&Nft::new(&SystemCommands), &spec, &record)
            .map(drop)
            .map_err(super::install::firewall_failed)
    }

    /// One reconcile of the configured path to `runners`, after a step of draining the
    /// path runners were registered to before, if a path change left one.
    pub fn reconcile(&self, runners: u32, flush: Flush) -> Result<Reconciled, CharmError> {
        // The lock, the summary and the firewall's record go there: private first.
        ensure_private_dir(&self.paths.state_dir()).map_err(|e| CharmError::Internal(e.into()))?;
        let _lock = self.lock()?;
        // No runner starts without the table as rendered: a reboot drops it, a job that
        // got out or an operator may have flushed a chain. Reloading is atomic and cheap.
        if runners > 0 {
            self.apply_firewall()?;
        }
        let keep = self.drain_old_path(flush)?;
        self.reconcile_locked(&self.config.path.clone(), runners, flush, &keep)
    }

    /// After a path change the old path's runners leave over as many reconciles as their
    /// jobs take: idle ones at once, busy ones when their job is done. Kept in a file
    /// until then, so every later reconcile (the timer's, an action's) goes on with it.
    pub fn leave_path(&self, old: &GithubPath) -> Result<(), CharmError> {
        ensure_private_dir(&self.paths.state_dir())
            .and_then(|()| {
                fs_state::write_atomic(
                    &self.paths.draining_path_file(),
                    old.to_string().as_bytes(),
                    0o600,
                )
            })
            .map_err(|e| CharmError::Internal(e.into()))
    }

    /// One step of leaving the old path: removes its idle runners (all of them when
    /// flushing everything) and returns the busy ones, which the configured path's
    /// reconcile must leave alone. Done once none is left, or the path came back.
    fn drain_old_path(&self, flush: Flush) -> Result<HashSet<RunnerName>, CharmError> {
        let file = self.paths.draining_path_file();
        let Ok(old) = std::fs::read_to_string(&file) else {
            return Ok(HashSet::new());
        };
        let old = old.trim();
        let busy = if old == self.config.path.to_string() {
            HashSet::new()
        } else {
            // Only listed and deleted there: the runner group plays no part.
            let old = GithubPath::parse(old, "default")
                .map_err(|e| CharmError::Internal(anyhow::anyhow!("{}: {e}", file.display())))?;
            log::info!("leaving {old}: removing its idle runners, busy ones finish their job");
            let flush = if flush == Flush::All {
                Flush::All
            } else {
                Flush::Idle
            };
            self.flush_path(&old, flush)?
        };
        if busy.is_empty() {
            let _ = std::fs::remove_file(&file);
        }
        Ok(busy)
    }

    /// Removes the runners registered to `path` (idle ones, or all with `Flush::All`)
    /// and returns the ones still registered there. Only that path's runners are looked
    /// at: the configured path's instances have no registration there and are not dead.
    fn flush_path(
        &self,
        path: &GithubPath,
        flush: Flush,
    ) -> Result<HashSet<RunnerName>, CharmError> {
        let registry = self.registry(path)?;
        let registered = |registry: &GithubRegistry| -> Result<HashSet<RunnerName>, CharmError> {
            Ok(registry
                .list()
                .map_err(port)?
                .into_iter()
                .filter(|r| self.prefix.owns(r.name.as_str()))
                .map(|r| r.name)
                .collect())
        };
        let leaving = registered(&registry)?;
        let others: HashSet<RunnerName> = self
            .runtime
            .block_on(list_own(&self.lxd, &self.prefix))
            .map_err(port)?
            .into_iter()
            .map(|i| i.name)
            .filter(|name| !leaving.contains(name))
            .collect();
        self.reconcile_locked(path, 0, flush, &others)?;
        registered(&registry)
    }

    fn reconcile_locked(
        &self,
        path: &GithubPath,
        runners: u32,
        flush: Flush,
        keep: &HashSet<RunnerName>,
    ) -> Result<Reconciled, CharmError> {
        let registry = self.registry(path)?;
        if runners > 0 && AppCache::new(self.paths.app_dir()).tarball().is_none() {
            self.update_app(true)?;
        }
        let size = pool::pool_size(self.config.vm_disk, self.config.virtual_machines);
        self.runtime
            .block_on(pool::ensure(
                &self.lxd,
                &self.pool_name(),
                &self.paths.pool_dir(),
                size,
            ))
            .map_err(|e| CharmError::Transient(e.to_string()))?;
        let layout = self.layout()?;
        if runners > 0 {
            self.check_image(&layout)?;
            self.runtime
                .block_on(ensure_profiles(&self.lxd, &layout.own_profiles))
                .map_err(port)?;
        }
        let host = self.host(&registry, runners, layout)?;
        // The runners' pre-job checks need the policy service: looked at (and restarted
        // when dead) right before the engine runs, so new runners meet a live one; not
        // when no runner is wanted.
        let policy = LocalCheck::new(&self.paths, &policy_service::local_url());
        let before = (runners > 0).then(|| policy.check().before_reconcile());
        let desired = Desired {
            runners,
            grace_secs: test_seconds(TEST_GRACE).map_or(GRACE_SECS, |d| d.as_secs()),
            max_idle_secs: policy_service::tokens::MAX_IDLE_AGE.as_secs(),
            flush,
            keep: keep.clone(),
        };
        let report = self
            .runtime
            .block_on(reconcile::reconcile(
                host,
                registry,
                &self.prefix,
                &desired,
                DEFAULT_PARALLELISM,
            ))
            .map_err(port)?;
        // Only now is the room of the removed runners free; a failure leaves the pool
        // larger than wanted, which harms nothing until a later reconcile shrinks it.
        if let Err(e) = pool::shrink(&self.paths.pool_dir(), size) {
            log::warn!("{e}");
        }
        let rate_limit = self
            .github
            .last_rate_limit()
            .map_or_else(|| "not reported".to_string(), |l| l.to_string());
        log::info!(
            "reconcile: created {}, removed {}, failed {}, {} idle, {} busy in {:.1}s; \
             GitHub rate limit: {rate_limit}",
            report.created.len(),
            report.removed_total(),
            report.failed.len(),
            report.idle,
            report.busy,
            report.duration.as_secs_f64()
        );
        let health = before.map(|checked| match checked {
            Checked::Done(health) => health,
            // The engine has just listed runners on GitHub with the service's token.
            Checked::AskAfterReconcile => policy.check().after_github_answered(),
        });
        let summary =
            Summary::from_report(&report).with_policy_problem(health.and_then(|h| h.problem()));
        summary.save(&self.paths);
        Ok(Reconciled { report, summary })
    }

    /// A local image alias that is missing blocks: every creation would fail on it, and
    /// only the operator can import it or change `runner-image`.
    fn check_image(&self, layout: &InstanceLayout) -> Result<(), CharmError> {
        if layout.source.server.is_some() {
            return Ok(());
        }
        let alias = &layout.source.alias;
        match self.runtime.block_on(self.lxd.get_image_alias(alias)) {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Err(CharmError::Blocked(format!(
                "runner-image {alias:?}: no such image alias in LXD; import the image \
                 under that alias or change runner-image"
            ))),
            Err(e) => Err(CharmError::Transient(format!("LXD: {e}"))),
        }
    }

    /// One reconcile of the configured path to `virtual-machines` runners.
    pub fn reconcile_current(&self, flush: Flush) -> Result<Reconciled, CharmError> {
        self.reconcile(self.config.virtual_machines, flush)
    }

    /// What GitHub and LXD hold for this unit, without changing anything.
    pub fn check(&self) -> Result<Observed, CharmError> {
        let registry = self.registry(&self.config.path)?;
        let host = self.listing_host();
        self.runtime
            .block_on(reconcile::observe(&host, registry, &self.prefix))
            .map_err(port)
    }
}
