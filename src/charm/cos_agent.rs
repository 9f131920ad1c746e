//! The `cos-agent` relation: on its joined/changed hooks, and again on config-changed and
//! upgrade-charm (a new charm brings new dashboards and rules), this unit's data
//! ([`crate::cos`]) is written to every such relation. A failure is logged and never
//! fails the hook: observability must not stop the runners' own work.

use super::{CharmError, Deps};
use crate::cos::{self, CosError, Endpoints, Topology};
use crate::juju::{HookToolError, HookTools};

/// The endpoint in metadata.yaml (`provides`, interface `cos_agent`).
pub const RELATION: &str = "cos-agent";

/// Why the data was not written.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// `relation-ids` or `relation-set` failed.
    #[error(transparent)]
    Tool(#[from] HookToolError),
    /// The unit has no site on the machine (its ports are not known).
    #[error("the unit's ports are not known: {0}")]
    Site(CharmError),
    /// A compiled-in dashboard or rule file is broken.
    #[error(transparent)]
    Data(#[from] CosError),
}

/// Writes the data to every `cos-agent` relation, logging (not returning) a failure.
pub fn refresh(juju: &dyn HookTools, deps: &Deps) {
    match try_refresh(juju, deps) {
        Ok(0) => {}
        Ok(n) => {
            log::info!("cos-agent: scrape jobs, dashboards, rules and logs sent to {n} relation(s)")
        }
        Err(e) => log::error!("cos-agent relation data not written: {e}"),
    }
}

/// The number of relations written. The hook's environment (model name and uuid) is
/// read here, at the edge, only when a relation is there.
fn try_refresh(juju: &dyn HookTools, deps: &Deps) -> Result<usize, RefreshError> {
    let ids = juju.relation_ids(RELATION)?;
    if ids.is_empty() {
        return Ok(0);
    }
    let site = deps.site().map_err(RefreshError::Site)?;
    let topology = Topology::from_lookup(&deps.unit, |k| std::env::var(k).ok());
    let endpoints = Endpoints::of_unit(site, &deps.paths);
    let settings = cos::databag(&cos::unit_data(&topology, &endpoints)?);
    let mut failed = None;
    for id in &ids {
        // One relation refusing (e.g. just departing) does not keep the data from the
        // others.
        if let Err(e) = juju.relation_set(id, &settings) {
            log::warn!("cos-agent: relation {id}: {e}");
            failed = Some(e);
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(ids.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charm::deps::HttpGithub;
    use crate::host::fakes::{FakeClock, FakeCommands};
    use crate::juju::fakes::FakeJuju;

    #[test]
    fn every_relation_gets_the_config_key_and_none_means_no_work() {
        let dir = tempfile::tempdir().unwrap();
        let (commands, github) = (FakeCommands::new(), HttpGithub::default());
        let clock = std::sync::Arc::new(FakeClock::at(1_714_564_800));
        let deps = Deps::stand_in(&commands, clock, &github, dir.path());
        let juju = FakeJuju::default();
        assert_eq!(try_refresh(&juju, &deps).unwrap(), 0);
        assert!(juju.relation_sets.borrow().is_empty());

        juju.relations.borrow_mut().extend([
            (RELATION.to_string(), "cos-agent:3".to_string()),
            ("other".to_string(), "other:1".to_string()),
        ]);
        assert_eq!(try_refresh(&juju, &deps).unwrap(), 1);
        let sets = juju.relation_sets.borrow();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].0, "cos-agent:3");
        let keys: Vec<&String> = sets[0].1.keys().collect();
        assert_eq!(keys, [cos::DATABAG_KEY]);
    }
}
