use std::sync::Arc;

use super::*;
use crate::fakes::{FakeHost, FakeRegistry};
use crate::plan::{Desired, Flush};
use crate::reconcile;

fn prefix() -> RunnerPrefix {
    RunnerPrefix::from_unit("app/0")
}

fn desired(n: u32, flush: Flush) -> Desired {
    Desired {
        runners: n,
        grace_secs: 300,
        max_idle_secs: 72_000,
        flush,
        keep: Default::default(),
    }
}

#[tokio::test]
async fn creates_in_parallel_and_converges() {
    let host = Arc::new(FakeHost::default());
    let reg = Arc::new(FakeRegistry::default());
    let report = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(3, Flush::None),
        8,
    )
    .await
    .unwrap();
    assert_eq!(report.created.len(), 3);
    assert_eq!(host.instances.lock().unwrap().len(), 3);
    assert_eq!(reg.runners.lock().unwrap().len(), 3);
    reg.set_all_online();
    reg.calls.lock().unwrap().clear();
    let again = reconcile(host, reg.clone(), &prefix(), &desired(3, Flush::None), 8)
        .await
        .unwrap();
    assert_eq!(
        (again.created.len(), again.removed_total(), again.idle),
        (0, 0, 3)
    );
    assert_eq!(
        *reg.calls.lock().unwrap(),
        ["list"],
        "steady state costs one listing"
    );
}

#[tokio::test]
async fn a_failed_creation_leaves_nothing_and_does_not_stop_the_others() {
    let host = Arc::new(FakeHost::default());
    host.fail_provision.lock().unwrap().insert(2);
    let reg = Arc::new(FakeRegistry::default());
    let report = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(3, Flush::None),
        8,
    )
    .await
    .unwrap();
    assert_eq!(report.created.len(), 2);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].error.message(), "image missing");
    assert_eq!(
        report.needs_operator(),
        None,
        "a transient failure is only counted"
    );
    assert_eq!(
        host.instances.lock().unwrap().len(),
        2,
        "the failed instance is deleted"
    );
    assert_eq!(
        reg.runners.lock().unwrap().len(),
        2,
        "the failed registration is deleted"
    );
    assert_eq!(
        host.revoked.lock().unwrap().len(),
        1,
        "and its token revoked"
    );
}

#[tokio::test]
async fn a_runner_that_took_a_job_meanwhile_is_kept() {
    let host = Arc::new(FakeHost::default());
    let reg = Arc::new(FakeRegistry::default());
    reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(2, Flush::None),
        8,
    )
    .await
    .unwrap();
    reg.set_all_online();
    let observed = crate::plan::Observed {
        instances: host.instances.lock().unwrap().values().cloned().collect(),
        registrations: reg.runners.lock().unwrap().values().cloned().collect(),
    };
    let plan = crate::plan::plan(&desired(0, Flush::None), &observed);
    // Between observing and removing, GitHub hands both runners a job.
    for r in observed.registrations.iter() {
        reg.set_busy(&r.name, true);
    }
    let report = execute(host.clone(), reg.clone(), &prefix(), &plan, 8).await;
    assert_eq!(report.kept_busy.len(), 2);
    assert_eq!(
        host.instances.lock().unwrap().len(),
        2,
        "busy runners' instances survive"
    );
    assert!(
        host.revoked.lock().unwrap().is_empty(),
        "a runner that took a job keeps its token for the job's check"
    );
}

/// Every removal, whatever its reason, revokes the runner's token: flushed idle
/// runners, and a registration whose instance is already gone.
#[tokio::test]
async fn every_removal_revokes_the_runners_token() {
    let host = Arc::new(FakeHost::default());
    let reg = Arc::new(FakeRegistry::default());
    let made = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(2, Flush::None),
        8,
    )
    .await
    .unwrap()
    .created;
    reg.set_all_online();
    host.instances.lock().unwrap().remove(&made[0]);
    let report = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(0, Flush::Idle),
        8,
    )
    .await
    .unwrap();
    assert_eq!(report.removed.get(&Reason::NoInstance), Some(&1));
    assert_eq!(report.removed.get(&Reason::Flushed), Some(&1));
    let mut revoked = host.revoked.lock().unwrap().clone();
    revoked.sort();
    assert_eq!(revoked, made);
}

