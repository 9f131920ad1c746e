//! The charm's other units on this machine, as a reboot for a new kernel must see them:
//! their last reports of busy runners (the machine registry) and, for a unit whose report
//! is old, whether LXD still holds any runner of it.

use super::outcome::Cause;
use super::{CharmError, Deps};
use crate::host::machine::{others_busy, Registry};
use crate::runner::RunnerPrefix;

/// How old another unit's report of its busy runners may be for a reboot to trust it.
pub const REPORT_FRESH_SECS: u64 = 3600;

pub struct Neighbours {
    unit: String,
    registry: Registry,
    /// Every instance LXD holds, by name.
    instances: Vec<String>,
}

impl Neighbours {
    pub fn look(deps: &Deps) -> Result<Self, CharmError> {
        let registry = deps
            .machine()
            .read()
            .map_err(|e| CharmError::transient(Cause::of(e)))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CharmError::Internal(e.into()))?;
        let listed = runtime.block_on(deps.lxd.list_instances(false));
        let listed = listed.map_err(|e| CharmError::transient(Cause::of(e).context("LXD")))?;
        Ok(Neighbours {
            unit: deps.unit.clone(),
            registry,
            instances: listed.into_iter().map(|i| i.name).collect(),
        })
    }

    /// Whether the registry names no other unit (then LXD need not be asked).
    pub fn none_registered(deps: &Deps) -> Result<bool, CharmError> {
        let registry = deps
            .machine()
            .read()
            .map_err(|e| CharmError::transient(Cause::of(e)))?;
        Ok(registry.units.keys().all(|u| *u == deps.unit))
    }

    fn has_runners(&self, unit: &str) -> bool {
        let prefix = RunnerPrefix::from_unit(unit);
        self.instances.iter().any(|name| prefix.owns(name))
    }

    /// The other units' busy runners at `now`, or None while one is unknown.
    pub fn busy(&self, now: u64) -> Option<u32> {
        let has = |unit: &str| self.has_runners(unit);
        others_busy(&self.registry, &self.unit, now, REPORT_FRESH_SECS, has)
    }

    /// Whether another unit has any runner at all.
    pub fn any_runners(&self) -> bool {
        let others = self.registry.units.keys().filter(|u| **u != self.unit);
        others.into_iter().any(|u| self.has_runners(u))
    }
}
