//! Pure rendering of the charm's nftables table into one `nft -f` file that replaces the
//! table atomically.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::FirewallError;
use crate::host::site::{charm_mac_range, UnitSite};

/// The single-unit layout's table (each unit has its own now: `UnitSite::table`).
pub const DEFAULT_TABLE: &str = "github-runner";

/// Destinations no runner has a use for, refused whatever `denylist` says: "this"
/// network (0.0.0.0/8), link-local (169.254.0.0/16, where clouds serve instance
/// metadata: user-data and sometimes credentials), multicast (224.0.0.0/4) and the
/// reserved range with the limited broadcast (240.0.0.0/4). Only forwarded traffic is
/// matched, so a runner's DHCP broadcast to the host (input) still works.
pub const ALWAYS_REFUSED: [&str; 4] = ["0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4"];

/// Name of an `inet` table. Checked so it cannot break out of the rendered file; nft's
/// own keywords (`ip`, `inet`, ...) still pass here and are refused by nft on load.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableName(String);

impl TableName {
    /// Letters, digits, `_` and `-`, starting with a letter, at most 64 characters.
    pub fn new(name: &str) -> Result<Self, FirewallError> {
        let invalid = |reason| FirewallError::InvalidName {
            kind: "table",
            value: name.to_string(),
            reason,
        };
        if name.is_empty() || name.len() > 64 {
            return Err(invalid("must be 1 to 64 characters"));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(invalid("must start with a letter"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid("only letters, digits, '_' and '-' are allowed"));
        }
        Ok(TableName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TableName {
    fn default() -> Self {
        TableName(DEFAULT_TABLE.to_string())
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Linux network interface name (the runner bridge), safe to put in quotes in nft.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    /// 1 to 15 bytes (the kernel's IFNAMSIZ less the NUL) of letters, digits, `_`, `.`, `-`.
    pub fn new(name: &str) -> Result<Self, FirewallError> {
        let invalid = |reason| FirewallError::InvalidName {
            kind: "interface",
            value: name.to_string(),
            reason,
        };
        if name.is_empty() || name.len() > 15 {
            return Err(invalid("must be 1 to 15 characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(invalid(
                "only letters, digits, '_', '.' and '-' are allowed",
            ));
        }
        Ok(InterfaceName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything the table depends on. Built from the parsed charm config, so every CIDR in
/// `denylist` is already valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallSpec {
    pub table: TableName,
    /// The bridge the runner instances sit on (`lxdbr0` in production).
    pub bridge: InterfaceName,
    /// The host's address on that bridge (gateway, DNS, DHCP and policy service).
    pub host_address: Ipv4Addr,
    /// Destinations runners must not reach through the host.
    pub denylist: Vec<Ipv4Net>,
    /// TCP ports on `host_address` that runners may open (the policy service).
    pub allowed_host_tcp_ports: Vec<u16>,
    /// Whose traffic on the bridge this table judges.
    pub sources: Sources,
}

/// The runners a table judges. Several units' runners share the bridge, and each
/// unit's table judges only its own, told apart by source MAC (LXD's MAC filtering
/// keeps a runner from sending with another's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sources {
    /// Everything that comes in on the bridge.
    Bridge,
    /// Runners whose MAC is in `range` (first, last); with `legacy`, also every MAC
    /// outside `charm` (runners made before MACs were assigned, by LXD).
    Macs {
        range: (String, String),
        legacy: bool,
        charm: (String, String),
    },
}

impl FirewallSpec {
    /// The production shape for a unit: its own table, judging its own runners, with
    /// only its policy service's port open on the host.
    pub fn for_site(
        site: &UnitSite,
        bridge: InterfaceName,
        host_address: Ipv4Addr,
        denylist: Vec<Ipv4Net>,
    ) -> Result<Self, FirewallError> {
        Ok(FirewallSpec {
            table: TableName::new(&site.table())?,
            bridge,
            host_address,
            denylist,
            allowed_host_tcp_ports: vec![site.policy_port()],
            sources: Sources::Macs {
                range: site.mac_range(),
                legacy: site.legacy,
                charm: charm_mac_range(),
            },
        })
    }

    /// The match that sends a packet to this table's runner chains.
    fn selectors(&self) -> Vec<String> {
        let bridge = format!("iifname \"{}\"", self.bridge);
        match &self.sources {
            Sources::Bridge => vec![bridge],
            Sources::Macs {
                range,
                legacy,
                charm,
            } => {
                let mut out = vec![format!("{bridge} ether saddr {}-{}", range.0, range.1)];
                if *legacy {
                    out.push(format!("{bridge} ether saddr != {}-{}", charm.0, charm.1));
                }
                out
            }
        }
    }
}

/// Renders the whole table. The file first creates the table if it is missing, then
/// deletes it and defines it anew: `nft -f` runs all of that as one transaction, so the
/// old table stays in force until the new one is complete, and a failure changes nothing.
///
/// The output is canonical: the denylist is merged and sorted (nft refuses overlapping
/// intervals in a set), ports are sorted and deduplicated, so equal policies render equal
/// files and a reapply can be skipped by comparing text.
pub fn render(spec: &FirewallSpec) -> String {
    let table = spec.table.as_str();
    let selectors = spec.selectors();
    let host = spec.host_address;
    let denylist = Ipv4Net::aggregate(&spec.denylist);
    let mut ports = spec.allowed_host_tcp_ports.clone();
    ports.sort_unstable();
    ports.dedup();

    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    line("# Managed by the github-runner charm; replaced as a whole on every change.");
    line(&format!("table inet {table}"));
    line(&format!("delete table inet {table}"));
    line(&format!("table inet {table} {{"));
    line("\tset denylist {");
    line("\t\ttype ipv4_addr");
    line("\t\tflags interval");
    if !denylist.is_empty() {
        let elements: Vec<String> = denylist.iter().map(ToString::to_string).collect();
        line(&format!("\t\telements = {{ {} }}", elements.join(", ")));
    }
    line("\t}");
    line("");
    line("\tset always-refused {");
    line("\t\ttype ipv4_addr");
    line("\t\tflags interval");
    line(&format!(
        "\t\telements = {{ {} }}",
        ALWAYS_REFUSED.join(", ")
    ));
    line("\t}");
    line("");
    line("\tchain input {");
    line("\t\ttype filter hook input priority filter; policy accept;");
    for selector in &selectors {
        line(&format!("\t\t{selector} jump runner-input"));
    }
    line("\t}");
    line("");
    line(
        "\t# Runners may ask the host for an address, names and the policy service; nothing else.",
    );
    line("\tchain runner-input {");
    line("\t\tmeta nfproto ipv6 drop");
    line("\t\tct state established,related accept");
    // DHCP discovery goes to the broadcast address, so the destination is not pinned.
    line("\t\tudp dport 67 accept");
    line(&format!(
        "\t\tip daddr {host} meta l4proto {{ tcp, udp }} th dport 53 accept"
    ));
    if !ports.is_empty() {
        let list: Vec<String> = ports.iter().map(ToString::to_string).collect();
        line(&format!(
            "\t\tip daddr {host} tcp dport {{ {} }} accept",
            list.join(", ")
        ));
    }
    line("\t\tmeta l4proto tcp reject with tcp reset");
    line("\t\treject with icmpx admin-prohibited");
    line("\t}");
    line("");
    line("\tchain forward {");
    line("\t\ttype filter hook forward priority filter; policy accept;");
    for selector in &selectors {
        line(&format!("\t\t{selector} jump runner-forward"));
    }
    line("\t}");
    line("");
    line("\t# Runners must not reach denylisted networks through the host.");
    line("\tchain runner-forward {");
    line("\t\tmeta nfproto ipv6 drop");
    line("\t\tip daddr @always-refused meta l4proto tcp reject with tcp reset");
    line("\t\tip daddr @always-refused reject with icmpx admin-prohibited");
    line(&format!("\t\tip daddr {host} return"));
    line("\t\tip daddr @denylist meta l4proto tcp reject with tcp reset");
    line("\t\tip daddr @denylist reject with icmpx admin-prohibited");
    line("\t}");
    line("}");
    out
}

/// The chains every rendered table defines; the applier checks them after a load.
pub const CHAINS: [&str; 4] = ["input", "runner-input", "forward", "runner-forward"];
/// The sets every rendered table defines; checked with the chains.
pub const SETS: [&str; 2] = ["denylist", "always-refused"];

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
