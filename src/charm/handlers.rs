//! One handler per event. Each starts from the typed config (an invalid one stops it
//! before anything on the host or GitHub is touched) and returns an [`Outcome`].

use super::{CharmError, Event, HookEnv, Outcome};
use crate::config::CharmConfig;
use crate::juju::{HookTools, Status};

/// Reads and validates the configuration; the only place handlers get it from.
pub fn load_config(juju: &dyn HookTools) -> Result<CharmConfig, CharmError> {
    let raw = juju.config_get()?;
    Ok(CharmConfig::from_json(&raw)?)
}

pub fn handle(event: &Event, juju: &dyn HookTools, _env: &HookEnv) -> Result<Outcome, CharmError> {
    match event {
        Event::Unknown(name) => {
            log::info!("ignoring event {name:?}: this charm does not handle it");
            Ok(Outcome::default())
        }
        Event::Action(super::Action::Unknown(name)) => {
            Err(CharmError::BadParams(format!("unknown action {name:?}")))
        }
        Event::Install | Event::UpgradeCharm => {
            let config = load_config(juju)?;
            let kind = match event {
                Event::Install => super::install::InstallKind::Install,
                _ => super::install::InstallKind::Upgrade,
            };
            let host = crate::host::HostPaths::from_env();
            let (commands, clock) = (crate::host::SystemCommands, crate::host::SystemClock);
            super::install::install(juju, _env, &config, &commands, &clock, &host, kind)
        }
        _ => {
            let config = load_config(juju)?;
            log::info!(
                "configuration valid: {} runners for {}",
                config.virtual_machines,
                config.path
            );
            Ok(Outcome::status(Status::Active, "configured"))
        }
    }
}
