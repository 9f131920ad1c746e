//! One reconcile in three steps, each with a typed input and output:
//! [`Runners::prepare`] (the firewall, the old path's drain, the hosts the engine
//! drives, the policy service's health: everything before the engine),
//! [`Runners::engine`] (observe, plan, execute through the `reconcile` crate), and
//! [`record`] (the report becomes the summary `update-status` shows and the result the
//! handler returns).

use std::collections::HashSet;
use std::sync::Arc;

use super::outcome::{settle, Cause};
use super::policy_health::{Checked, Health, LocalCheck};
use super::runners::{port, OnDemand, Paths, Reconciled, Runners, Summary};
use super::CharmError;
use crate::config::{ByteSize, GithubPath};
use crate::host::machine::Admission;
use crate::runner::app::AppCache;
use crate::runner::layout::InstanceLayout;
use crate::runner::lxd_host::{ensure_profiles, lxd_error, missing_image, LxdRunnerHost};
use crate::runner::registry::GithubRegistry;
use crate::runner::{pool, RunnerName};
use reconcile::execute::Report;
use reconcile::plan::{Desired, Flush};
use reconcile::DEFAULT_PARALLELISM;

/// What a reconcile is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Wanted {
    pub runners: u32,
    pub flush: Flush,
}

/// The engine's input for one path: the hosts and what is wanted of them.
pub(super) struct Staged {
    host: Arc<LxdRunnerHost>,
    registry: Arc<GithubRegistry>,
    desired: Desired,
    pool_size: ByteSize,
}

/// What [`Runners::prepare`] leaves for the engine.
pub(super) struct Prepared<'a> {
    staged: Staged,
    /// The policy service as seen before the engine; none when no runner is wanted.
    policy: Option<(LocalCheck<'a>, Checked)>,
}

/// What [`Runners::engine`] leaves for [`record`].
#[derive(Debug)]
pub(super) struct Ran {
    pub report: Report,
    /// The policy service's health; none when no runner was wanted.
    pub health: Option<Health>,
}

impl<'d> Runners<'d> {
    /// Everything before the engine: the firewall (no runner starts without it), one
    /// step of leaving the old path, the hosts for the configured path, and a look at the
    /// policy service (restarted when dead) so that new runners meet a live one.
    pub(super) fn prepare(&self, wanted: Wanted) -> Result<Prepared<'d>, CharmError> {
        // A reboot drops the table, a job that got out or an operator may have flushed a
        // chain. Reloading is atomic and cheap.
        if wanted.runners > 0 {
            self.apply_firewall()?;
        }
        let keep = self.drain_old_path(wanted.flush)?;
        let staged = self.stage(&self.config.path, wanted, keep)?;
        let policy = (wanted.runners > 0).then(|| {
            let check = LocalCheck::new(self.deps, &self.site);
            let before = check.check().before_reconcile();
            (check, before)
        });
        Ok(Prepared { staged, policy })
    }

    /// The engine on the prepared hosts, then what only its run can tell: the policy
    /// service's health once GitHub has answered the charm with the same token.
    pub(super) fn engine(&self, prepared: Prepared<'_>) -> Result<Ran, CharmError> {
        let report = self.run_engine(prepared.staged)?;
        let health = prepared.policy.map(|(check, before)| match before {
            Checked::Done(health) => health,
            // The engine has just listed runners on GitHub with the service's token.
            Checked::AskAfterReconcile => check.check().after_github_answered(),
        });
        Ok(Ran { report, health })
    }

    /// The hosts a reconcile of `path` drives: its registry, the storage pool, the
    /// instance layout (and, when runners are wanted, the runner application, the image
    /// and the profiles). `keep` are names the engine must leave alone.
    pub(super) fn stage(
        &self,
        path: &GithubPath,
        wanted: Wanted,
        keep: HashSet<RunnerName>,
    ) -> Result<Staged, CharmError> {
        let registry = self.registry(path)?;
        let runners = wanted.runners;
        if runners > 0 && AppCache::new(self.paths().app_dir()).tarball().is_none() {
            self.update_app(true)?;
        }
        let pool_size = pool::pool_size(self.config.vm_disk, runners);
        self.runtime
            .block_on(pool::ensure(
                self.deps.commands,
                &self.deps.lxd,
                &self.pool_name(),
                &self.pool_dir(),
                pool_size,
            ))
            .map_err(|e| CharmError::transient(Cause::of(e)))?;
        let layout = self.layout()?;
        if runners > 0 {
            self.check_image(&layout)?;
            self.runtime
                .block_on(ensure_profiles(&self.deps.lxd, &layout.own_profiles))
                .map_err(port)?;
        }
        let host = self.host(&registry, runners, layout)?;
        let desired = Desired {
            runners,
            grace_secs: self.deps.limits.grace.as_secs(),
            max_idle_secs: policy_service::tokens::MAX_IDLE_AGE.as_secs(),
            flush: wanted.flush,
            keep,
        };
        Ok(Staged {
            host,
            registry,
            desired,
            pool_size,
        })
    }

    /// Observe, plan and execute through the `reconcile` crate, then give the removed
    /// runners' room back. A step that failed for a cause only the operator can fix
    /// fails the reconcile with it ([`settle`]); other failures stay in the report.
    pub(super) fn run_engine(&self, staged: Staged) -> Result<Report, CharmError> {
        let report = self
            .runtime
            .block_on(reconcile::reconcile(
                staged.host,
                staged.registry,
                &self.prefix,
                &staged.desired,
                DEFAULT_PARALLELISM,
            ))
            .map_err(port)?;
        // Only now is the room of the removed runners free; a failure leaves the pool
        // larger than wanted, which harms nothing until a later reconcile shrinks it.
        let pool_dir = self.pool_dir();
        if let Err(e) = pool::shrink(self.deps.commands, &pool_dir, staged.pool_size) {
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
        self.engine_report.replace(Some(report.clone()));
        settle(report)
    }

    /// A local image alias that is missing blocks: every creation would fail on it, and
    /// only the operator can import it or change `runner-image`.
    fn check_image(&self, layout: &InstanceLayout) -> Result<(), CharmError> {
        if layout.source.server.is_some() {
            return Ok(());
        }
        let alias = &layout.source.alias;
        match self.runtime.block_on(self.deps.lxd.get_image_alias(alias)) {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Err(port(missing_image(alias).with_source(e))),
            Err(e) => Err(port(lxd_error(e))),
        }
    }
}

