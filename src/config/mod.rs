//! The charm's configuration: raw `config-get` JSON parsed once into a typed, validated
//! [`CharmConfig`]. Nothing downstream reads raw option strings; building it has no
//! side effects, so an invalid value can be reported before anything is touched.

mod credential;
mod values;

use std::fmt;

use ipnet::Ipv4Net;
use serde::Deserialize;

pub use ghr_types::{ByteSize, GithubPath, GithubUrl, InstanceType, Token};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestMode {
    Off,
    /// Relaxes hardening that a test machine cannot provide.
    Insecure,
}
pub use credential::{
    is_secret_uri, GithubApp, GithubAuth, NoSecrets, SecretError, SecretSnapshot, SecretSource,
    APP_OPTIONS, NO_CREDENTIAL, PRIVATE_KEY_KEY, TOKEN_KEY,
};
pub use values::parse_denylist;
use values::*;

/// The validated configuration every handler works from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharmConfig {
    pub path: GithubPath,
    /// A token or a GitHub App, its secrets read.
    pub auth: GithubAuth,
    /// Where the credential comes from, never its value: the token's fingerprint, the
    /// token secret's URI, or the App and installation.
    pub credential_source: String,
    /// The pool in static mode; the warm (idle) runners on demand.
    pub virtual_machines: u32,
    /// 0: static mode. Above 0: on-demand mode, never more runners than this.
    pub max_total_virtual_machines: u32,
    pub vm_cpu: u32,
    pub vm_memory: ByteSize,
    pub vm_disk: ByteSize,
    pub reconcile_interval_minutes: u32,
    pub denylist: Vec<Ipv4Net>,
    pub dockerhub_mirror: Option<String>,
    pub use_aproxy: bool,
    pub test_mode: TestMode,
    pub labels: Vec<String>,
    pub github_url: GithubUrl,
    pub instance_type: InstanceType,
    pub runner_image: Option<String>,
}

/// Why the configuration cannot be used. Its Display is the `blocked` status message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Required options are empty; lists only those.
    #[error("Missing required charm configuration: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// One or more options hold values that cannot be used.
    #[error("invalid config: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<InvalidOption>),
    /// config-get returned something that is not an object of known types.
    #[error("invalid config: {0}")]
    Malformed(String),
}

/// One bad option: its name, the offending value (already redacted where secret) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOption {
    pub option: &'static str,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for InvalidOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.option, self.value, self.reason)
    }
}

/// The options exactly as `config-get --format=json` gives them, defaults as config.yaml.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "kebab-case", default)]
pub struct RawConfig {
    pub path: String,
    pub group: String,
    pub token: String,
    pub github_app_id: i64,
    pub github_app_client_id: String,
    pub github_app_installation_id: i64,
    pub github_app_private_key: String,
    pub virtual_machines: i64,
    pub max_total_virtual_machines: i64,
    pub vm_cpu: i64,
    pub vm_memory: String,
    pub vm_disk: String,
    pub reconcile_interval: i64,
    pub denylist: String,
    pub dockerhub_mirror: String,
    pub experimental_use_aproxy: bool,
    pub test_mode: String,
    pub labels: String,
    pub github_url: String,
    pub runner_instance_type: String,
    pub runner_image: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            path: String::new(),
            group: "default".into(),
            token: String::new(),
            github_app_id: 0,
            github_app_client_id: String::new(),
            github_app_installation_id: 0,
            github_app_private_key: String::new(),
            virtual_machines: 1,
            max_total_virtual_machines: 0,
            vm_cpu: 2,
            vm_memory: "7GiB".into(),
            vm_disk: "10GiB".into(),
            reconcile_interval: 10,
            denylist: String::new(),
            dockerhub_mirror: String::new(),
            experimental_use_aproxy: false,
            test_mode: String::new(),
            labels: String::new(),
            github_url: "https://github.com".into(),
            runner_instance_type: "virtual-machine".into(),
            runner_image: String::new(),
        }
    }
}

