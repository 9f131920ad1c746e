//! The instance layout of this unit's runners on this machine: the config plus what the
//! host decides (the bridge the runners' NIC is on, CPUs, the id map room).

use super::runners::Runners;
use super::CharmError;
use crate::config::InstanceType;
use crate::host::subid;
use crate::runner::layout::{HostFacts, Idmap, InstanceLayout};

/// The machine's CPUs, which LXD's containers share.
fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Runners {
    /// How the configured runners' instances are laid out on this machine. Asks LXD
    /// which bridge the runners go on; made once per reconcile.
    pub(super) fn layout(&self) -> Result<InstanceLayout, CharmError> {
        let (network, _) = self.bridge()?;
        let host = HostFacts {
            pool: self.pool_name(),
            cpus: host_cpus(),
            network,
            idmap: self.idmap(),
        };
        Ok(InstanceLayout::from_config(
            &self.config,
            &self.prefix,
            &host,
        ))
    }

    /// Isolated where root's subordinate ids leave room for every container runner;
    /// the log says why not otherwise.
    fn idmap(&self) -> Idmap {
        if self.config.instance_type != InstanceType::Container {
            return Idmap::Shared;
        }
        match subid::host_isolated_room(&self.paths, self.config.virtual_machines) {
            Ok(()) => Idmap::Isolated,
            Err(why) => {
                log::warn!(
                    "container runners share one id map (no security.idmap.isolated): {why}; \
                     give root a larger range in /etc/subuid and /etc/subgid and restart LXD"
                );
                Idmap::Shared
            }
        }
    }
}
