//! Carries out a [`Plan`]: creations and removals run concurrently under a bound; one
//! runner's failure is recorded and cleaned up, never fatal to the others.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::plan::{LiveRunner, LiveState, Plan, Reason, Step};
use super::ports::{Deletion, PortError, RunnerHost, RunnerRegistry};
use ghr_types::{RunnerName, RunnerPrefix};

/// What a reconcile did, for action results, status and logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub created: Vec<RunnerName>,
    pub removed: BTreeMap<Reason, u32>,
    /// Every step that failed, with its typed cause.
    pub failed: Vec<Failure>,
    /// Removals GitHub refused because the runner took a job meanwhile.
    pub kept_busy: Vec<RunnerName>,
    /// Registrations left busy after their instance died, until GitHub drops the job.
    pub waiting_for_github: u32,
    pub idle: u32,
    pub busy: u32,
    pub starting: u32,
    /// See [`Plan::offline`].
    pub offline: u32,
    /// Every runner left after the reconcile: the plan's, the created ones (starting)
    /// and the ones kept because they took a job (busy).
    pub live: Vec<LiveRunner>,
    /// Creations that failed, by the step that failed (`registration`, `instance`).
    pub creation_failures: BTreeMap<&'static str, u32>,
    /// See [`Plan::removed_starting`].
    pub removed_starting: Vec<RunnerName>,
    /// Runners whose removal failed: still there, in neither `live` nor `removed`.
    pub remove_failed: Vec<RunnerName>,
    /// Each runner removed, with why.
    pub removed_runners: Vec<(RunnerName, Reason)>,
    pub duration: Duration,
}

/// One step that failed: what it was (`create NAME`, `remove NAME (reason)`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub what: String,
    pub error: PortError,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.error)
    }
}

impl Report {
    pub fn removed_total(&self) -> u32 {
        self.removed.values().sum()
    }
    /// The first failure only the operator can fix, if any: the one error a reconcile
    /// that otherwise went on for every runner must still fail with.
    pub fn needs_operator(&self) -> Option<&PortError> {
        self.failed
            .iter()
            .map(|f| &f.error)
            .find(|e| e.needs_operator_fix())
    }
    /// `key=value` pairs for action-set.
    pub fn as_results(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("created".to_string(), self.created.len().to_string()),
            ("removed".to_string(), self.removed_total().to_string()),
            ("failed".to_string(), self.failed.len().to_string()),
            ("idle".to_string(), self.idle.to_string()),
            ("busy".to_string(), self.busy.to_string()),
            ("starting".to_string(), self.starting.to_string()),
            (
                "duration-seconds".to_string(),
                format!("{:.2}", self.duration.as_secs_f64()),
            ),
        ];
        for (reason, n) in &self.removed {
            out.push((
                format!("removed-by-reason.{}", reason.as_str()),
                n.to_string(),
            ));
        }
        for (i, failure) in self.failed.iter().enumerate() {
            out.push((format!("failures.f{i}"), failure.to_string()));
        }
        out
    }
}

