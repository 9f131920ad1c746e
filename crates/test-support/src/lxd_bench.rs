//! LXD's own launch floor: how long the daemon needs to bring up n bare containers of
//! an image in parallel until `exec true` succeeds in each. The runner benchmark is
//! judged against this number, measured in the same run on the same machine.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use ghr_types::InstanceType;
use lxd_client::client::LxdClient;
use lxd_client::poll::{retry_until, Backoff};
use lxd_client::spec::InstanceSpec;
use lxd_client::types::ImageSource;
use lxd_client::LxdError;

/// How long one bare launch may take before the measurement counts as failed.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(180);

/// The floor measured for one batch.
#[derive(Debug, Clone)]
pub struct LaunchFloor {
    /// From the first request until the last container answered `exec true`.
    pub total: Duration,
    /// Per container, from the start of the batch until it answered `exec true`.
    pub each: Vec<Duration>,
}

/// Launches `n` containers named `<prefix>-<i>` from `image` in parallel, waits until
/// `exec true` succeeds in each, and removes them again (also after a failure).
pub async fn launch_floor(
    client: &LxdClient,
    image: &str,
    prefix: &str,
    n: usize,
) -> Result<LaunchFloor, LxdError> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for name in names.clone() {
        let client = client.clone();
        let image = image.to_string();
        tasks.spawn(async move {
            let spec =
                InstanceSpec::new(&name, InstanceType::Container, ImageSource::local(&image));
            client.launch(&spec).await?;
            wait_exec_true(&client, &name, start + LAUNCH_TIMEOUT).await?;
            Ok::<_, LxdError>(start.elapsed())
        });
    }
    let mut each = Vec::with_capacity(n);
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(elapsed)) => each.push(elapsed),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(LxdError::Protocol(format!("task: {e}")))),
        }
    }
    let total = start.elapsed();
    let mut cleanup = JoinSet::new();
    for name in names {
        let client = client.clone();
        cleanup.spawn(async move { client.remove_instance(&name).await });
    }
    while let Some(joined) = cleanup.join_next().await {
        if let Ok(Err(e)) = joined {
            log::warn!("bench cleanup: {e}");
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            each.sort();
            Ok(LaunchFloor { total, each })
        }
    }
}

async fn wait_exec_true(client: &LxdClient, name: &str, deadline: Instant) -> Result<(), LxdError> {
    let backoff = Backoff {
        first: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    retry_until(deadline, backoff, || client.exec_true(name))
        .await
        .map_err(|last| LxdError::Timeout {
            what: format!("exec true in {name} ({last})"),
            after: LAUNCH_TIMEOUT,
        })
}