/// The last step: the engine's report and the policy service's health become the
/// summary kept for `update-status` (stamped `now`, unix seconds; saving it settles any
/// earlier problem) and the handler's result.
pub(super) fn record(
    ran: Ran,
    admission: Admission,
    on_demand: Option<OnDemand>,
    paths: &Paths,
    now: u64,
) -> Result<Reconciled, CharmError> {
    let Ran { report, health } = ran;
    let mut summary =
        Summary::from_report(&report, now).with_policy_problem(health.and_then(|h| h.problem()));
    summary.on_demand = on_demand;
    let summary = summary.with_admission(admission);
    summary.save(paths);
    Ok(Reconciled {
        report,
        summary,
        admission,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charm::summary::Problem;
    use crate::juju::Status;
    use reconcile::execute::Failure;
    use reconcile::ports::PortError;

    #[test]
    fn record_keeps_the_counts_and_health_at_the_clocks_time_and_settles_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        Problem::new(Status::Waiting, "LXD: connection refused").save(&paths);
        let report = Report {
            idle: 2,
            busy: 1,
            failed: vec![Failure {
                what: "create ghr-x".into(),
                error: PortError::transient("image missing"),
            }],
            ..Report::default()
        };
        let ran = Ran {
            report,
            health: Some(Health::Unhealthy("nothing answered".into())),
        };
        let all = Admission {
            wanted: 3,
            admitted: 3,
            room: 5,
        };
        let done = record(ran, all, None, &paths, 1_714_564_800).unwrap();
        assert_eq!(done.report.idle, 2);
        let saved = Summary::load(&paths).expect("last-reconcile.json written");
        assert_eq!(saved, done.summary);
        assert_eq!(saved.at, 1_714_564_800, "stamped with the time handed in");
        assert_eq!(
            saved.message(),
            "policy service unhealthy: nothing answered; 3 runners: 2 idle, 1 busy; \
             1 failed (create ghr-x: image missing)"
        );
        assert_eq!(
            Problem::load(&paths),
            None,
            "a reconcile that ran settles it"
        );
    }
}
