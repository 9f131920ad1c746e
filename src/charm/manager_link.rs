//! How hooks reach the unit's runner manager: they write its settings and its systemd
//! unit ([`ensure`]), ask it and wait for the answer ([`ask`], through the
//! [`ManagerLink`] handed in with the `Deps`), and stop it before a unit goes
//! ([`stop`]).

use std::time::{Duration, Instant};

use crate::manager::settings::Given;

use super::deps::Deps;
use super::outcome::Cause;
use super::{CharmError, HookEnv};
use crate::host::systemd::{install_units, systemctl, OnChange};
use crate::juju::HookTools;
use crate::manager::protocol::{self, Done, FailureKind, LinkError, Reply, Request};
use crate::manager::{serve, Settings};
use ghr_types::template;

const UNIT_TEMPLATE: &str = include_str!("../../templates/github-runner-manager.service");
/// How long a hook waits for a manager that is (re)starting to listen.
const START_WAIT: Duration = Duration::from_secs(30);
/// How long a hook waits for the answer: a reconcile may wait for the lock, then for
/// new runners.
const ANSWER_WAIT: Duration = Duration::from_secs(20 * 60);

/// The way to the manager: its socket in production, the same work done in this
/// process in unit tests.
pub trait ManagerLink: Sync {
    fn ask(&self, deps: &Deps, request: &Request) -> Result<Reply, CharmError>;
}

/// The manager's socket, waited for while it starts.
pub struct SocketLink;

impl ManagerLink for SocketLink {
    fn ask(&self, deps: &Deps, request: &Request) -> Result<Reply, CharmError> {
        let socket = deps.paths.manager_socket(deps.site()?.slot);
        let deadline = Instant::now() + START_WAIT;
        loop {
            match protocol::ask(&socket, request, ANSWER_WAIT) {
                Err(LinkError::NotRunning(_)) if Instant::now() < deadline => {
                    // A poll under a deadline: systemd is starting it.
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(reply) => return Ok(reply),
                Err(e) => return Err(CharmError::transient(Cause::of(e))),
            }
        }
    }
}

/// The request done here, as the manager would do it (unit tests).
pub struct InProcess;

impl ManagerLink for InProcess {
    fn ask(&self, deps: &Deps, request: &Request) -> Result<Reply, CharmError> {
        Ok(serve::serve(request, deps, &serve::View::default()))
    }
}

/// The manager's systemd unit name.
pub fn unit_name(deps: &Deps) -> String {
    let key = crate::host::site::UnitKey::from_unit(&deps.unit);
    format!("github-runner-manager-{}.service", key.as_str())
}

/// Writes the manager's settings (the hook's config and environment) and its unit,
/// and (re)starts it when its unit changed or `restart` (a new binary).
pub fn ensure(
    juju: &dyn HookTools,
    given: &Given,
    env: &HookEnv,
    deps: &Deps,
    restart: bool,
) -> Result<(), CharmError> {
    Settings::new(given.clone(), env).save(&deps.paths)?;
    let name = unit_name(deps);
    let binary = env.charm_dir.join("github-runner").display().to_string();
    // In the unit file: a new address restarts the manager on it.
    let address = unit_address(juju)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let unit = template::fill(
        UNIT_TEMPLATE,
        &[
            ("UNIT", &deps.unit),
            ("BINARY", &binary),
            ("ADDRESS", &address),
        ],
    );
    let dir = deps.paths.systemd_dir();
    let started = install_units(
        deps.commands,
        &dir,
        &[(&name, &unit)],
        &name,
        OnChange::EnableAndRestart,
    )
    .map_err(|e| CharmError::transient(Cause::of(e).context("runner manager")))?;
    if restart && !started {
        systemctl(deps.commands, &["restart", &name])
            .map_err(|e| CharmError::transient(Cause::of(e).context("runner manager")))?;
    }
    Ok(())
}

/// The unit's address, where its metrics are served beside loopback; none (loopback
/// only) when Juju cannot tell, which is logged.
fn unit_address(juju: &dyn HookTools) -> Option<std::net::IpAddr> {
    match juju.private_address() {
        Ok(text) => match text.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                log::warn!("unit-get private-address gave {text:?}, not an IP address: metrics on loopback only");
                None
            }
        },
        Err(e) => {
            log::warn!("unit-get private-address: {e}: metrics on loopback only");
            None
        }
    }
}

/// Asks the manager and turns its failure back into the hook's error, by class.
pub fn ask(deps: &Deps, request: &Request) -> Result<Done, CharmError> {
    match deps.manager.ask(deps, request)? {
        Reply::Done(done) => Ok(done),
        Reply::Failed(failure) => Err(match failure.kind {
            FailureKind::Blocked => CharmError::blocked(failure.message),
            FailureKind::Waiting => CharmError::transient(failure.message),
            FailureKind::Retry => CharmError::Unfinished(Cause::new(failure.message)),
        }),
    }
}

/// Stops the manager (it closes what it holds open) and removes its unit: the hook
/// then owns the pool for the unit's last steps.
pub fn stop(deps: &Deps) -> Result<(), CharmError> {
    let name = unit_name(deps);
    let file = deps.paths.systemd_dir().join(&name);
    if file.exists() {
        systemctl(deps.commands, &["disable", "--now", &name])
            .map_err(|e| CharmError::transient(Cause::of(e).context("runner manager")))?;
        let _ = std::fs::remove_file(&file);
    }
    Ok(())
}
