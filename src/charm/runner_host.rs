//! The runner hosts a reconcile drives, built from the config: the LXD host that makes
//! runners (instance layout, the payload every runner gets: runner application, start
//! script, aproxy; the files each gets of its own: pre-job script with a one-time policy
//! token bound to its name, environment; the token revoked when a reconcile removes the
//! runner), and a host that only lists, for `check-runners`.

use std::sync::Arc;
use std::time::Duration;

use super::install::APROXY_FILE;
use super::outcome::Cause;
use super::runners::Runners;
use super::CharmError;
use crate::host::runner_env::RunnerEnv;
use crate::runner::app::AppCache;
use crate::runner::files::{self, StartParams};
use crate::runner::journal::Journal;
use crate::runner::layout::InstanceLayout;
use crate::runner::lxd_host::{list_own, LxdRunnerHost, PerRunnerFiles, RevokeFn, RunnerPayload};
use crate::runner::registry::GithubRegistry;
use crate::runner::units::Aproxy;
use crate::runner::{RunnerName, RunnerPrefix};
use policy_service::client::PolicyClient;
use policy_service::prejob::render_pre_job;
use reconcile::plan::ObservedInstance;
use reconcile::ports::{Credential, PortError, PortResult, RunnerHost};

const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a removal waits for the policy service to revoke a token: a hung service
/// must not hold the reconcile (the token expires anyway).
const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

impl Runners<'_> {
    /// The host that makes runners; `runners` is how many are wanted.
    pub(super) fn host(
        &self,
        registry: &GithubRegistry,
        runners: u32,
        layout: InstanceLayout,
    ) -> Result<Arc<LxdRunnerHost>, CharmError> {
        let app = match AppCache::new(self.paths().app_dir()).tarball() {
            Some(tarball) => std::fs::read(&tarball).map_err(|e| CharmError::Internal(e.into()))?,
            // A unit that never made a runner can still empty its pool (a flush, stop,
            // `virtual-machines=0`): nothing will be pushed.
            None if runners == 0 => Vec::new(),
            None => {
                return Err(CharmError::transient(
                    "runner application not downloaded yet",
                ))
            }
        };
        let web = self.config.github_url.web().to_string();
        let path = registry.path.clone();
        let labels = registry.labels.clone();
        let start_script = move |name: &RunnerName| {
            files::render_start_script(&StartParams {
                github_web_url: &web,
                path: &path,
                name,
                labels: &labels,
            })
        };
        Ok(Arc::new(LxdRunnerHost {
            client: self.deps.lxd.clone(),
            prefix: self.prefix.clone(),
            layout,
            payload: RunnerPayload {
                app: app.into(),
                start_script: Box::new(start_script),
                per_runner: self.per_runner_files()?,
                revoke: self.revoke_token()?,
                aproxy: self.aproxy()?,
            },
            ready_timeout: READY_TIMEOUT,
            journal: Journal {
                dir: self.paths().state_dir().join("provisioning"),
            },
            clock: self.deps.clock.clone(),
        }))
    }

    /// aproxy for the runners, if asked for: its own small binary, packed beside the
    /// charm's.
    fn aproxy(&self) -> Result<Option<Aproxy>, CharmError> {
        let binary = self.env.charm_dir.join(APROXY_FILE);
        Aproxy::from_config(self.config.use_aproxy, &self.env.proxy, || {
            std::fs::read(&binary)
        })
        .map_err(|e| CharmError::blocked(Cause::of(e)))
    }

    /// Each runner gets its own files: the pre-job script with a one-time token for the
    /// policy service (reached on the bridge's host address), and its environment
    /// (proxies with its own name left out, the Docker Hub mirror).
    fn per_runner_files(&self) -> Result<PerRunnerFiles, CharmError> {
        let (_, bridge) = self.bridge()?;
        let port = self.site.policy_port();
        let client = PolicyClient::new(&policy_service::local_url(port), self.charm_token()?);
        let policy_url = policy_service::url(bridge, port);
        // With aproxy the runner's traffic is proxied without it knowing.
        let proxy = if self.config.use_aproxy {
            ghr_types::proxy::ProxyConfig::default()
        } else {
            self.env.proxy.clone()
        };
        let mirror = self.config.dockerhub_mirror.clone();
        Ok(Box::new(move |name: &RunnerName| {
            let env = RunnerEnv {
                proxy: &proxy,
                runner_name: name.as_str(),
                dockerhub_mirror: mirror.as_deref(),
                job_started_hook: files::PRE_JOB_SCRIPT,
            };
            let mut out = files::env_files(&env)
                .map_err(|e| PortError::needs_operator(e.to_string()).with_source(e))?;
            let one_time = client
                .one_time_token(name.as_str())
                .map_err(|e| PortError::transient_from(e).context("policy service"))?;
            out.push(files::pre_job_file(render_pre_job(
                &policy_url,
                one_time.expose(),
                name.as_str(),
            )));
            Ok(out)
        }))
    }

    /// The charm's token for the policy service, as `install` left it.
    fn charm_token(&self) -> Result<crate::config::Token, CharmError> {
        let token = std::fs::read_to_string(self.paths().charm_token()).map_err(|e| {
            CharmError::transient(Cause::of(e).context("policy service charm token not there yet"))
        })?;
        Ok(crate::config::Token::new(token.trim()))
    }

    /// Revokes a removed runner's one-time token at the policy service.
    fn revoke_token(&self) -> Result<RevokeFn, CharmError> {
        let client = PolicyClient::with_timeout(
            &policy_service::local_url(self.site.policy_port()),
            self.charm_token()?,
            REVOKE_TIMEOUT,
        );
        Ok(Box::new(move |name: &RunnerName| {
            client
                .revoke_one_time_token(name.as_str())
                .map_err(|e| PortError::transient_from(e).context("policy service"))
        }))
    }

    /// The host `check-runners` observes through.
    pub(super) fn listing_host(&self) -> LxdListOnly {
        LxdListOnly {
            client: self.deps.lxd.clone(),
            prefix: self.prefix.clone(),
            clock: self.deps.clock.clone(),
        }
    }
}

/// A [`RunnerHost`] that can only list: `check-runners` needs no tarball or payload.
pub(super) struct LxdListOnly {
    client: lxd_client::LxdClient,
    prefix: RunnerPrefix,
    clock: Arc<dyn ghr_types::clock::Clock>,
}

impl RunnerHost for LxdListOnly {
    async fn list(&self) -> PortResult<Vec<ObservedInstance>> {
        list_own(&self.client, &self.prefix, self.clock.as_ref()).await
    }
    async fn provision(&self, _: &RunnerName, _: &Credential) -> PortResult<()> {
        Err(PortError::transient("listing only"))
    }
    async fn delete(&self, _: &RunnerName) -> PortResult<()> {
        Err(PortError::transient("listing only"))
    }
}
