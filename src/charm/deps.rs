//! What handlers and the runner manager act through, built once at the edge and handed
//! down ([`Deps`]): host commands, the clock, the host paths, the LXD client, a GitHub
//! client factory and the waits of a hook ([`Limits`]); the environment variables that
//! change them are read in one place ([`Knobs`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::manager_link::{ManagerLink, SocketLink};
use super::outcome::Cause;
use super::CharmError;
use crate::config::CharmConfig;
use crate::host::machine::{Machine, MachineError};
use crate::host::packages::LockWait;
use crate::host::site::UnitSite;
use crate::host::{Clock, Commands, HostPaths, SystemClock, SystemCommands};
use crate::runner::RunnerPrefix;
use ghr_types::proxy::ProxyConfig;
use github_client::{ClientOptions, GithubClient, GithubError};
use lxd_client::LxdClient;

/// How long a reconcile waits for another one's lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// A new instance may take this long to register and come online.
const GRACE: Duration = Duration::from_secs(300);

/// The environment variables that change where the charm acts and how long it waits,
/// read once at the edge. Only tests set them, except `LXD_DIR`, which picks the LXD
/// daemon as it does for `lxc`. Unset, empty or unreadable ones keep the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// `GITHUB_RUNNER_ROOT`: every host file relocated under it (default `/`).
    pub root: Option<PathBuf>,
    /// `LXD_DIR`: the daemon's directory (default: the snap's if present, else Debian's).
    pub lxd_dir: Option<PathBuf>,
    /// `GITHUB_RUNNER_APT_LOCK_WAIT` (seconds): the apt lock's deadline (default 300 s).
    pub apt_lock_wait: Option<Duration>,
    /// `GITHUB_RUNNER_TEST_GITHUB_TIMEOUT` (seconds): the GitHub client's request timeout.
    pub github_timeout: Option<Duration>,
    /// `GITHUB_RUNNER_TEST_LOCK_WAIT` (seconds): the reconcile lock's wait.
    pub lock_wait: Option<Duration>,
    /// `GITHUB_RUNNER_TEST_GRACE` (seconds): a new instance's grace.
    pub grace: Option<Duration>,
    /// `GITHUB_RUNNER_TEST_METRICS_PORT`: the manager's metrics port instead of the
    /// unit's (0: any free one), so tests' units on one machine do not collide.
    pub metrics_port: Option<u16>,
}

impl Knobs {
    /// The knobs as `var` answers for each variable's name.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let path = |name| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let seconds = |name| {
            let secs: u64 = var(name)?.trim().parse().ok()?;
            Some(Duration::from_secs(secs))
        };
        Knobs {
            root: path("GITHUB_RUNNER_ROOT"),
            lxd_dir: path("LXD_DIR"),
            apt_lock_wait: seconds("GITHUB_RUNNER_APT_LOCK_WAIT"),
            github_timeout: seconds("GITHUB_RUNNER_TEST_GITHUB_TIMEOUT"),
            lock_wait: seconds("GITHUB_RUNNER_TEST_LOCK_WAIT"),
            grace: seconds("GITHUB_RUNNER_TEST_GRACE"),
            metrics_port: var("GITHUB_RUNNER_TEST_METRICS_PORT")
                .and_then(|v| v.trim().parse().ok()),
        }
    }

    /// The knobs of this process.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The waits of a hook: the production values unless [`Knobs`] shortened them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a reconcile waits for the lock another one holds.
    pub lock_wait: Duration,
    /// How long a new instance may take to register and come online.
    pub grace: Duration,
    /// How long apt waits for a package lock someone else holds.
    pub apt_lock: LockWait,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            lock_wait: LOCK_WAIT,
            grace: GRACE,
            apt_lock: LockWait::default(),
        }
    }
}

impl Limits {
    pub fn from_knobs(knobs: &Knobs) -> Self {
        let default = Limits::default();
        Limits {
            lock_wait: knobs.lock_wait.unwrap_or(default.lock_wait),
            grace: knobs.grace.unwrap_or(default.grace),
            apt_lock: LockWait {
                deadline: knobs.apt_lock_wait.unwrap_or(default.apt_lock.deadline),
                ..default.apt_lock
            },
        }
    }
}

/// Makes the GitHub client a hook talks through: where a test picks the server and the
/// transport's limits.
pub trait GithubClients {
    /// A client for the configured GitHub, with the configured credential, through
    /// `proxy`; an App's installation tokens are kept in `app_tokens`.
    fn client(
        &self,
        config: &CharmConfig,
        proxy: &ProxyConfig,
        app_tokens: &Path,
    ) -> Result<GithubClient, GithubError>;
}

