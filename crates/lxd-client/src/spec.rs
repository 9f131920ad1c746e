//! What to create and what to run: typed specs that become LXD request bodies, and the
//! output of a finished command.

use std::collections::BTreeMap;
use std::time::Duration;

use super::types::{ConfigMap, ExecPost, ImageSource, InstancesPost};
use ghr_types::InstanceType;

/// What to create: `POST /1.0/instances` in typed form.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub name: String,
    pub instance_type: InstanceType,
    pub source: ImageSource,
    pub profiles: Vec<String>,
    pub config: ConfigMap,
    pub devices: BTreeMap<String, ConfigMap>,
    /// Ephemeral instances are deleted by LXD when they stop.
    pub ephemeral: bool,
}

impl InstanceSpec {
    /// A spec with the `default` profile, no extra config or devices, not ephemeral.
    pub fn new(name: &str, instance_type: InstanceType, source: ImageSource) -> Self {
        InstanceSpec {
            name: name.into(),
            instance_type,
            source,
            profiles: vec!["default".into()],
            config: ConfigMap::new(),
            devices: BTreeMap::new(),
            ephemeral: false,
        }
    }

    pub fn to_post(&self) -> InstancesPost {
        InstancesPost {
            name: self.name.clone(),
            instance_type: self.instance_type.as_lxd().into(),
            source: self.source.clone(),
            profiles: self.profiles.clone(),
            config: self.config.clone(),
            devices: self.devices.clone(),
            ephemeral: self.ephemeral,
        }
    }
}

/// A command to run in an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecSpec {
    pub command: Vec<String>,
    pub env: ConfigMap,
    /// Numeric uid/gid (LXD takes no names); root when unset.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub cwd: Option<String>,
    /// How long to wait for the command (the client's operation timeout when unset).
    /// LXD does not stop a command whose caller gave up waiting.
    pub timeout: Option<Duration>,
    /// Read the output back only when the command fails. Each stream read back costs
    /// two more requests (read, then delete); left unread, LXD removes them with the
    /// instance, so this suits ephemeral instances.
    pub output_on_failure_only: bool,
}

impl ExecSpec {
    pub fn new<I, S>(command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecSpec {
            command: command.into_iter().map(Into::into).collect(),
            env: ConfigMap::new(),
            uid: None,
            gid: None,
            cwd: None,
            timeout: None,
            output_on_failure_only: false,
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Runs as `uid:gid` with `HOME` and the working directory set to `home`
    /// (LXD sets neither for non-root users).
    pub fn as_user(mut self, uid: u32, gid: u32, home: &str) -> Self {
        self.uid = Some(uid);
        self.gid = Some(gid);
        self.env.insert("HOME".into(), home.into());
        self.cwd = Some(home.into());
        self
    }

    pub fn cwd(mut self, cwd: &str) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn output_on_failure_only(mut self) -> Self {
        self.output_on_failure_only = true;
        self
    }

    pub fn to_post(&self) -> ExecPost {
        ExecPost {
            command: self.command.clone(),
            environment: self.env.clone(),
            wait_for_websocket: false,
            record_output: true,
            interactive: false,
            user: self.uid,
            group: self.gid,
            cwd: self.cwd.clone(),
        }
    }
}

/// A finished command: its exit code and everything it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}
