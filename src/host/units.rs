//! The policy service as a systemd unit: the unit and its root-only environment file
//! rendered purely, the charm token generated once, and a thin applier that writes
//! them and restarts the service only when something changed.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ghr_types::template;
use rand::RngCore;

use super::runner_env::RenderError;
use super::systemd::{install_units, systemctl, OnChange};
use super::{Cmd, Commands, HostError, HostPaths};
use crate::config::{GithubAuth, Token};
use fs_state::{ensure_private_dir, write_if_changed};

/// The single-unit layout's policy service (one per unit now: `site::UnitSite`).
pub const POLICY_UNIT: &str = "github-runner-policy.service";
const POLICY_UNIT_TEMPLATE: &str = include_str!("../../templates/github-runner-policy.service");

/// The charm's file holds its token as 64 hex characters.
fn is_well_formed_charm_token(raw: &str) -> bool {
    raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads the charm token, or generates one (32 bytes from the OS CSPRNG, as 64 hex
/// characters) and keeps it in a 0600 file. Generated once: later calls return it.
pub fn ensure_charm_token(paths: &HostPaths) -> Result<Token, HostError> {
    let path = paths.charm_token();
    if let Ok(raw) = std::fs::read_to_string(&path) {
        let raw = raw.trim();
        if is_well_formed_charm_token(raw) {
            // Also narrows a mode someone widened.
            write_if_changed(&path, format!("{raw}\n").as_bytes(), 0o600)?;
            return Ok(Token::new(raw));
        }
        log::warn!("the charm token file is malformed; generating a new token");
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    ensure_private_dir(&paths.state_dir())?;
    write_if_changed(&path, format!("{token}\n").as_bytes(), 0o600)?;
    Ok(Token::new(token))
}

/// What the unit file says; no secret among it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyUnit {
    /// The unit file's name: one per charm unit.
    pub name: String,
    /// The port on the bridge address and on loopback: one per charm unit.
    pub port: u16,
    /// `StateDirectory=`: one per charm unit.
    pub state_directory: String,
    /// `LogsDirectory=`, where the service writes `events.log`: one per charm unit.
    pub logs_directory: String,
    /// The Juju unit (`app/N`) the service answers for; its event lines name it.
    pub charm_unit: String,
    /// The service's own copy of the charm's binary ([`install_policy_binary`]), as the
    /// host sees it.
    pub binary: PathBuf,
    pub bridge_address: Ipv4Addr,
    /// The environment file, as the host sees it.
    pub env_file: PathBuf,
}

/// The service's `StateDirectory=`: `/var/lib/github-runner-policy` (with `DynamicUser=`
/// systemd keeps it under `/var/lib/private/` and links it), owned by the service's user.
pub const POLICY_STATE_DIRECTORY: &str = "github-runner-policy";
pub use policy_service::listen::POLICY_NOFILE;
/// The service's `TasksMax=`: its async workers and check threads
/// ([`policy_service::CHECK_THREADS`]) with room to spare.
pub const POLICY_TASKS: u64 = 128;
/// The service's `MemoryMax=`: it holds a policy document and token digests, and bodies
/// of at most 64 KiB on a few hundred connections.
pub const POLICY_MEMORY: &str = "256M";

/// The unit: unprivileged (a dynamic user, its state in `StateDirectory=`, its event
/// log in `LogsDirectory=`: the only places it may write), sandboxed
/// (read-only system, no devices, no capabilities, the syscalls of an ordinary service)
/// and bounded (descriptors, tasks, memory), since it parses HTTP and JSON from jobs.
pub fn render_policy_unit(unit: &PolicyUnit) -> String {
    template::fill(
        POLICY_UNIT_TEMPLATE,
        &[
            ("ENV_FILE", &unit.env_file.display().to_string()),
            ("BINARY", &unit.binary.display().to_string()),
            ("BRIDGE_ADDRESS", &unit.bridge_address.to_string()),
            ("PORT", &unit.port.to_string()),
            ("STATE_DIRECTORY", &unit.state_directory),
            ("LOGS_DIRECTORY", &unit.logs_directory),
            ("CHARM_UNIT", &unit.charm_unit),
            ("NOFILE", &POLICY_NOFILE.to_string()),
            ("TASKS", &POLICY_TASKS.to_string()),
            ("MEMORY", POLICY_MEMORY),
        ],
    )
}

/// The values only the service and root may read.
#[derive(Clone, Copy, Debug)]
pub struct PolicySecrets<'a> {
    pub github: &'a GithubAuth,
    pub charm_token: &'a Token,
    pub github_url: &'a str,
}

/// The unit's EnvironmentFile (systemd reads it as root; the service finds its state
/// through `STATE_DIRECTORY`). Values are unquoted, so anything that systemd would
/// interpret (quotes, backslashes, control characters) is refused.
pub fn render_policy_env(s: &PolicySecrets) -> Result<String, RenderError> {
    let mut vars = github_vars(s.github);
    vars.push(("CHARM_TOKEN", s.charm_token.expose().to_string()));
    vars.push(("GITHUB_URL", s.github_url.to_string()));
    let mut out = String::new();
    for (key, value) in vars {
        if value
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(RenderError::BadValue { key: key.into() });
        }
        out.push_str(&format!("{key}={value}\n"));
    }
    Ok(out)
}