/// The real factory: the configured GitHub with the client's own limits, the request
/// timeout shortened when a test asked for it.
#[derive(Clone, Debug, Default)]
pub struct HttpGithub {
    pub request_timeout: Option<Duration>,
}

impl GithubClients for HttpGithub {
    fn client(
        &self,
        config: &CharmConfig,
        proxy: &ProxyConfig,
        app_tokens: &Path,
    ) -> Result<GithubClient, GithubError> {
        let mut options = ClientOptions::default();
        if let Some(timeout) = self.request_timeout {
            options.request_timeout = timeout;
            options.connect_timeout = options.connect_timeout.min(timeout);
        }
        GithubClient::with_credential(
            &config.github_url.api_base(),
            config.auth.credential(Some(app_tokens.to_path_buf())),
            proxy,
            options,
        )
    }
}

/// A machine with no slot left, or two units sharing a name, need the operator.
fn site_error(e: MachineError) -> CharmError {
    match e {
        MachineError::Full | MachineError::KeyClash(..) => CharmError::blocked(Cause::of(e)),
        e => CharmError::transient(Cause::of(e)),
    }
}

/// Everything a handler acts through, built once per hook.
pub struct Deps<'a> {
    /// Every host program runs through it.
    pub commands: &'a dyn Commands,
    /// Waits, deadlines, the time written into state files and runner ages; shared
    /// with the runner host the engine drives on its own tasks.
    pub clock: Arc<dyn Clock>,
    pub github: &'a dyn GithubClients,
    /// Every host file the charm reads or writes; the unit's own are named after it.
    pub paths: HostPaths,
    /// The unit (`app/N`).
    pub unit: String,
    /// The unit's place among the charm's units on this machine: taken from the
    /// machine registry when first asked for ([`Deps::site`]), so that a hook refused
    /// for bad input writes nothing.
    site: std::sync::OnceLock<UnitSite>,
    pub lxd: LxdClient,
    pub limits: Limits,
    /// How hooks reach the unit's runner manager.
    pub manager: &'a dyn ManagerLink,
}

impl<'a> Deps<'a> {
    /// The real machine, as `knobs` place it, for `unit`.
    pub fn on_this_host(knobs: &Knobs, github: &'a dyn GithubClients, unit: &str) -> Self {
        let paths = HostPaths::for_unit(knobs.root.clone().unwrap_or_else(|| "/".into()), unit);
        Deps {
            commands: &SystemCommands,
            clock: Arc::new(SystemClock),
            github,
            paths,
            unit: unit.to_string(),
            site: std::sync::OnceLock::new(),
            lxd: LxdClient::new(lxd_client::socket_for(knobs.lxd_dir.clone(), Path::exists)),
            limits: Limits::from_knobs(knobs),
            manager: &SocketLink,
        }
    }

    /// The unit's site, registered in the machine's registry on the first call (its
    /// slot is taken on its first hook that acts).
    /// A GitHub client on `config`'s credential; an App's installation token is shared
    /// through the unit's cache file.
    pub fn github_client(
        &self,
        config: &CharmConfig,
        proxy: &ProxyConfig,
    ) -> Result<GithubClient, GithubError> {
        self.github
            .client(config, proxy, &self.paths.app_token_cache())
    }

    pub fn site(&self) -> Result<&UnitSite, CharmError> {
        if let Some(site) = self.site.get() {
            return Ok(site);
        }
        let owner = self.paths.legacy_layout_present() && self.owns_legacy_pool()?;
        let site = self
            .machine()
            .register(&self.unit, owner)
            .map_err(site_error)?;
        Ok(self.site.get_or_init(|| site))
    }

    /// Whether this unit made the single-unit layout: LXD holds its storage pool on
    /// that layout's pool directory (no other unit's pool can be there: LXD refused a
    /// second one). Its timer is no proof: every unit writes one at install.
    fn owns_legacy_pool(&self) -> Result<bool, CharmError> {
        let name = format!("{}pool", RunnerPrefix::from_unit(&self.unit).as_str());
        let old_dir = self.paths.legacy().pool_dir().display().to_string();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CharmError::Internal(e.into()))?;
        match runtime.block_on(self.lxd.get_storage_pool(&name)) {
            Ok(pool) => Ok(pool.config.get("source") == Some(&old_dir)),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(CharmError::transient(
                Cause::of(e).context("looking for the single-unit layout's pool"),
            )),
        }
    }

    /// Whether the unit has its site (this hook registered it or found it).
    pub fn registered(&self) -> bool {
        self.site.get().is_some()
    }

    /// The machine's registry, as this unit reaches it.
    pub fn machine(&self) -> Machine<'_> {
        Machine {
            paths: &self.paths,
            wait: self.limits.lock_wait,
        }
    }
}

