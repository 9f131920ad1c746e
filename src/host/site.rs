//! This unit's place on a machine that may hold several units of this charm: its key
//! (every per-unit file, service and table is named after it) and its slot (the number
//! the machine registry gave it: its policy port and the MAC range of its runners).

use ghr_types::RunnerPrefix;
use sha2::{Digest, Sha256};

/// The first byte of every runner's MAC: locally administered, unicast. The second is
/// the unit's slot, so a slot's runners share a 2-byte prefix nftables can match.
pub const MAC_FIRST: u8 = 0x0a;

/// The runner manager's metrics port of the unit in slot 0 (README): slot N uses
/// `METRICS_PORT + N`, as the policy service's port does.
pub const METRICS_PORT: u16 = 9464;

/// A unit's name made safe for paths, systemd unit names and nft: the runner prefix
/// without its trailing dash (`github-runner/0` -> `github-runner-0`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitKey(String);

impl UnitKey {
    pub fn from_unit(unit: &str) -> Self {
        let prefix = RunnerPrefix::from_unit(unit);
        UnitKey(prefix.as_str().trim_end_matches('-').to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UnitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the machine registry decided for this unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitSite {
    pub key: UnitKey,
    /// 0..=255, unique among the machine's units while this one exists.
    pub slot: u8,
    /// This unit took over the single-unit layout of earlier versions: its runners
    /// made then have LXD's own MACs, which its firewall also covers.
    pub legacy: bool,
}

impl UnitSite {
    pub fn new(unit: &str, slot: u8, legacy: bool) -> Self {
        UnitSite {
            key: UnitKey::from_unit(unit),
            slot,
            legacy,
        }
    }

    /// The policy service's port, on the bridge for runners and on loopback for the
    /// charm: one per unit, so a runner's firewall can admit only its own unit's.
    pub fn policy_port(&self) -> u16 {
        policy_service::POLICY_PORT + u16::from(self.slot)
    }

    /// The runner manager's Prometheus endpoint: one port per unit, on the unit's
    /// address and loopback (never the bridge).
    pub fn metrics_port(&self) -> u16 {
        METRICS_PORT + u16::from(self.slot)
    }

    pub fn policy_unit(&self) -> String {
        format!("github-runner-policy-{}.service", self.key)
    }

    pub fn firewall_unit(&self) -> String {
        format!("github-runner-firewall-{}.service", self.key)
    }

    /// The unit's nftables table: `github-runner-<key>`, or a digest of the key where
    /// that would pass nft's 64 characters.
    pub fn table(&self) -> String {
        let name = format!("github-runner-{}", self.key);
        if name.len() <= 64 {
            return name;
        }
        let digest = Sha256::digest(self.key.as_str().as_bytes());
        format!("github-runner-{}", hex::encode(&digest[..8]))
    }

    /// The MAC a runner gets: this slot's prefix and 4 bytes of its name's digest
    /// (names are unique per unit, so a clash needs a 32-bit collision).
    pub fn runner_mac(&self, runner: &str) -> String {
        let digest = Sha256::digest(runner.as_bytes());
        let bytes = [
            MAC_FIRST, self.slot, digest[0], digest[1], digest[2], digest[3],
        ];
        format_mac(&bytes)
    }

    /// The first and last MAC of this slot's runners.
    pub fn mac_range(&self) -> (String, String) {
        (
            format_mac(&[MAC_FIRST, self.slot, 0, 0, 0, 0]),
            format_mac(&[MAC_FIRST, self.slot, 0xff, 0xff, 0xff, 0xff]),
        )
    }
}

/// Every MAC any unit's runners can have (all slots).
pub fn charm_mac_range() -> (String, String) {
    (
        format_mac(&[MAC_FIRST, 0, 0, 0, 0, 0]),
        format_mac(&[MAC_FIRST, 0xff, 0xff, 0xff, 0xff, 0xff]),
    )
}

fn format_mac(bytes: &[u8; 6]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_unit() {
        let site = UnitSite::new("runners-a/1", 3, false);
        assert_eq!(site.key.as_str(), "runners-a-1");
        assert_eq!(site.policy_port(), policy_service::POLICY_PORT + 3);
        assert_eq!(
            site.policy_unit(),
            "github-runner-policy-runners-a-1.service"
        );
        assert_eq!(
            site.firewall_unit(),
            "github-runner-firewall-runners-a-1.service"
        );
        assert_eq!(site.table(), "github-runner-runners-a-1");
        assert_eq!(
            site.mac_range(),
            ("0a:03:00:00:00:00".into(), "0a:03:ff:ff:ff:ff".into())
        );
    }

    #[test]
    fn runner_macs_stay_in_the_slot_and_differ_by_name() {
        let site = UnitSite::new("a/0", 7, false);
        let one = site.runner_mac("a-0-0000abcd");
        let two = site.runner_mac("a-0-0000abce");
        assert!(one.starts_with("0a:07:"), "{one}");
        assert_ne!(one, two);
        assert_eq!(one, site.runner_mac("a-0-0000abcd"), "stable");
    }

    #[test]
    fn a_long_key_still_makes_a_valid_table_name() {
        let site = UnitSite::new(&format!("{}/12", "x".repeat(80)), 1, false);
        let table = site.table();
        assert!(table.len() <= 64, "{table}");
        assert!(crate::firewall::TableName::new(&table).is_ok());
    }
}
