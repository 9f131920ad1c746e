//! The LXD side of a runner: [`LxdRunnerHost`] implements the engine's [`RunnerHost`]:
//! launch a single-use instance, wait until it is up, put the runner in and start it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::files::{
    self, files_archive, start_command, InstanceFile, APP_TARBALL, FILES_ARCHIVE, START_SCRIPT,
};
use super::journal::Journal;
use super::layout::InstanceLayout;
use super::units::{self, Aproxy};
use crate::runner::{RunnerName, RunnerPrefix};
use ghr_types::clock::Clock;
use lxd_client::poll::{retry_until, Backoff};
use lxd_client::types::ImageSource;
use lxd_client::{Bytes, ExecSpec, FilePush, Instance, LxdClient, LxdError, Profile};
use reconcile::plan::ObservedInstance;
use reconcile::ports::{Credential, PortError, PortResult, RunnerHost};

/// Makes the files of one runner alone; may block.
pub type PerRunnerFiles = Box<dyn Fn(&RunnerName) -> PortResult<Vec<InstanceFile>> + Send + Sync>;

/// Revokes what one runner was handed (its one-time policy token); may block.
pub type RevokeFn = Box<dyn Fn(&RunnerName) -> PortResult<()> + Send + Sync>;

/// What every runner of one reconcile gets, prepared once.
pub struct RunnerPayload {
    /// The runner application tarball, one copy shared by every push.
    pub app: Bytes,
    /// Renders the start script for one runner.
    pub start_script: Box<dyn Fn(&RunnerName) -> String + Send + Sync>,
    /// Files made for one runner alone (the pre-job script with its one-time token).
    /// Blocking: it may ask the policy service.
    pub per_runner: PerRunnerFiles,
    /// Revokes a removed runner's one-time token. Blocking: it asks the policy service.
    pub revoke: RevokeFn,
    /// aproxy in every runner, when `experimental-use-aproxy` is on.
    pub aproxy: Option<Aproxy>,
}

pub struct LxdRunnerHost {
    pub client: LxdClient,
    pub prefix: RunnerPrefix,
    pub layout: InstanceLayout,
    pub payload: RunnerPayload,
    pub ready_timeout: Duration,
    /// Where a marker file per instance being made is kept (see [`Journal`]).
    pub journal: Journal,
    /// What instance ages are measured by.
    pub clock: Arc<dyn Clock>,
}

/// One creation at a time of containers with an isolated id map. LXD (5.0 measured)
/// picks a container's map from the maps the other containers hold, and one still being
/// created holds none yet: two created at once were given the same map, or one outside
/// root's range that fails to start. The rest of a launch stays parallel.
static ISOLATED_CREATES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a delete waits for an operation LXD is still running on the instance.
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// Any LXD failure but a missing image (see [`creation_error`]) may pass:
/// LXD restarting, an instance gone or not up yet.
pub fn lxd_error(e: LxdError) -> PortError {
    PortError::transient_from(e).context("LXD")
}

/// A local image alias LXD does not have: only the operator can import it or change
/// `runner-image`.
pub fn missing_image(alias: &str) -> PortError {
    PortError::needs_operator(format!(
        "runner-image {alias:?}: no such image alias in LXD; import the image under that \
         alias or change runner-image"
    ))
}

/// A failed creation from `image`. LXD answers one from a local image alias it does
/// not have with 404 (and makes nothing); nothing else a creation names can be missing:
/// our profiles and pool were made just before.
fn creation_error(image: &ImageSource, e: LxdError) -> PortError {
    if e.is_not_found() && image.server.is_none() {
        missing_image(&image.alias).with_source(e)
    } else {
        lxd_error(e)
    }
}

impl LxdRunnerHost {
    async fn exec_checked(&self, name: &RunnerName, command: &str, what: &str) -> PortResult<()> {
        let spec = ExecSpec::new(["/bin/sh", "-c", command])
            .timeout(Duration::from_secs(120))
            .output_on_failure_only();
        let out = self
            .client
            .exec(name.as_str(), &spec)
            .await
            .map_err(lxd_error)?;
        if out.success() {
            Ok(())
        } else {
            Err(PortError::transient(format!(
                "{what} in {name} exited {}: {}",
                out.exit_code,
                out.stderr_text().trim()
            )))
        }
    }

