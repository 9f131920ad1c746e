//! What the hooks hand the runner manager: the unit's config as `config-get` gave it and
//! the parts of the hook's environment a reconcile uses (the charm folder, Juju's proxy
//! settings). Written by hooks, read by the manager for every piece of work, so a
//! request always runs on the config of the hook that asked. Holds the token: 0600 in
//! the unit's private state folder.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::charm::outcome::Cause;
use crate::charm::{CharmError, HookEnv};
use crate::config::{CharmConfig, SecretSnapshot};
use crate::host::HostPaths;
use ghr_types::proxy::ProxyConfig;

/// What a hook read from Juju: `config-get --format=json`, validated, and the values of
/// the secrets it names (the manager cannot call `secret-get`: hook tools work only in
/// a hook).
/// No Debug: the config may hold the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Given {
    pub config: Value,
    #[serde(default)]
    pub secrets: SecretSnapshot,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `config-get --format=json`, validated by the hook that wrote it.
    pub config: Value,
    /// The secrets it names, as that hook read them.
    #[serde(default)]
    pub secrets: SecretSnapshot,
    pub unit_name: String,
    pub charm_dir: PathBuf,
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

/// Never the config: it holds the token (and the proxies may hold credentials).
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("unit_name", &self.unit_name)
            .field("charm_dir", &self.charm_dir)
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub fn new(given: Given, env: &HookEnv) -> Self {
        Settings {
            config: given.config,
            secrets: given.secrets,
            unit_name: env.unit_name.clone(),
            charm_dir: env.charm_dir.clone(),
            http_proxy: env.proxy.http.clone(),
            https_proxy: env.proxy.https.clone(),
            no_proxy: env.proxy.no_proxy.clone(),
        }
    }

    /// Writes the file when it differs; whether it did.
    pub fn save(&self, paths: &HostPaths) -> Result<bool, CharmError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| CharmError::Internal(e.into()))?;
        fs_state::ensure_private_dir(&paths.state_dir())
            .and_then(|()| fs_state::write_if_changed(&paths.manager_settings(), &bytes, 0o600))
            .map_err(|e| CharmError::Internal(anyhow::Error::new(e).context("manager settings")))
    }

    pub fn load(paths: &HostPaths) -> Result<Self, CharmError> {
        let file = paths.manager_settings();
        let text = std::fs::read(&file).map_err(|e| {
            CharmError::transient(Cause::of(e).context("no settings from a hook yet"))
        })?;
        serde_json::from_slice(&text).map_err(|e| {
            CharmError::Internal(anyhow::Error::new(e).context(file.display().to_string()))
        })
    }

    /// The config and environment a reconcile runs on.
    pub fn parts(&self) -> Result<(CharmConfig, HookEnv), CharmError> {
        let config = CharmConfig::from_json_with(&self.config, &self.secrets)?;
        let env = HookEnv {
            dispatch_path: String::new(),
            unit_name: self.unit_name.clone(),
            charm_dir: self.charm_dir.clone(),
            proxy: ProxyConfig {
                http: self.http_proxy.clone(),
                https: self.https_proxy.clone(),
                no_proxy: self.no_proxy.clone(),
            },
        };
        Ok((config, env))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;

    #[test]
    fn settings_round_trip_privately_and_only_change_when_different() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::for_unit(dir.path(), "app/0");
        let env = HookEnv {
            unit_name: "app/0".into(),
            charm_dir: "/charm".into(),
            proxy: ProxyConfig {
                http: Some("http://proxy:3128".into()),
                ..ProxyConfig::default()
            },
            ..HookEnv::default()
        };
        let given = Given {
            config: json!({"path": "acme", "token": "ghp_x"}),
            secrets: SecretSnapshot::default(),
        };
        let settings = Settings::new(given, &env);
        assert!(settings.save(&paths).unwrap());
        assert!(!settings.save(&paths).unwrap(), "unchanged");
        let mode = std::fs::metadata(paths.manager_settings())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Settings::load(&paths).unwrap(), settings);
        let (config, back) = Settings::load(&paths).unwrap().parts().unwrap();
        assert_eq!((back.unit_name, back.proxy), (env.unit_name, env.proxy));
        assert_eq!(config.path.to_string(), "acme");
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("ghp_x") && !shown.contains("proxy:3128"),
            "{shown}"
        );
    }
}