#[tokio::test]
async fn flush_all_removes_busy_instances_and_leaves_their_registration_for_later() {
    let host = Arc::new(FakeHost::default());
    let reg = Arc::new(FakeRegistry::default());
    reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(1, Flush::None),
        8,
    )
    .await
    .unwrap();
    reg.set_all_online();
    let name = host
        .instances
        .lock()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    reg.set_busy(&name, true);
    let report = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(0, Flush::Idle),
        8,
    )
    .await
    .unwrap();
    assert_eq!(
        report.removed_total(),
        0,
        "flush of idle keeps the busy runner"
    );
    let report = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(0, Flush::All),
        8,
    )
    .await
    .unwrap();
    assert_eq!(report.removed.get(&Reason::Flushed), Some(&1));
    assert!(host.instances.lock().unwrap().is_empty());
    // Next time the busy registration has no instance: wait for GitHub, do not spin.
    let report = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(0, Flush::None),
        8,
    )
    .await
    .unwrap();
    assert_eq!(report.waiting_for_github, 1);
    reg.set_busy(&name, false);
    let report = reconcile(host, reg.clone(), &prefix(), &desired(0, Flush::None), 8)
        .await
        .unwrap();
    assert_eq!(report.removed.get(&Reason::NoInstance), Some(&1));
    assert!(reg.runners.lock().unwrap().is_empty());
}

#[tokio::test]
async fn nothing_is_deleted_when_github_cannot_be_read() {
    let host = Arc::new(FakeHost::default());
    let reg = Arc::new(FakeRegistry::default());
    reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(2, Flush::None),
        8,
    )
    .await
    .unwrap();
    *reg.list_error.lock().unwrap() = Some("GitHub answered 500".into());
    let err = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(0, Flush::All),
        8,
    )
    .await
    .unwrap_err();
    assert!(err.message().contains("500"));
    assert_eq!(host.instances.lock().unwrap().len(), 2);
}

/// The cause of a failed creation survives the executor: the report says which failure
/// only the operator can fix, with the adapter's typed error still under it.
#[tokio::test]
async fn a_failure_only_the_operator_can_fix_keeps_its_cause() {
    #[derive(Debug, thiserror::Error)]
    #[error("401 from the registry")]
    struct Rejected;
    let host = Arc::new(FakeHost::default());
    let reg = Arc::new(FakeRegistry::default());
    *reg.register_error.lock().unwrap() =
        Some(PortError::needs_operator("token rejected").with_source(Rejected));
    let report = reconcile(host.clone(), reg, &prefix(), &desired(2, Flush::None), 8)
        .await
        .expect("the listing works; only creations fail");
    assert_eq!(report.failed.len(), 2, "every creation was tried");
    assert!(report.created.is_empty());
    let cause = report.needs_operator().expect("an operator's cause");
    assert_eq!(cause.kind, crate::ports::PortErrorKind::NeedsOperator);
    assert_eq!(cause.message(), "token rejected");
    let source = std::error::Error::source(cause).expect("the typed source");
    assert!(source.downcast_ref::<Rejected>().is_some(), "{source:?}");
    assert!(host.instances.lock().unwrap().is_empty());
    let said = format!("{}: token rejected", report.failed[0].what);
    assert!(said.starts_with("create "), "{said}");
    assert!(report.as_results().contains(&("failures.f0".into(), said)));
}

#[tokio::test]
async fn other_units_runners_are_invisible() {
    let host = Arc::new(FakeHost::default());
    let reg = Arc::new(FakeRegistry::default());
    let other = RunnerPrefix::from_unit("app/1");
    reconcile(
        host.clone(),
        reg.clone(),
        &other,
        &desired(2, Flush::None),
        8,
    )
    .await
    .unwrap();
    let report = reconcile(
        host.clone(),
        reg.clone(),
        &prefix(),
        &desired(1, Flush::All),
        8,
    )
    .await
    .unwrap();
    assert_eq!(report.removed_total(), 0);
    assert_eq!(report.created.len(), 1);
    assert_eq!(host.instances.lock().unwrap().len(), 3);
}