/// The service's GitHub credential: the token, or the App (its key's PEM in base64: the
/// file holds one value per line).
fn github_vars(auth: &GithubAuth) -> Vec<(&'static str, String)> {
    use base64::Engine;
    match auth {
        GithubAuth::Token(token) => vec![("GITHUB_TOKEN", token.expose().to_string())],
        GithubAuth::App(app) => vec![
            ("GITHUB_APP_ISSUER", app.issuer.clone()),
            (
                "GITHUB_APP_INSTALLATION_ID",
                app.installation_id.to_string(),
            ),
            (
                "GITHUB_APP_PRIVATE_KEY",
                base64::engine::general_purpose::STANDARD.encode(app.private_key.expose()),
            ),
        ],
    }
}

/// Writes the env file (0600) and the unit, moves state left from the service's root
/// days into its state directory (stopping it first), then reloads, enables and
/// restarts through systemctl only as far as something changed, or restarts anyway
/// when `binary_changed` (the service's binary was replaced). Returns whether it
/// restarted.
pub fn install_policy_service(
    commands: &dyn Commands,
    paths: &HostPaths,
    unit: &PolicyUnit,
    secrets: &PolicySecrets,
    binary_changed: bool,
) -> Result<bool, HostError> {
    ensure_private_dir(&paths.state_dir())?;
    let env_changed = write_if_changed(
        &paths.policy_env_file(),
        render_policy_env(secrets)?.as_bytes(),
        0o600,
    )?;
    if legacy_policy_state(paths) {
        // A service still running as root could rewrite the token file meanwhile.
        systemctl(commands, &["stop", &unit.name])?;
        migrate_policy_state(paths)?;
    }
    let rendered = render_policy_unit(unit);
    let unit_changed = install_units(
        commands,
        &paths.systemd_dir(),
        &[(&unit.name, &rendered)],
        &unit.name,
        OnChange::Enable,
    )?;
    if unit_changed || env_changed || binary_changed {
        systemctl(commands, &["restart", &unit.name])?;
        return Ok(true);
    }
    Ok(false)
}

/// Whether systemd reports the policy service running (a first, cheap health check;
/// the HTTP check belongs to the caller).
pub fn policy_service_active(commands: &dyn Commands, unit: &str) -> Result<bool, HostError> {
    let out = commands.run(&Cmd::new("systemctl", &["is-active", "--quiet", unit]))?;
    Ok(out.success())
}

/// Restarts the policy service, e.g. after a failed health check.
pub fn restart_policy_service(commands: &dyn Commands, unit: &str) -> Result<(), HostError> {
    systemctl(commands, &["restart", unit])
}

pub use super::policy_state::{install_policy_binary, legacy_policy_state, migrate_policy_state};

#[cfg(test)]
#[path = "units_tests.rs"]
mod tests;
