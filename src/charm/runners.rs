//! Runner operations as the handlers use them, on the dependencies handed in ([`Deps`]):
//! hold the reconcile lock, keep the storage pool and runner application ready, run one
//! reconcile in its three steps (`reconcile_steps`) on the hosts `runner_host` builds,
//! and remember the result for `update-status`.

use std::sync::Arc;

use super::deps::Deps;
use super::neighbours::Neighbours;
use super::outcome::Cause;
use super::reconcile_steps::{record, Wanted};
pub use super::summary::{OnDemand, Summary};
use super::{CharmError, HookEnv};
use crate::config::{CharmConfig, GithubPath};
use crate::firewall::{FirewallSpec, InterfaceName, LoadRecord, Nft};
use crate::host::machine::Admission;
use crate::host::site::UnitSite;
use crate::runner::app::{AppCache, AppUpdate};
use crate::runner::files;
use crate::runner::registry::{app_port_error, GithubAppSource, GithubRegistry, ScaleSetLink};
use crate::runner::RunnerPrefix;
use fs_state::ensure_private_dir;
use github_client::GithubClient;
use reconcile::execute::Report;
use reconcile::lock::ReconcileLock;
use reconcile::plan::{Flush, Observed};
use reconcile::ports::PortError;

pub use crate::host::HostPaths as Paths;

/// Why a unit makes no runner while an earlier version's layout is on the machine.
const LEGACY_ELSEWHERE: &str = "the single-unit layout of an earlier github-runner version \
    is on this machine, and its firewall admits only its own policy port: refresh that \
    application first (README: several pools on one machine)";

/// Says that a failure to learn the runners' bridge stops the firewall.
fn firewall_context(e: CharmError) -> CharmError {
    e.context("firewall")
}

pub(super) fn port(e: PortError) -> CharmError {
    CharmError::Runner(e)
}

/// What a reconcile did, and the summary the status shows (its counts and the policy
/// service's health).
pub struct Reconciled {
    pub report: Report,
    pub summary: Summary,
    /// What the machine's memory admitted, and would hold.
    pub admission: Admission,
}

/// Everything a runner operation needs, made once per hook from the config, the hook's
/// environment and the dependencies handed in.
pub struct Runners<'d> {
    pub config: CharmConfig,
    pub env: HookEnv,
    pub deps: &'d Deps<'d>,
    pub prefix: RunnerPrefix,
    /// The unit's place on the machine (policy port, runner MACs, table).
    pub site: UnitSite,
    pub github: GithubClient,
    /// On demand: the unit's scale set, where new runners register.
    pub scale_set: Option<ScaleSetLink>,
    /// On demand: what the summary says of the demand.
    pub on_demand: Option<OnDemand>,
    /// The engine's last report, kept even when the reconcile then fails on a cause
    /// only the operator can fix: what it did still happened (the manager's metrics).
    pub engine_report: std::cell::RefCell<Option<reconcile::execute::Report>>,
    pub(super) runtime: tokio::runtime::Runtime,
}