#[cfg(test)]
impl<'a> Deps<'a> {
    /// Stand-ins for tests: unit `github-runner/0` (slot 0), every host path under
    /// `root`, an LXD socket there that nothing serves, the production limits.
    pub fn stand_in(
        commands: &'a dyn Commands,
        clock: Arc<dyn Clock>,
        github: &'a dyn GithubClients,
        root: &Path,
    ) -> Self {
        Deps {
            commands,
            clock,
            github,
            paths: HostPaths::for_unit(root, "github-runner/0"),
            unit: "github-runner/0".into(),
            site: std::sync::OnceLock::from(UnitSite::new("github-runner/0", 0, false)),
            lxd: LxdClient::new(root.join("lxd/unix.socket")),
            limits: Limits::default(),
            manager: &super::manager_link::InProcess,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn knobs(vars: &[(&str, &str)]) -> Knobs {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Knobs::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn registering_takes_a_slot_in_the_root_the_knob_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let k = knobs(&[("GITHUB_RUNNER_ROOT", &root)]);
        let github = HttpGithub::default();
        let first = Deps::on_this_host(&k, &github, "app/0");
        let second = Deps::on_this_host(&k, &github, "app/1");
        assert!(
            !first.paths.machine_registry().exists(),
            "nothing written before a site is asked for"
        );
        assert_eq!(
            (second.site().unwrap().slot, first.site().unwrap().slot),
            (0, 1)
        );
        assert!(first.paths.machine_registry().starts_with(dir.path()));
    }

    #[test]
    fn no_knob_means_the_real_host_and_the_production_waits() {
        let github = HttpGithub::default();
        let deps = Deps::on_this_host(&knobs(&[]), &github, "app/3");
        assert_eq!(deps.paths, HostPaths::for_unit("/", "app/3"));
        assert_eq!(deps.limits, Limits::default());
        assert_eq!(deps.limits.lock_wait, Duration::from_secs(60));
        assert_eq!(deps.limits.grace, Duration::from_secs(300));
        assert_eq!(deps.limits.apt_lock.deadline, Duration::from_secs(300));
        assert!(deps.lxd.socket().ends_with("unix.socket"));
    }

    #[test]
    fn each_knob_lands_in_its_typed_value() {
        let k = knobs(&[
            ("GITHUB_RUNNER_ROOT", "/tmp/unit-root"),
            ("LXD_DIR", "/tmp/lxd-test"),
            ("GITHUB_RUNNER_APT_LOCK_WAIT", "3"),
            ("GITHUB_RUNNER_TEST_GITHUB_TIMEOUT", " 4 "),
            ("GITHUB_RUNNER_TEST_LOCK_WAIT", "0"),
            ("GITHUB_RUNNER_TEST_GRACE", "7"),
        ]);
        assert_eq!(k.github_timeout, Some(Duration::from_secs(4)));
        let github = HttpGithub {
            request_timeout: k.github_timeout,
        };
        let deps = Deps::on_this_host(&k, &github, "app/3");
        assert_eq!(deps.paths, HostPaths::for_unit("/tmp/unit-root", "app/3"));
        assert_eq!(deps.lxd.socket(), Path::new("/tmp/lxd-test/unix.socket"));
        assert_eq!(deps.limits.lock_wait, Duration::ZERO);
        assert_eq!(deps.limits.grace, Duration::from_secs(7));
        assert_eq!(deps.limits.apt_lock.deadline, Duration::from_secs(3));
        // Only the deadline: the apt lock is still polled with the usual backoff.
        assert_eq!(
            deps.limits.apt_lock.first_delay,
            LockWait::default().first_delay
        );
    }

    #[test]
    fn empty_or_unreadable_knobs_keep_the_defaults() {
        let k = knobs(&[
            ("GITHUB_RUNNER_ROOT", ""),
            ("LXD_DIR", ""),
            ("GITHUB_RUNNER_APT_LOCK_WAIT", "soon"),
            ("GITHUB_RUNNER_TEST_LOCK_WAIT", "-1"),
        ]);
        assert_eq!(k, Knobs::default());
        assert_eq!(Limits::from_knobs(&k), Limits::default());
    }
}
