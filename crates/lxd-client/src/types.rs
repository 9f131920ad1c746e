//! Serde types for the parts of LXD's REST API (`/1.0`) that the charm uses.
//!
//! Field names follow LXD's JSON. Unknown fields are ignored, missing optional ones
//! default, so newer daemons (and the snap's LXD) parse as well as Debian's 5.0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A string-to-string map, as LXD uses for `config` and for each device.
pub type ConfigMap = BTreeMap<String, String>;

/// LXD's response envelope; `metadata` holds the payload.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    /// `sync`, `async` or `error`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status_code: u16,
    /// The operation URL for async responses.
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub error_code: u16,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub metadata: Value,
}

/// A background operation (`/1.0/operations/{id}`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Operation {
    pub id: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub description: String,
    /// `Running`, `Success`, `Failure`, `Cancelled`, ...
    #[serde(default)]
    pub status: String,
    /// 103 running, 200 success, 400 failure, 401 cancelled.
    #[serde(default)]
    pub status_code: u16,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub err: String,
}

impl Operation {
    /// Whether the operation has reached a final state (LXD codes 200 and above).
    pub fn is_done(&self) -> bool {
        self.status_code >= 200
    }

    pub fn succeeded(&self) -> bool {
        self.status_code == 200
    }
}

/// The server's own description and settings (`GET /1.0`).
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    #[serde(default)]
    pub api_extensions: Vec<String>,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub environment: Value,
    /// Server settings (`core.proxy_http`, ...), each as text.
    #[serde(default, deserialize_with = "settings_as_text")]
    pub config: ConfigMap,
}

/// Server settings are text in every LXD the charm meets; a number or flag from some
/// other version is kept as its JSON text rather than failing the whole answer.
fn settings_as_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ConfigMap, D::Error> {
    let raw: BTreeMap<String, Value> = Option::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

/// An instance as listed or fetched; `state` is filled by `recursion=2` listings.
#[derive(Debug, Clone, Deserialize)]
pub struct Instance {
    pub name: String,
    /// `Running`, `Stopped`, ...
    #[serde(default)]
    pub status: String,
    /// `container` or `virtual-machine`.
    #[serde(rename = "type", default)]
    pub instance_type: String,
    #[serde(default)]
    pub profiles: Vec<String>,
    #[serde(default)]
    pub config: ConfigMap,
    #[serde(default)]
    pub devices: BTreeMap<String, ConfigMap>,
    #[serde(default)]
    pub ephemeral: bool,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub state: Option<InstanceState>,
}

impl Instance {
    pub fn is_running(&self) -> bool {
        self.status == "Running"
    }
}

/// Runtime state (`/1.0/instances/{name}/state`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InstanceState {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_code: u16,
    #[serde(default)]
    pub pid: i64,
    /// Absent while the instance is stopped.
    #[serde(default)]
    pub network: Option<BTreeMap<String, NetworkState>>,
}

impl InstanceState {
    /// The first global IPv4 address of `interface`, if it has one yet.
    pub fn ipv4(&self, interface: &str) -> Option<std::net::Ipv4Addr> {
        self.network
            .as_ref()?
            .get(interface)?
            .addresses
            .iter()
            .filter(|a| a.family == "inet" && a.scope == "global")
            .find_map(|a| a.address.parse().ok())
    }
}

/// One interface of a running instance.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkState {
    #[serde(default)]
    pub addresses: Vec<NetworkAddress>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub hwaddr: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkAddress {
    /// `inet` or `inet6`.
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub netmask: String,
    /// `global`, `link`, `local`.
    #[serde(default)]
    pub scope: String,
}

/// Where a new instance's root file system comes from (`source` of `POST /1.0/instances`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageSource {
    /// Always `image`.
    #[serde(rename = "type")]
    pub kind: String,
    pub alias: String,
    /// A remote image server (e.g. Ubuntu's simplestreams); absent for local images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

impl ImageSource {
    /// An image already in the daemon's store, by alias.
    pub fn local(alias: &str) -> Self {
        ImageSource {
            kind: "image".into(),
            alias: alias.into(),
            server: None,
            protocol: None,
            mode: None,
        }
    }

