//! The reconcile engine: observe (own instances, own registrations) -> plan (pure) ->
//! execute with bounded parallelism, returning a [`execute::Report`].

pub mod execute;
#[cfg(test)]
mod execute_bound_tests;
#[cfg(test)]
pub mod fakes;
pub mod lock;
pub mod plan;
#[cfg(test)]
mod plan_props;
pub mod ports;

use std::sync::Arc;

use execute::Report;
use plan::{Desired, Observed};
use ports::{PortError, RunnerHost, RunnerRegistry};

use ghr_types::RunnerPrefix;

/// Default bound on concurrent creations and removals.
pub const DEFAULT_PARALLELISM: usize = 8;

/// Lists this unit's instances and registrations. Fails whole when either side cannot
/// be read: a reconcile never deletes what it cannot prove dead.
pub async fn observe<H: RunnerHost, R: RunnerRegistry>(
    host: &H,
    registry: Arc<R>,
    prefix: &RunnerPrefix,
) -> Result<Observed, PortError> {
    let registrations = tokio::task::spawn_blocking(move || registry.list());
    let instances = host.list().await?;
    let registrations = registrations
        .await
        .map_err(|e| PortError::transient(e.to_string()))??;
    Ok(Observed {
        instances: instances
            .into_iter()
            .filter(|i| prefix.owns(i.name.as_str()))
            .collect(),
        registrations: registrations
            .into_iter()
            .filter(|r| prefix.owns(r.name.as_str()))
            .collect(),
    })
}

/// One whole reconcile: observe, plan, execute.
pub async fn reconcile<H: RunnerHost, R: RunnerRegistry>(
    host: Arc<H>,
    registry: Arc<R>,
    prefix: &RunnerPrefix,
    desired: &Desired,
    parallelism: usize,
) -> Result<Report, PortError> {
    let started = std::time::Instant::now();
    let observed = observe(host.as_ref(), registry.clone(), prefix).await?;
    let plan = plan::plan(desired, &observed);
    log::debug!(
        "plan: {} creations, {} removals",
        plan.creates(),
        plan.removals().count()
    );
    let mut report = execute::execute(host, registry, prefix, &plan, parallelism).await;
    report.duration = started.elapsed();
    Ok(report)
}