    /// Pushes `files` as soon as the instance takes them, polling with backoff until the
    /// ready timeout: the first pushes that work are also the readiness check.
    async fn push_when_ready(&self, name: &RunnerName, files: &[FilePush]) -> PortResult<()> {
        let deadline = tokio::time::Instant::now() + self.ready_timeout;
        let backoff = Backoff {
            first: Duration::from_millis(20),
            max: Duration::from_millis(500),
        };
        retry_until(deadline, backoff, || async {
            let pushes = files
                .iter()
                .map(|f| self.client.push_file(name.as_str(), f));
            let pushed = futures_util::future::try_join_all(pushes).await;
            if let Err(e) = &pushed {
                log::debug!("{name} does not take files yet: {e}");
            }
            pushed
        })
        .await
        .map(drop)
        .map_err(|e| {
            let timeout = self.ready_timeout;
            lxd_error(e).context(format!("instance {name} not ready after {timeout:?}"))
        })
    }

    /// What goes into the instance: the runner application on its own (it may be large:
    /// no second copy inside an archive) and one archive of everything else, so a runner
    /// costs two pushes and one exec however many files it has.
    fn runner_files(
        &self,
        name: &RunnerName,
        credential: &Credential,
    ) -> PortResult<[FilePush; 2]> {
        let app = FilePush {
            path: APP_TARBALL.into(),
            content: self.payload.app.clone(),
            uid: files::RUNNER_UID,
            gid: files::RUNNER_UID,
            mode: 0o644,
        };
        let start = InstanceFile {
            path: START_SCRIPT.into(),
            content: (self.payload.start_script)(name).into_bytes(),
            uid: 0,
            gid: 0,
            mode: 0o755,
        };
        let credential = files::credential_file(credential);
        let own = tokio::task::block_in_place(|| (self.payload.per_runner)(name))?;
        let aproxy = self.payload.aproxy.as_ref();
        let mut dirs = files::DIRECTORIES.to_vec();
        dirs.extend(units::unit_directories(aproxy).into_iter().map(|d| (d, 0)));
        let files: Vec<InstanceFile> = [start, credential]
            .into_iter()
            .chain(own)
            .chain(units::unit_files(aproxy))
            .collect();
        let archive = FilePush {
            path: FILES_ARCHIVE.into(),
            content: files_archive(&dirs, &files)?.into(),
            uid: 0,
            gid: 0,
            mode: 0o600,
        };
        Ok([app, archive])
    }

    /// Launch, put the runner in as soon as the instance takes files, unpack and start
    /// its units. (Writing into a container before its first boot was measured slower:
    /// the boots then all start at once.)
    async fn install(&self, name: &RunnerName, credential: &Credential) -> PortResult<()> {
        let spec = self.layout.spec(name);
        if self.layout.isolated_idmap() {
            let _one_at_a_time = ISOLATED_CREATES.lock().await;
            self.client.create_instance(&spec).await
        } else {
            self.client.create_instance(&spec).await
        }
        .map_err(|e| creation_error(&self.layout.source, e))?;
        self.client
            .start_instance(name.as_str())
            .await
            .map_err(lxd_error)?;
        let pushes = self.runner_files(name, credential)?;
        self.push_when_ready(name, &pushes).await?;
        let units = units::start_units(self.payload.aproxy.is_some());
        self.exec_checked(name, &start_command(&units), "starting the runner")
            .await
    }
}

/// Makes our profiles or brings them up to date; one that is as wanted costs a read.
pub async fn ensure_profiles(client: &LxdClient, profiles: &[Profile]) -> PortResult<()> {
    for wanted in profiles {
        match client.get_profile(&wanted.name).await {
            Ok(have) if have.config == wanted.config && have.devices == wanted.devices => {}
            Ok(_) => client.update_profile(wanted).await.map_err(lxd_error)?,
            Err(e) if e.is_not_found() => client.create_profile(wanted).await.map_err(lxd_error)?,
            Err(e) => return Err(lxd_error(e)),
        }
    }
    Ok(())
}