impl<'d> Runners<'d> {
    pub fn new(config: CharmConfig, env: HookEnv, deps: &'d Deps<'d>) -> Result<Self, CharmError> {
        let github = deps
            .github_client(&config, &env.proxy)
            .map_err(|e| CharmError::blocked(Cause::of(e)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| CharmError::Internal(e.into()))?;
        let site = deps.site()?;
        Ok(Runners {
            engine_report: Default::default(),
            prefix: RunnerPrefix::from_unit(&env.unit_name),
            site: site.clone(),
            deps,
            github,
            scale_set: None,
            on_demand: None,
            config,
            env,
            runtime,
        })
    }

    /// Where the host's files are.
    pub fn paths(&self) -> &Paths {
        &self.deps.paths
    }

    fn lock(&self) -> Result<ReconcileLock, CharmError> {
        let wait = self.deps.limits.lock_wait;
        ReconcileLock::acquire(&self.paths().lock_file(), wait).map_err(CharmError::from)
    }

    pub(super) fn pool_name(&self) -> String {
        format!("{}pool", self.prefix.as_str())
    }

    /// The tmpfs under the unit's storage pool: in its own directory, except for the
    /// unit that took over the single-unit layout, whose LXD pool names the old place.
    pub(super) fn pool_dir(&self) -> std::path::PathBuf {
        if self.site.legacy {
            self.paths().legacy().pool_dir()
        } else {
            self.paths().pool_dir()
        }
    }

    /// Refreshes the runner application (at most hourly unless `force`).
    pub fn update_app(&self, force: bool) -> Result<AppUpdate, CharmError> {
        let cache = AppCache::new(self.paths().app_dir());
        let source = GithubAppSource {
            client: &self.github,
            path: &self.config.path,
        };
        cache
            .ensure(&source, self.deps.clock.unix_now(), force)
            .map_err(|e| port(app_port_error(e)))
    }

    pub(super) fn registry(&self, path: &GithubPath) -> Result<Arc<GithubRegistry>, CharmError> {
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
        let mut registry = GithubRegistry::new(
            self.github.clone(),
            path.clone(),
            files::runner_labels(app, &image, &self.config.labels),
            self.paths().state_dir().join("runner-group.json"),
        )
        .map_err(port)?;
        // Only the configured path's new runners: an old path's are only removed.
        if *path == self.config.path {
            registry.scale_set = self.scale_set.clone();
        }
        Ok(Arc::new(registry))
    }

    /// Makes the kernel hold the firewall between the runners' bridge and everything
    /// else exactly as rendered from the current `denylist`: loaded (atomically) when
    /// it changed, is missing or was altered; only read when it is as loaded.
    pub fn apply_firewall(&self) -> Result<(), CharmError> {
        let (bridge, address) = self.bridge().map_err(firewall_context)?;
        let bridge = InterfaceName::new(&bridge)
            .map_err(|e| CharmError::blocked(Cause::of(e).context("firewall")))?;
        let denylist = self.config.denylist.clone();
        let spec = FirewallSpec::for_site(&self.site, bridge, address, denylist)
            .map_err(|e| CharmError::Internal(e.into()))?;
        let record = LoadRecord::at(self.paths());
        crate::firewall::ensure(&Nft::new(self.deps.commands), &spec, &record)
            .map(drop)
            .map_err(super::install::firewall_failed)
    }

    /// One reconcile of the configured path to `runners`, under the reconcile lock, in
    /// three steps: prepare (everything before the engine), the engine, and record.
    pub fn reconcile(&self, runners: u32, flush: Flush) -> Result<Reconciled, CharmError> {
        // The lock, the summary and the firewall's record go there: private first.
        ensure_private_dir(&self.paths().state_dir())
            .map_err(|e| CharmError::Internal(e.into()))?;
        let _lock = self.lock()?;
        // Before any claim: a unit that makes no runner holds no memory.
        if runners > 0 && !self.site.legacy && self.paths().legacy_layout_present() {
            return Err(CharmError::blocked(Cause::new(LEGACY_ELSEWHERE)));
        }
        let admission = self.admit(runners)?;
        let runners = admission.admitted;
        let prepared = self.prepare(Wanted { runners, flush })?;
        let ran = self.engine(prepared)?;
        let now = self.deps.clock.unix_now();
        let done = record(ran, admission, self.on_demand, self.paths(), now)?;
        let machine = self.deps.machine();
        if let Err(e) = machine.record_busy(&self.env.unit_name, done.report.busy, now) {
            log::warn!("{e}");
        }
        Ok(done)
    }

    /// Busy runners on the whole machine (this unit's `own` and every other unit's last
    /// report), or None while another unit's is unknown ([`Neighbours::busy`]).
    pub fn machine_busy(&self, own: u32) -> Option<u32> {
        // An earlier version's application reports to no registry.
        if !self.site.legacy && self.paths().legacy_layout_present() {
            return None;
        }
        match Neighbours::look(self.deps) {
            Ok(others) => others
                .busy(self.deps.clock.unix_now())
                .map(|o| o.saturating_add(own)),
            Err(e) => {
                log::warn!("{e}");
                None
            }
        }
    }

    /// As many of `runners` as the machine's memory holds beside the other units'
    /// claims (each runner's memory and its RAM-backed disk), claimed for this unit.
    fn admit(&self, runners: u32) -> Result<Admission, CharmError> {
        let (memory, disk) = (self.config.vm_memory, self.config.vm_disk);
        let admission = self
            .deps
            .machine()
            .admit(&self.env.unit_name, runners, memory, disk)
            .map_err(|e| CharmError::transient(Cause::of(e)))?;
        if admission.capped() {
            log::warn!(
                "host capacity: memory holds {} of the {} runners wanted",
                admission.admitted,
                admission.wanted
            );
        }
        Ok(admission)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::charm::deps::GithubClients;
    use crate::host::fakes::{FakeClock, FakeCommands};
    use crate::host::Clock;
    use crate::proxy::ProxyConfig;
    use crate::runner::app::{host_architecture, CHECK_EVERY_SECS};
    use github_client::{ClientOptions, GithubError, RetryPolicy};

    const TOKEN: &str = "ghp_runnersSeamToken0123456789";
    const T0: u64 = 1_714_564_800;

    /// The factory's seam: clients that try once, so a GitHub that is gone fails at once.
    struct OneTry;

    impl GithubClients for OneTry {
        fn client(
            &self,
            config: &CharmConfig,
            proxy: &ProxyConfig,
            app_tokens: &std::path::Path,
        ) -> Result<GithubClient, GithubError> {
            let options = ClientOptions {
                retry: RetryPolicy {
                    max_attempts: 1,
                    ..RetryPolicy::default()
                },
                ..ClientOptions::default()
            };
            let api = config.github_url.api_base();
            let credential = config.auth.credential(Some(app_tokens.to_path_buf()));
            GithubClient::with_credential(&api, credential, proxy, options)
        }
    }

    #[test]
    fn the_runner_app_is_checked_at_most_hourly_by_the_clock_handed_in() {
        let mut sim = github_sim::SimConfig::new(TOKEN);
        sim.orgs = vec!["acme".into()];
        let server = github_sim::SimServer::start(sim, "127.0.0.1:0".parse().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (commands, clock) = (FakeCommands::new(), Arc::new(FakeClock::at(T0)));
        let deps = Deps::stand_in(&commands, clock.clone(), &OneTry, dir.path());
        let config = CharmConfig::from_json(&json!({
            "path": "acme", "token": TOKEN, "github-url": server.url, "test-mode": "insecure"
        }))
        .unwrap();
        let env = HookEnv {
            unit_name: "github-runner/0".into(),
            ..HookEnv::default()
        };
        let runners = Runners::new(config, env, &deps).unwrap();

        let want = server.sim.tarball.filename(host_architecture());
        let updated = runners.update_app(false).unwrap();
        assert!(
            matches!(&updated, AppUpdate::Updated { new, .. } if *new == want),
            "{updated:?}"
        );
        let cache = AppCache::new(deps.paths.app_dir());
        assert_eq!(cache.current().unwrap().checked_at, T0, "the clock's time");

        // GitHub gone: only a check the clock says is not due yet can pass.
        drop(server);
        clock.sleep(Duration::from_secs(CHECK_EVERY_SECS - 1));
        assert_eq!(runners.update_app(false).unwrap(), AppUpdate::Unchanged);
        clock.sleep(Duration::from_secs(1));
        let err = runners.update_app(false).unwrap_err();
        assert!(
            matches!(&err, CharmError::Runner(e) if !e.needs_operator_fix()),
            "{err:?}"
        );
        assert_eq!(cache.current().unwrap().checked_at, T0, "not checked since");
        assert_eq!(clock.unix_now(), T0 + CHECK_EVERY_SECS);
        assert!(
            commands.lines().is_empty(),
            "no host program for a download"
        );
    }
}
