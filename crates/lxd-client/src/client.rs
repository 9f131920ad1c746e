//! [`LxdClient`]: the typed LXD API. Calls that start background operations wait on
//! `/1.0/operations/{id}/wait` (LXD's long-poll), never on a timer.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::poll::{retry_until, Backoff};
use super::request::{self as req, Answer, FilePush, Method, Request};
use super::spec::{ExecOutput, ExecSpec, InstanceSpec};
use super::transport::UnixTransport;
use super::types::{
    ConfigMap, ExecResult, Image, ImageAlias, Instance, InstanceState, Network, Operation, Profile,
    Server, StatePut, StoragePool,
};
use super::{LxdError, NotReady};

/// How long an operation may run unless the caller says otherwise.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

/// An LXD client. Clones share one connection pool; use it from many tasks at once.
#[derive(Debug, Clone)]
pub struct LxdClient {
    transport: UnixTransport,
    operation_timeout: Duration,
}

impl LxdClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        LxdClient {
            transport: UnixTransport::new(socket),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Sets how long operations (create, start, stop, delete, exec) may take.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        self.transport.socket()
    }

    async fn call(&self, request: Request) -> Result<Answer, LxdError> {
        let (status, body) = self.transport.send(request).await?;
        req::parse_answer(status, &body)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, request: Request) -> Result<T, LxdError> {
        req::decode(self.call(request).await?)
    }

    /// Sends a request and, if LXD answers with an operation, waits for it to end.
    async fn run(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Option<Operation>, LxdError> {
        match self.call(request).await? {
            Answer::Sync(_) => Ok(None),
            Answer::Async(op) => self.wait_operation(&op.id, timeout).await.map(Some),
        }
    }

    /// Waits until an operation ends (up to `timeout`); a failed one is an error
    /// carrying LXD's message.
    pub async fn wait_operation(&self, id: &str, timeout: Duration) -> Result<Operation, LxdError> {
        req::operation_result(self.wait_finished(id, timeout).await?)
    }

    /// Waits until an operation ends, whether it succeeded or not.
    async fn wait_finished(&self, id: &str, timeout: Duration) -> Result<Operation, LxdError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LxdError::Timeout {
                    what: format!("operation {id}"),
                    after: timeout,
                });
            }
            // LXD's timeout is in whole seconds: round up so we never ask for 0 (= no wait).
            let secs = Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0));
            let op: Operation = self.get(req::wait_operation(id, secs)).await?;
            if op.is_done() {
                return Ok(op);
            }
        }
    }

    pub async fn server(&self) -> Result<Server, LxdError> {
        self.get(req::get_server()).await
    }

    /// All instances; `with_state` adds addresses and pids (`recursion=2`).
    pub async fn list_instances(&self, with_state: bool) -> Result<Vec<Instance>, LxdError> {
        self.get(req::list_instances(if with_state { 2 } else { 1 }))
            .await
    }

    pub async fn get_instance(&self, name: &str) -> Result<Instance, LxdError> {
        self.get(req::get_instance(name)).await
    }

    pub async fn instance_state(&self, name: &str) -> Result<InstanceState, LxdError> {
        self.get(req::get_instance_state(name)).await
    }

    /// Creates an instance (stopped) and waits until LXD has unpacked it.
    pub async fn create_instance(&self, spec: &InstanceSpec) -> Result<(), LxdError> {
        self.run(
            req::create_instance(&spec.to_post()),
            self.operation_timeout,
        )
        .await
        .map(drop)
    }

    /// Creates and starts an instance.
    pub async fn launch(&self, spec: &InstanceSpec) -> Result<(), LxdError> {
        self.create_instance(spec).await?;
        self.start_instance(&spec.name).await
    }

    pub async fn start_instance(&self, name: &str) -> Result<(), LxdError> {
        self.change_state(name, "start", false).await
    }

    /// Stops an instance; `force` kills it instead of asking it to shut down.
    pub async fn stop_instance(&self, name: &str, force: bool) -> Result<(), LxdError> {
        self.change_state(name, "stop", force).await
    }

    async fn change_state(&self, name: &str, action: &str, force: bool) -> Result<(), LxdError> {
        let body = StatePut {
            action: action.into(),
            // A clean stop gets 30 s inside LXD; forced ones need no grace.
            timeout: if force || action != "stop" { -1 } else { 30 },
            force,
        };
        self.run(req::put_instance_state(name, &body), self.operation_timeout)
            .await
            .map(drop)
    }

    /// Deletes a stopped instance.
    pub async fn delete_instance(&self, name: &str) -> Result<(), LxdError> {
        self.run(req::delete_instance(name), self.operation_timeout)
            .await
            .map(drop)
    }

    /// Removes an instance whatever its state: force-stops it if running, then
    /// deletes it. Gone already (or ephemeral and gone on stop) counts as success.
    pub async fn remove_instance(&self, name: &str) -> Result<(), LxdError> {
        let instance = match self.get_instance(name).await {
            Err(e) if e.is_not_found() => return Ok(()),
            other => other?,
        };
        if instance.is_running() {
            match self.stop_instance(name, true).await {
                Err(e) if e.is_not_found() => return Ok(()),
                other => other?,
            }
        }
        match self.delete_instance(name).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Runs a command and returns its exit code and output (recorded by LXD, fetched
    /// from the instance's log files, then removed there).
    pub async fn exec(&self, instance: &str, spec: &ExecSpec) -> Result<ExecOutput, LxdError> {
        let timeout = spec.timeout.unwrap_or(self.operation_timeout);
        let Answer::Async(started) = self.call(req::exec(instance, &spec.to_post())).await? else {
            return Err(LxdError::Protocol(
                "exec answered without an operation".into(),
            ));
        };
        let op = self.wait_finished(&started.id, timeout).await?;
        // LXD marks exits 126/127 as failed operations ("Command not found") but still
        // reports the code and output: pass those through like any other exit code.
        let result = match op
            .metadata
            .clone()
            .map(serde_json::from_value::<ExecResult>)
        {
            Some(Ok(result)) if op.succeeded() || !result.output.is_empty() => result,
            _ => {
                return req::operation_result(op).and(Err(LxdError::Protocol(
                    "exec finished without a result".into(),
                )))
            }
        };
        if spec.output_on_failure_only && result.exit_code == 0 {
            return Ok(ExecOutput {
                exit_code: 0,
                stdout: Vec::new(),
                stderr: Vec::new(),
            });
        }
        let (stdout, stderr) = tokio::try_join!(
            self.fetch_log(result.output.get("1")),
            self.fetch_log(result.output.get("2")),
        )?;
        Ok(ExecOutput {
            exit_code: result.exit_code,
            stdout,
            stderr,
        })
    }

    async fn fetch_log(&self, url: Option<&String>) -> Result<Vec<u8>, LxdError> {
        let Some(url) = url else {
            return Ok(Vec::new());
        };
        let (status, body) = self
            .transport
            .send(req::raw_path(Method::Get, url)?)
            .await?;
        let content = req::parse_raw(status, body)?;
        // Left behind, exec logs pile up in the instance's log directory.
        if let Err(e) = self.call(req::raw_path(Method::Delete, url)?).await {
            log::debug!("cannot remove exec log {url}: {e}");
        }
        Ok(content)
    }

    /// Writes a file into an instance (created or overwritten).
    pub async fn push_file(&self, instance: &str, file: &FilePush) -> Result<(), LxdError> {
        self.call(req::push_file(instance, file)).await.map(drop)
    }

    /// Reads a file from an instance.
    pub async fn pull_file(&self, instance: &str, path: &str) -> Result<Vec<u8>, LxdError> {
        let (status, body) = self.transport.send(req::pull_file(instance, path)).await?;
        req::parse_raw(status, body)
    }

    /// Polls (with backoff, up to `timeout`) until `exec true` succeeds and `interface`
    /// has a global IPv4 address; returns that address.
    pub async fn wait_ready(
        &self,
        instance: &str,
        interface: &str,
        timeout: Duration,
    ) -> Result<Ipv4Addr, LxdError> {
        let deadline = Instant::now() + timeout;
        let backoff = Backoff {
            first: Duration::from_millis(50),
            max: Duration::from_millis(500),
        };
        let timed_out = |last: NotReady| LxdError::Timeout {
            what: format!("instance {instance} ready ({last})"),
            after: timeout,
        };
        retry_until(deadline, backoff, || self.exec_true(instance))
            .await
            .map_err(timed_out)?;
        retry_until(deadline, backoff, || async {
            let state = self.instance_state(instance).await?;
            state
                .ipv4(interface)
                .ok_or_else(|| NotReady::NoAddress(interface.to_string()))
        })
        .await
        .map_err(timed_out)
    }

    /// Whether `exec true` succeeds in the instance; why not, if it does not.
    pub async fn exec_true(&self, instance: &str) -> Result<(), NotReady> {
        let probe = ExecSpec::new(["true"]).timeout(Duration::from_secs(10));
        let out = self.exec(instance, &probe).await?;
        if out.success() {
            Ok(())
        } else {
            Err(NotReady::ExecFailed(out.exit_code))
        }
    }

    pub async fn get_profile(&self, name: &str) -> Result<Profile, LxdError> {
        self.get(req::get_profile(name)).await
    }

    pub async fn create_profile(&self, profile: &Profile) -> Result<(), LxdError> {
        self.call(req::create_profile(profile)).await.map(drop)
    }

    /// Replaces the profile's config, devices and description.
    pub async fn update_profile(&self, profile: &Profile) -> Result<(), LxdError> {
        self.call(req::update_profile(profile)).await.map(drop)
    }

    pub async fn delete_profile(&self, name: &str) -> Result<(), LxdError> {
        self.call(req::delete_profile(name)).await.map(drop)
    }

    pub async fn list_profiles(&self) -> Result<Vec<Profile>, LxdError> {
        self.get(req::list_profiles()).await
    }

    pub async fn delete_storage_pool(&self, name: &str) -> Result<(), LxdError> {
        self.call(req::delete_storage_pool(name)).await.map(drop)
    }

    pub async fn get_storage_pool(&self, name: &str) -> Result<StoragePool, LxdError> {
        self.get(req::get_storage_pool(name)).await
    }

    pub async fn create_storage_pool(&self, pool: &StoragePool) -> Result<(), LxdError> {
        self.run(req::create_storage_pool(pool), self.operation_timeout)
            .await
            .map(drop)
    }

    /// Replaces the pool's config and description.
    pub async fn update_storage_pool(&self, pool: &StoragePool) -> Result<(), LxdError> {
        self.run(req::update_storage_pool(pool), self.operation_timeout)
            .await
            .map(drop)
    }

    pub async fn get_network(&self, name: &str) -> Result<Network, LxdError> {
        self.get(req::get_network(name)).await
    }

    pub async fn create_network(&self, network: &Network) -> Result<(), LxdError> {
        self.run(req::create_network(network), self.operation_timeout)
            .await
            .map(drop)
    }

    /// Sets (or, with an empty value, unsets) the server settings named; others stay.
    pub async fn patch_server_config(&self, changes: &ConfigMap) -> Result<(), LxdError> {
        self.call(req::patch_server_config(changes)).await.map(drop)
    }

    pub async fn get_image_alias(&self, name: &str) -> Result<ImageAlias, LxdError> {
        self.get(req::get_image_alias(name)).await
    }

    pub async fn get_image(&self, fingerprint: &str) -> Result<Image, LxdError> {
        self.get(req::get_image(fingerprint)).await
    }
}