/// The instances `prefix` owns, with their age by `clock` (the grace and idle-age
/// decisions are taken in its time).
pub async fn list_own(
    client: &LxdClient,
    prefix: &RunnerPrefix,
    clock: &dyn Clock,
) -> PortResult<Vec<ObservedInstance>> {
    let instances = client.list_instances(false).await.map_err(lxd_error)?;
    Ok(own_instances(instances, prefix, clock.wall()))
}

/// The instances `prefix` owns among `instances`, with their age at `now`; one whose
/// creation time is unreadable (or in the future) counts as just made.
fn own_instances(
    instances: Vec<Instance>,
    prefix: &RunnerPrefix,
    now: SystemTime,
) -> Vec<ObservedInstance> {
    let now = DateTime::<Utc>::from(now);
    instances
        .into_iter()
        .filter(|i| prefix.owns(&i.name))
        .map(|i| {
            let created =
                DateTime::parse_from_rfc3339(&i.created_at).map(|t| t.with_timezone(&Utc));
            let age = created
                .map(|c| (now - c).num_seconds().max(0) as u64)
                .unwrap_or(0);
            ObservedInstance {
                running: i.is_running(),
                age_secs: age,
                name: RunnerName::new(i.name),
            }
        })
        .collect()
}

impl LxdRunnerHost {
    /// Deletes the instance; whether LXD no longer has it. A delete accepted during
    /// LXD's own "create" operation can leave the instance behind, and one refused as
    /// busy did nothing: both answer `false`.
    async fn remove_and_check(&self, name: &RunnerName) -> Result<bool, LxdError> {
        match self.client.remove_instance(name.as_str()).await {
            Ok(()) => match self.client.get_instance(name.as_str()).await {
                Err(e) if e.is_not_found() => Ok(true),
                Err(e) => Err(e),
                Ok(_) => Ok(false),
            },
            Err(e) if e.is_busy() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl RunnerHost for LxdRunnerHost {
    async fn list(&self) -> PortResult<Vec<ObservedInstance>> {
        let mut instances = list_own(&self.client, &self.prefix, self.clock.as_ref()).await?;
        self.journal.settle(&mut instances);
        Ok(instances)
    }

    async fn provision(&self, name: &RunnerName, credential: &Credential) -> PortResult<()> {
        let t0 = tokio::time::Instant::now();
        self.journal.begin(name)?;
        self.install(name, credential).await?;
        // Only a finished runner loses its marker; a failed one is deleted next.
        self.journal.end(name);
        log::info!("{name} provisioned in {:.2} s", t0.elapsed().as_secs_f64());
        Ok(())
    }

    async fn delete(&self, name: &RunnerName) -> PortResult<()> {
        // An instance whose maker died may still be in LXD's own "create" operation,
        // which LXD finishes without its client; deleting waits for it, bounded.
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        let backoff = Backoff {
            first: Duration::from_millis(200),
            max: Duration::from_secs(2),
        };
        // Retried while busy; any other LXD error ends the wait at once.
        let waited = retry_until(deadline, backoff, || async {
            match self.remove_and_check(name).await {
                Ok(true) => Ok(Ok(())),
                Ok(false) => {
                    log::info!("{name} is busy in LXD; waiting to delete it");
                    Err(())
                }
                Err(e) => Ok(Err(e)),
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(lxd_error(e)),
            Err(()) => {
                return Err(PortError::transient(format!(
                    "LXD: {name} still busy after {BUSY_WAIT:?}; a later reconcile deletes it"
                )))
            }
        }
        self.journal.end(name);
        Ok(())
    }

    async fn revoke(&self, name: &RunnerName) {
        // The removal goes on whatever the answer: the token expires anyway.
        if let Err(e) = tokio::task::block_in_place(|| (self.payload.revoke)(name)) {
            log::warn!("cannot revoke the one-time token of {name} (it still expires): {e}");
        }
    }
}

#[cfg(test)]
#[path = "lxd_host_tests.rs"]
mod tests;