/// Upper bounds that keep a typo from asking for an absurd pool.
pub const MAX_VIRTUAL_MACHINES: i64 = 500;
pub const MAX_VM_CPU: i64 = 1024;
pub const MAX_RECONCILE_INTERVAL: i64 = 24 * 60;

impl CharmConfig {
    /// Parses `config-get --format=json` output that names no secret.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ConfigError> {
        Self::from_json_with(value, &NoSecrets)
    }

    /// Parses `config-get --format=json` output, reading the secrets it names (the
    /// token's, the App key's) from `secrets`.
    pub fn from_json_with(
        value: &serde_json::Value,
        secrets: &dyn SecretSource,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|e| wrong_types(value, &e))?;
        Self::from_raw_with(&raw, secrets)
    }

    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        Self::from_raw_with(raw, &NoSecrets)
    }

    pub fn from_raw_with(raw: &RawConfig, secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        let credential = credential::check(raw);
        let mut missing = credential.missing;
        if raw.path.trim().is_empty() {
            missing.push("path");
        }
        let mut bad = credential.invalid;
        // A token pasted into another option must not be echoed by that option's error.
        let secret = raw.token.trim();
        let redact = |text: &str| {
            if secret.len() >= 8 {
                text.replace(secret, "<redacted>")
            } else {
                text.to_string()
            }
        };
        let mut check = |option: &'static str, value: &str, result: Result<(), String>| {
            if let Err(reason) = result {
                bad.push(InvalidOption {
                    option,
                    value: shorten(&redact(value)),
                    reason: redact(&reason),
                });
            }
        };
        let path = parse_path(&raw.path, &raw.group);
        if !raw.path.trim().is_empty() {
            check(
                "path",
                &raw.path,
                path.as_ref().map(|_| ()).map_err(Clone::clone),
            );
        }
        if !raw.path.trim().is_empty() && matches!(path, Ok(GithubPath::Org { .. })) {
            check("group", &raw.group, validate_group(&raw.group));
        }
        let vms = int_in(
            "virtual-machines",
            raw.virtual_machines,
            0,
            MAX_VIRTUAL_MACHINES,
        );
        check(
            "virtual-machines",
            &raw.virtual_machines.to_string(),
            vms.clone().map(|_| ()),
        );
        let max_total = int_in(
            "max-total-virtual-machines",
            raw.max_total_virtual_machines,
            0,
            MAX_VIRTUAL_MACHINES,
        )
        .and_then(|max| warm_fits(max, raw.virtual_machines));
        check(
            "max-total-virtual-machines",
            &raw.max_total_virtual_machines.to_string(),
            max_total.clone().map(|_| ()),
        );
        let cpu = int_in("vm-cpu", raw.vm_cpu, 1, MAX_VM_CPU);
        check("vm-cpu", &raw.vm_cpu.to_string(), cpu.clone().map(|_| ()));
        let memory = ByteSize::parse(&raw.vm_memory)
            .map_err(|e| e.to_string())
            .and_then(|m| at_least(m, 64 << 20, "64MiB"));
        check("vm-memory", &raw.vm_memory, memory.map(|_| ()));
        let disk = ByteSize::parse(&raw.vm_disk)
            .map_err(|e| e.to_string())
            .and_then(|d| at_least(d, 64 << 20, "64MiB"));
        check("vm-disk", &raw.vm_disk, disk.map(|_| ()));
        let interval = int_in(
            "reconcile-interval",
            raw.reconcile_interval,
            1,
            MAX_RECONCILE_INTERVAL,
        );
        check(
            "reconcile-interval",
            &raw.reconcile_interval.to_string(),
            interval.clone().map(|_| ()),
        );
        let denylist = parse_denylist(&raw.denylist);
        check(
            "denylist",
            &raw.denylist,
            denylist.as_ref().map(|_| ()).map_err(ToString::to_string),
        );
        let mirror = parse_mirror(&raw.dockerhub_mirror);
        check(
            "dockerhub-mirror",
            &raw.dockerhub_mirror,
            mirror.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let test_mode = match raw.test_mode.trim() {
            "" => Ok(TestMode::Off),
            "insecure" => Ok(TestMode::Insecure),
            _ => Err("must be empty or \"insecure\"".to_string()),
        };
        check("test-mode", &raw.test_mode, test_mode.map(|_| ()));
        let labels = parse_labels(&raw.labels);
        check(
            "labels",
            &raw.labels,
            labels.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let insecure = raw.test_mode.trim() == "insecure";
        let github_url = GithubUrl::parse(&raw.github_url)
            .map_err(|e| e.to_string())
            .and_then(|url| {
                // The token goes to this URL with every request: never in clear text,
                // except on a test deployment that says so.
                if url.is_https() || insecure {
                    Ok(url)
                } else {
                    Err(
                        "must be an https:// URL (http:// only with test-mode=insecure): \
                     the token would travel in clear text"
                            .to_string(),
                    )
                }
            });
        check(
            "github-url",
            &raw.github_url,
            github_url.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let instance_type = match raw.runner_instance_type.trim() {
            "virtual-machine" => Ok(InstanceType::VirtualMachine),
            "container" => Ok(InstanceType::Container),
            _ => Err("must be \"virtual-machine\" or \"container\"".to_string()),
        };
        check(
            "runner-instance-type",
            &raw.runner_instance_type,
            instance_type.map(|_| ()),
        );
        let image = parse_image(&raw.runner_image);
        check(
            "runner-image",
            &raw.runner_image,
            image.as_ref().map(|_| ()).map_err(Clone::clone),
        );

        if !bad.is_empty() {
            return Err(ConfigError::Invalid(bad));
        }
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        // Read only once every option is sound: a bad config reads no secret.
        let spec = credential
            .spec
            .ok_or_else(|| ConfigError::Missing(vec![credential::NO_CREDENTIAL]))?;
        let credential_source = spec.source();
        let auth = credential::resolve(spec, secrets)
            .map_err(|option| ConfigError::Invalid(vec![option]))?;
        // Every Result below was checked above; `bad` being empty means they are Ok.
        Ok(CharmConfig {
            path: ok(path)?,
            auth,
            credential_source,
            virtual_machines: ok(vms)? as u32,
            max_total_virtual_machines: ok(max_total)? as u32,
            vm_cpu: ok(cpu)? as u32,
            vm_memory: ok(ByteSize::parse(&raw.vm_memory).map_err(|e| e.to_string()))?,
            vm_disk: ok(ByteSize::parse(&raw.vm_disk).map_err(|e| e.to_string()))?,
            reconcile_interval_minutes: ok(interval)? as u32,
            denylist: ok(denylist.map_err(|e| e.to_string()))?,
            dockerhub_mirror: ok(mirror)?,
            use_aproxy: raw.experimental_use_aproxy,
            test_mode: if insecure {
                TestMode::Insecure
            } else {
                TestMode::Off
            },
            labels: ok(labels)?,
            github_url: ok(github_url)?,
            instance_type: if raw.runner_instance_type.trim() == "container" {
                InstanceType::Container
            } else {
                InstanceType::VirtualMachine
            },
            runner_image: ok(image)?,
        })
    }
}

/// On demand, the warm pool is part of the maximum.
fn warm_fits(max: i64, warm: i64) -> Result<i64, String> {
    if max > 0 && warm > max {
        Err(format!(
            "on demand, the maximum must hold the virtual-machines ({warm}) kept warm"
        ))
    } else {
        Ok(max)
    }
}

/// How the pool's size is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Exactly `runners`, busy or idle.
    Static { runners: u32 },
    /// `warm` idle runners, one more per job GitHub assigns, at most `max`.
    OnDemand { warm: u32, max: u32 },
}

impl CharmConfig {
    pub fn mode(&self) -> Mode {
        match self.max_total_virtual_machines {
            0 => Mode::Static {
                runners: self.virtual_machines,
            },
            max => Mode::OnDemand {
                warm: self.virtual_machines,
                max,
            },
        }
    }
}

#[cfg(test)]
mod tests;