    /// An image pulled from a simplestreams server (e.g. `https://cloud-images.ubuntu.com/releases`).
    pub fn simplestreams(server: &str, alias: &str) -> Self {
        ImageSource {
            kind: "image".into(),
            alias: alias.into(),
            server: Some(server.into()),
            protocol: Some("simplestreams".into()),
            mode: Some("pull".into()),
        }
    }
}

/// Body of `POST /1.0/instances`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InstancesPost {
    pub name: String,
    /// `container` or `virtual-machine`.
    #[serde(rename = "type")]
    pub instance_type: String,
    pub source: ImageSource,
    pub profiles: Vec<String>,
    pub config: ConfigMap,
    pub devices: BTreeMap<String, ConfigMap>,
    pub ephemeral: bool,
}

/// Body of `PUT /1.0/instances/{name}/state`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatePut {
    /// `start`, `stop`, `restart`, ...
    pub action: String,
    /// Seconds LXD waits for a clean stop before giving up (-1: LXD's default).
    pub timeout: i64,
    pub force: bool,
}

/// Body of `POST /1.0/instances/{name}/exec`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExecPost {
    pub command: Vec<String>,
    pub environment: ConfigMap,
    #[serde(rename = "wait-for-websocket")]
    pub wait_for_websocket: bool,
    #[serde(rename = "record-output")]
    pub record_output: bool,
    pub interactive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// What a finished exec operation reports in its metadata.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ExecResult {
    #[serde(rename = "return", default)]
    pub exit_code: i32,
    /// Log file URLs of the recorded output: key `1` stdout, `2` stderr.
    #[serde(default)]
    pub output: BTreeMap<String, String>,
}

/// A profile (`/1.0/profiles/{name}`); the `PUT` body is the same minus `name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub config: ConfigMap,
    #[serde(default)]
    pub devices: BTreeMap<String, ConfigMap>,
}

impl Profile {
    /// The first NIC device: its name and settings.
    pub fn nic(&self) -> Option<(&String, &ConfigMap)> {
        self.devices
            .iter()
            .find(|(_, d)| d.get("type").map(String::as_str) == Some("nic"))
    }

    /// The network (or parent bridge) the profile's NIC is on.
    pub fn nic_network(&self) -> Option<&str> {
        let (_, nic) = self.nic()?;
        nic.get("network")
            .or_else(|| nic.get("parent"))
            .map(String::as_str)
    }

    /// Whether a disk device holds the root file system.
    pub fn has_root_disk(&self) -> bool {
        self.devices.values().any(|d| {
            d.get("type").map(String::as_str) == Some("disk")
                && d.get("path").map(String::as_str) == Some("/")
        })
    }
}

/// A storage pool (`/1.0/storage-pools/{name}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoragePool {
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub config: ConfigMap,
    /// `Created`, `Pending`, ... (read-only).
    #[serde(default, skip_serializing)]
    pub status: String,
}

/// A network (`/1.0/networks/{name}`); the `POST` body is its name, type, description
/// and config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub name: String,
    /// `bridge`, `physical`, `loopback`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    /// Whether LXD made it (read-only).
    #[serde(default, skip_serializing)]
    pub managed: bool,
    #[serde(default)]
    pub config: ConfigMap,
    /// `Created`, `Pending`, ... (read-only).
    #[serde(default, skip_serializing)]
    pub status: String,
}

impl Network {
    /// The host's address on the network (`ipv4.address` without its prefix length).
    pub fn ipv4_address(&self) -> Option<std::net::Ipv4Addr> {
        let cidr = self.config.get("ipv4.address")?;
        cidr.split('/').next()?.parse().ok()
    }
}

/// An image alias (`/1.0/images/aliases/{name}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageAlias {
    pub name: String,
    /// The fingerprint of the image the alias points at.
    pub target: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub description: String,
}

/// An image in the daemon's store (`/1.0/images/{fingerprint}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Image {
    pub fingerprint: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub properties: ConfigMap,
    #[serde(default)]
    pub uploaded_at: String,
}
