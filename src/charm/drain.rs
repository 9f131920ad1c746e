//! Leaving a path after a path change: its idle runners go at once, busy ones when their
//! job is done, over as many reconciles as that takes (part of a reconcile's prepare
//! step, see `reconcile_steps`).

use std::collections::HashSet;

use super::reconcile_steps::Wanted;
use super::runners::{port, Runners};
use super::CharmError;
use crate::config::GithubPath;
use crate::runner::lxd_host::list_own;
use crate::runner::registry::GithubRegistry;
use crate::runner::RunnerName;
use reconcile::plan::Flush;
use reconcile::ports::RunnerRegistry;

impl Runners<'_> {
    /// After a path change the old path's runners leave over as many reconciles as their
    /// jobs take: idle ones at once, busy ones when their job is done. Kept in a file
    /// until then, so every later reconcile (the timer's, an action's) goes on with it.
    pub fn leave_path(&self, old: &GithubPath) -> Result<(), CharmError> {
        let paths = self.paths();
        fs_state::ensure_private_dir(&paths.state_dir())
            .and_then(|()| {
                let old = old.to_string();
                fs_state::write_atomic(&paths.draining_path_file(), old.as_bytes(), 0o600)
            })
            .map_err(|e| CharmError::Internal(e.into()))
    }

    /// One step of leaving the old path: removes its idle runners (all of them when
    /// flushing everything) and returns the busy ones, which the configured path's
    /// reconcile must leave alone. Done once none is left, or the path came back.
    pub(super) fn drain_old_path(&self, flush: Flush) -> Result<HashSet<RunnerName>, CharmError> {
        let file = self.paths().draining_path_file();
        let Ok(old) = std::fs::read_to_string(&file) else {
            return Ok(HashSet::new());
        };
        let old = old.trim();
        let busy = if old == self.config.path.to_string() {
            HashSet::new()
        } else {
            // Only listed and deleted there: the runner group plays no part.
            let old = GithubPath::parse(old, "default").map_err(|e| {
                CharmError::Internal(anyhow::Error::new(e).context(file.display().to_string()))
            })?;
            log::info!("leaving {old}: removing its idle runners, busy ones finish their job");
            let flush = if flush == Flush::All {
                Flush::All
            } else {
                Flush::Idle
            };
            self.flush_path(&old, flush)?
        };
        if busy.is_empty() {
            let _ = std::fs::remove_file(&file);
        }
        Ok(busy)
    }

    /// Removes the runners registered to `path` (idle ones, or all with `Flush::All`)
    /// and returns the ones still registered there. Only that path's runners are looked
    /// at: the configured path's instances have no registration there and are not dead.
    /// The engine runs as in any reconcile; its report is not the unit's to record.
    fn flush_path(
        &self,
        path: &GithubPath,
        flush: Flush,
    ) -> Result<HashSet<RunnerName>, CharmError> {
        let registry = self.registry(path)?;
        let registered = |registry: &GithubRegistry| -> Result<HashSet<RunnerName>, CharmError> {
            Ok(registry
                .list()
                .map_err(port)?
                .into_iter()
                .filter(|r| self.prefix.owns(r.name.as_str()))
                .map(|r| r.name)
                .collect())
        };
        let leaving = registered(&registry)?;
        let others: HashSet<RunnerName> = self
            .runtime
            .block_on(list_own(
                &self.deps.lxd,
                &self.prefix,
                self.deps.clock.as_ref(),
            ))
            .map_err(port)?
            .into_iter()
            .map(|i| i.name)
            .filter(|name| !leaving.contains(name))
            .collect();
        let wanted = Wanted { runners: 0, flush };
        let drained = self.run_engine(self.stage(path, wanted, others)?);
        // The old path's report is not the unit's (the manager's metrics read that one).
        self.engine_report.take();
        drained?;
        registered(&registry)
    }
}
