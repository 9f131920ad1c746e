//! What the upgrade test runs beside the charm: a policy service as systemd runs its
//! unit, and hosts behind this machine that a runner's denylist names or not.

use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::firewall_support::{free_octet, poll, Netns, Responder};
use crate::lab::Process;

/// A host in a network namespace of its own behind this machine, answering with its tag.
pub struct Host {
    // The responder's thread leaves its namespace before the namespace goes.
    responder: Responder,
    _ns: Netns,
    /// The /30 it sits in, as a denylist names it.
    pub cidr: String,
}

impl Host {
    pub fn start(tag: &str, seed: u32) -> Host {
        let id = std::process::id() % 100_000;
        let s = free_octet(seed);
        let (host_side, inside) = (Ipv4Addr::new(10, 217, s, 1), Ipv4Addr::new(10, 217, s, 2));
        let ns = Netns::create(
            &format!("ghrup{tag}{id}"),
            &format!("gup{tag}{id}"),
            host_side,
            inside,
        );
        let ns = ns.unwrap();
        let responder = Responder::start(Some(&ns.name), SocketAddr::from((inside, 80)), tag);
        Host {
            responder: responder.unwrap(),
            _ns: ns,
            cidr: format!("10.217.{s}.0/30"),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.responder.addr
    }
}

/// A policy service run as systemd runs its unit: ExecStart's program (the charm's copy
/// under the root) and arguments, EnvironmentFile's variables and nothing else, and
/// `STATE_DIRECTORY` the private directory systemd keeps for a DynamicUser service.
pub struct PolicyService {
    _process: Process,
    /// The runners' listener (`--bind`) and the charm's (`--charm-bind`).
    pub bind: SocketAddr,
    pub charm_bind: SocketAddr,
    pub env: BTreeMap<String, String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PolicyService {
    pub fn start(root: &Path, unit_file: &Path, state_dir: &Path) -> PolicyService {
        let unit = fs::read_to_string(unit_file)
            .unwrap_or_else(|e| panic!("{}: {e}", unit_file.display()));
        let value = |key: &str| {
            let line = unit.lines().find_map(|l| l.strip_prefix(key));
            line.unwrap_or_else(|| panic!("no {key} in {unit}"))
                .to_string()
        };
        let under_root = |p: &str| root.join(p.trim_start_matches('/'));
        let exec: Vec<String> = value("ExecStart=")
            .split_whitespace()
            .map(String::from)
            .collect();
        let env_text = fs::read_to_string(under_root(&value("EnvironmentFile=")));
        let env = parse_env(&env_text.expect("the unit's EnvironmentFile"));
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("policy.log");
        let child = Command::new(under_root(&exec[0]))
            .args(&exec[1..])
            .env_clear()
            .envs(&env)
            .env("STATE_DIRECTORY", state_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let process = Process(child);
        let charm_bind: SocketAddr = flag(&exec, "--charm-bind").parse().unwrap();
        poll(
            Duration::from_secs(10),
            "the policy service listening",
            || std::net::TcpStream::connect(charm_bind).ok(),
        );
        PolicyService {
            _process: process,
            bind: flag(&exec, "--bind").parse().unwrap(),
            charm_bind,
            env,
            log,
            _dir: dir,
        }
    }

    /// Posts a policy document through the charm's listener, as the charm does.
    pub fn set_policy(&self, document: serde_json::Value) {
        let client = policy_service::client::PolicyClient::new(
            &policy_service::local_url(self.charm_bind.port()),
            ghr_types::Token::new(self.env["CHARM_TOKEN"].clone()),
        );
        let document = serde_json::from_value(document).unwrap();
        client.set_policy(&document).expect("posting the policy");
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many checks it passed.
    pub fn passes(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.ends_with(": pass"))
            .count()
    }
}

/// The bridge address and `port`: where runners reach a policy service.
pub fn bridge_port(port: u16) -> SocketAddr {
    SocketAddr::new(crate::lab::BRIDGE_IP.parse().unwrap(), port)
}

fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    let at = args.iter().position(|a| a == name).map(|i| i + 1);
    let value = at.and_then(|i| args.get(i));
    value.unwrap_or_else(|| panic!("no {name} in {args:?}"))
}

/// `KEY=VALUE` lines as systemd's EnvironmentFile= reads them.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}
