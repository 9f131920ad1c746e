//! What the upgrade test runs beside the charm: a policy service as systemd runs its
//! unit, and hosts behind this machine that a runner's denylist names or not.

use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::firewall_support::poll;
use crate::lab::machine::{flag, parse_env, rooted_args};
use crate::lab::Process;

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
            .args(rooted_args(&exec[1..], root))
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
