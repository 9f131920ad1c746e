//! What `remove` takes away once the unit's runners are gone: the unit's own policy
//! service, table, boot unit, profiles, storage pool, state (its secrets among it) and
//! registry entry. Nothing another unit uses: LXD, the bridge, packages, kernel settings
//! and the other units' services, tables and pools stay.

use std::path::Path;

use super::outcome::Cause;
use super::runners::Runners;
use super::CharmError;
use crate::firewall::{Nft, TableName};
use crate::host::systemd::systemctl;
use crate::host::HostError;
use crate::manager::demand::ListenerState;
use crate::manager::listener::path_url;
use crate::runner::{layout, pool};
use github_client::scaleset::ActionsService;

impl Runners<'_> {
    /// Removes everything of this unit's own on the machine once its runners are gone
    /// (until then the table stays: it is what keeps them in).
    pub fn leave_machine(&self) -> Result<(), CharmError> {
        let failed = |what: &'static str| {
            move |e: HostError| CharmError::transient(Cause::of(e).context(what))
        };
        self.no_runner_left()?;
        self.delete_scale_set();
        self.delete_retired_scale_sets();
        self.remove_services()
            .map_err(failed("removing the unit's services"))?;
        self.remove_lxd_objects()?;
        self.remove_files()
            .map_err(failed("removing the unit's files"))?;
        self.deps
            .machine()
            .unregister(&self.env.unit_name)
            .map_err(|e| CharmError::transient(Cause::of(e)))
    }

    /// The unit's runner scale set (it had one on demand) goes with it: left on GitHub
    /// it would keep taking the application's jobs for runners that never come. Best
    /// effort: GitHub may be unreachable, and the unit must still go.
    fn delete_scale_set(&self) {
        let file = self.paths().state_dir().join("listener.json");
        let Some(kept) = ListenerState::kept(&file) else {
            return;
        };
        let url = path_url(&self.config);
        let deleted = ActionsService::connect(&self.github, &self.config.path, &url)
            .and_then(|service| service.delete_scale_set(kept.scale_set_id));
        match deleted {
            Ok(()) => log::info!("deleted runner scale set {}", kept.scale_set_id),
            Err(e) => log::warn!(
                "runner scale set {} stays on GitHub: {e}",
                kept.scale_set_id
            ),
        }
    }

    /// The sets the unit left earlier but could not delete yet (runners were busy).
    fn delete_retired_scale_sets(&self) {
        let file = self.paths().state_dir().join("retired.json");
        crate::manager::retired::delete_all(&file, &self.github);
    }

    fn no_runner_left(&self) -> Result<(), CharmError> {
        let lxd = |e: lxd_client::LxdError| CharmError::transient(Cause::of(e).context("LXD"));
        let instances = self
            .runtime
            .block_on(self.deps.lxd.list_instances(false))
            .map_err(lxd)?;
        let left: Vec<&str> = instances
            .iter()
            .map(|i| i.name.as_str())
            .filter(|name| self.prefix.owns(name))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        let message = format!(
            "{} runners are still being removed ({}); the unit's firewall and services \
             stay until they are gone",
            left.len(),
            left.join(", ")
        );
        Err(CharmError::transient(Cause::new(message)))
    }

    fn remove_services(&self) -> Result<(), HostError> {
        let (site, systemd) = (&self.site, self.paths().systemd_dir());
        let commands = self.deps.commands;
        for unit in [site.policy_unit(), site.firewall_unit()] {
            if systemd.join(&unit).exists() {
                systemctl(commands, &["disable", "--now", &unit])?;
                remove(&systemd.join(&unit))?;
            }
        }
        systemctl(commands, &["daemon-reload"])?;
        let table = TableName::new(&site.table()).map_err(|e| HostError::Lxd(e.to_string()))?;
        if let Err(e) = Nft::new(commands).remove(&table) {
            log::warn!("the unit's table {table}: {e}");
        }
        Ok(())
    }

    /// The unit's profiles (they name its pool), then the pool and its tmpfs.
    fn remove_lxd_objects(&self) -> Result<(), CharmError> {
        let lxd = &self.deps.lxd;
        let prefix = self.prefix.as_str();
        let failed = |e: lxd_client::LxdError| CharmError::transient(Cause::of(e).context("LXD"));
        self.runtime.block_on(async {
            for profile in lxd.list_profiles().await.map_err(failed)? {
                if layout::is_own_profile(prefix, &profile.name) {
                    lxd.delete_profile(&profile.name).await.map_err(failed)?;
                }
            }
            pool::remove(self.deps.commands, lxd, &self.pool_name(), &self.pool_dir())
                .await
                .map_err(|e| CharmError::transient(Cause::of(e)))
        })
    }

    fn remove_files(&self) -> Result<(), HostError> {
        let paths = self.paths();
        remove_tree(&paths.state_dir())?;
        remove_tree(&paths.policy_private_state_dir())?;
        remove(&paths.policy_state_dir())?;
        match paths.policy_binary().parent() {
            Some(dir) if paths.unit.is_some() => remove_tree(dir),
            _ => remove(&paths.policy_binary()),
        }
    }
}

fn remove(path: &Path) -> Result<(), HostError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(HostError::io("removing", path, e))
        }
        _ => Ok(()),
    }
}

fn remove_tree(path: &Path) -> Result<(), HostError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(HostError::io("removing", path, e))
        }
        _ => Ok(()),
    }
}
