//! The instance layout of this unit's runners on this machine: the config plus what the
//! host decides (the bridge the runners' NIC is on, CPUs, the id map room).

use super::runners::{port, Runners};
use super::CharmError;
use crate::config::InstanceType;
use crate::host::subid;
use crate::runner::layout::{HostFacts, Idmap, InstanceLayout};
use crate::runner::lxd_host::lxd_error;
use lxd_client::LxdClient;
use reconcile::ports::{PortError, PortResult};

/// The machine's CPUs, which LXD's containers share.
fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Runners<'_> {
    /// The runners' bridge and the host's address on it, as LXD has them now.
    pub(super) fn bridge(&self) -> Result<(String, std::net::Ipv4Addr), CharmError> {
        self.runtime
            .block_on(runner_bridge(&self.deps.lxd))
            .map_err(port)
    }

    /// How the configured runners' instances are laid out on this machine. Asks LXD
    /// which bridge the runners go on; made once per reconcile.
    pub(super) fn layout(&self) -> Result<InstanceLayout, CharmError> {
        let (network, _) = self.bridge()?;
        let host = HostFacts {
            pool: self.pool_name(),
            cpus: host_cpus(),
            network,
            idmap: self.idmap(),
            site: self.site.clone(),
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
        // The isolated maps of every unit's containers come from root's one range.
        let others = self.deps.machine().others_runners(&self.env.unit_name);
        let others = others.unwrap_or_else(|e| {
            log::warn!("{e}");
            0
        });
        let containers = self.config.virtual_machines.saturating_add(others);
        match subid::host_isolated_room(self.paths(), containers) {
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

/// The bridge the default profile's NIC uses, and the host's address on it.
async fn runner_bridge(lxd: &LxdClient) -> PortResult<(String, std::net::Ipv4Addr)> {
    let profile = lxd.get_profile("default").await.map_err(lxd_error)?;
    let network = profile
        .nic_network()
        .ok_or_else(|| PortError::needs_operator("LXD default profile has no bridged NIC"))?;
    let net = lxd.get_network(network).await.map_err(lxd_error)?;
    let address = net.ipv4_address().ok_or_else(|| {
        PortError::needs_operator(format!("LXD network {network} has no IPv4 address"))
    })?;
    Ok((network.to_string(), address))
}