enum Done {
    Created(RunnerName),
    Removed(RunnerName, Reason),
    KeptBusy(RunnerName),
    /// A failed step; for a creation, which part failed.
    Failed(Failure, Option<&'static str>),
    /// A removal that failed: the runner is still there.
    RemoveFailed(Failure, RunnerName),
}

/// Runs every step of `plan`, at most `limit` at a time.
pub async fn execute<H: RunnerHost, R: RunnerRegistry>(
    host: Arc<H>,
    registry: Arc<R>,
    prefix: &RunnerPrefix,
    plan: &Plan,
    limit: usize,
) -> Report {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut tasks = JoinSet::new();
    let mut report = Report {
        idle: plan.idle,
        busy: plan.busy,
        starting: plan.starting,
        offline: plan.offline,
        live: plan.live.clone(),
        removed_starting: plan.removed_starting.clone(),
        ..Report::default()
    };
    for step in &plan.steps {
        let (host, registry, permits) = (host.clone(), registry.clone(), permits.clone());
        match step.clone() {
            Step::Create => {
                let name = prefix.new_name();
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    create(host, registry, name).await
                });
            }
            Step::Remove {
                name,
                registration,
                instance,
                reason,
            } => {
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    remove(host, registry, name, registration, instance, reason).await
                });
            }
            Step::WaitForGithub { .. } => report.waiting_for_github += 1,
        }
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Done::Created(name)) => {
                report.starting += 1;
                report.live.push(LiveRunner {
                    name: name.clone(),
                    state: LiveState::Starting,
                    age_secs: 0,
                    registered: false,
                });
                report.created.push(name);
            }
            Ok(Done::Failed(failure, stage)) => {
                log::warn!("{} failed: {}", failure.what, failure.error);
                if let Some(stage) = stage {
                    *report.creation_failures.entry(stage).or_default() += 1;
                }
                report.failed.push(failure);
            }
            Ok(Done::RemoveFailed(failure, name)) => {
                log::warn!("{} failed: {}", failure.what, failure.error);
                report.failed.push(failure);
                report.remove_failed.push(name);
            }
            Ok(Done::Removed(name, reason)) => {
                *report.removed.entry(reason).or_default() += 1;
                report.removed_runners.push((name, reason));
            }
            Ok(Done::KeptBusy(name)) => {
                report.busy += 1;
                report.live.push(LiveRunner {
                    name: name.clone(),
                    state: LiveState::Busy,
                    age_secs: 0,
                    registered: true,
                });
                report.kept_busy.push(name);
            }
            Err(join_error) => report.failed.push(Failure {
                what: "task".into(),
                error: PortError::transient_from(join_error),
            }),
        }
    }
    report.created.sort();
    report.duration = started.elapsed();
    report
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PortError> + Send + 'static,
) -> Result<T, PortError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(PortError::transient_from(e)))
}

async fn create<H: RunnerHost, R: RunnerRegistry>(
    host: Arc<H>,
    registry: Arc<R>,
    name: RunnerName,
) -> Done {
    let what = format!("create {name}");
    let reg = registry.clone();
    let n = name.clone();
    let credential = match blocking(move || reg.register(&n)).await {
        Ok(c) => c,
        Err(e) => return creation_failed(what, e, "registration"),
    };
    match host.provision(&name, &credential).await {
        Ok(()) => {
            log::info!("created runner {name}");
            Done::Created(name)
        }
        Err(e) => {
            // Leave nothing half-made: the instance, its token and registration all go.
            host.revoke(&name).await;
            if let Err(cleanup) = host.delete(&name).await {
                log::warn!("cleaning up instance {name}: {cleanup}");
            }
            if let Some(id) = credential.registration_id() {
                if let Err(cleanup) = blocking(move || registry.delete(id)).await {
                    log::warn!("cleaning up registration of {name}: {cleanup}");
                }
            }
            creation_failed(what, e, "instance")
        }
    }
}

fn creation_failed(what: String, error: PortError, stage: &'static str) -> Done {
    Done::Failed(Failure { what, error }, Some(stage))
}

async fn remove<H: RunnerHost, R: RunnerRegistry>(
    host: Arc<H>,
    registry: Arc<R>,
    name: RunnerName,
    registration: Option<u64>,
    instance: bool,
    reason: Reason,
) -> Done {
    let what = format!("remove {name} ({})", reason.as_str());
    let force = reason == Reason::Flushed || reason == Reason::Ended;
    if let Some(id) = registration {
        let reg = registry.clone();
        match blocking(move || reg.delete(id)).await {
            Ok(Deletion::Deleted | Deletion::NotFound) => {}
            // A runner that took a job since we looked: keep it unless it must go.
            Ok(Deletion::Busy) if !force => return Done::KeptBusy(name),
            Ok(Deletion::Busy) => {
                log::info!("{name} is busy on GitHub; a later reconcile deletes its registration")
            }
            Err(e) if !force => return Done::RemoveFailed(Failure { what, error: e }, name),
            Err(e) => log::warn!("{what}: registration: {e}"),
        }
    }
    // Whatever the reason and whether or not an instance is left: the runner is going,
    // so nothing it holds may pass a policy check any more.
    host.revoke(&name).await;
    if instance {
        if let Err(e) = host.delete(&name).await {
            return Done::RemoveFailed(Failure { what, error: e }, name);
        }
    }
    log::info!("removed runner {name} ({})", reason.as_str());
    Done::Removed(name, reason)
}

#[cfg(test)]
#[path = "execute_tests.rs"]
mod tests;
