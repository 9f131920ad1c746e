//! Pure rendering of the nftables table inside a runner that redirects outbound web
//! traffic to aproxy; the runner's aproxy unit loads it with `nft -f` before aproxy starts.

use std::net::Ipv4Addr;

use crate::firewall::TableName;

/// The port aproxy listens on inside a runner (its unit passes it with `--listen`).
pub const DEFAULT_LISTEN_PORT: u16 = 54969;

/// Destinations left alone: private, loopback, link-local, CGNAT, multicast and reserved
/// ranges. Only traffic to public addresses goes through the proxy.
pub const PRIVATE_RANGES: [&str; 8] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/3",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatSpec {
    pub table: TableName,
    /// aproxy's port; it listens on all addresses (traffic redirected in prerouting, from
    /// containers inside the runner, arrives on the interface's own address).
    pub listen_port: u16,
    /// The upstream proxy's addresses: aproxy's own connections there must not loop back.
    pub proxy_addresses: Vec<Ipv4Addr>,
    /// When aproxy runs as its own user: its connections are never redirected, whatever
    /// address the proxy's name resolves to later.
    pub aproxy_uid: Option<u32>,
    /// Destination ports to intercept.
    pub ports: Vec<u16>,
}

impl NatSpec {
    pub fn new(proxy_addresses: Vec<Ipv4Addr>) -> Self {
        NatSpec {
            table: TableName::new("aproxy").expect("valid"),
            listen_port: DEFAULT_LISTEN_PORT,
            proxy_addresses,
            aproxy_uid: None,
            ports: vec![80, 443],
        }
    }
}

/// The whole table as one atomic `nft -f` file (create, delete, define).
pub fn render_nat(spec: &NatSpec) -> String {
    let t = spec.table.as_str();
    let mut ports = spec.ports.clone();
    ports.sort_unstable();
    ports.dedup();
    let ports = ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut skip = PRIVATE_RANGES
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    let mut proxies = spec.proxy_addresses.clone();
    proxies.sort_unstable();
    proxies.dedup();
    skip.extend(proxies.iter().map(ToString::to_string));
    let port = spec.listen_port;
    let own_traffic = spec
        .aproxy_uid
        .map(|uid| format!("\t\tmeta skuid {uid} return\n"))
        .unwrap_or_default();
    format!(
        "# Managed by github-runner: outbound TCP {ports} to public addresses goes to aproxy.\n\
         table inet {t}\n\
         delete table inet {t}\n\
         table inet {t} {{\n\
         \tset bypass {{\n\
         \t\ttype ipv4_addr\n\
         \t\tflags interval\n\
         \t\tauto-merge\n\
         \t\telements = {{ {skip} }}\n\
         \t}}\n\
         \n\
         \t# Connections opened in the runner itself.\n\
         \tchain output {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         {own_traffic}\
         \t\tip daddr @bypass return\n\
         \t\tmeta nfproto ipv4 tcp dport {{ {ports} }} redirect to :{port}\n\
         \t}}\n\
         \n\
         \t# Connections from containers a job starts inside the runner.\n\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tfib daddr type local return\n\
         \t\tip daddr @bypass return\n\
         \t\tmeta nfproto ipv4 tcp dport {{ {ports} }} redirect to :{port}\n\
         \t}}\n\
         }}\n",
        skip = skip.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_runner_nat_table() {
        let spec = NatSpec::new(vec![
            Ipv4Addr::new(198, 51, 100, 7),
            Ipv4Addr::new(10, 1, 2, 3),
        ]);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/runner/golden/runner-nat.nft");
        let rendered = render_nat(&spec);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        assert_eq!(rendered, std::fs::read_to_string(&path).unwrap());
    }

    #[test]
    fn aproxy_own_user_is_never_redirected() {
        let mut spec = NatSpec::new(vec![]);
        spec.aproxy_uid = Some(997);
        let out = render_nat(&spec);
        let output = out.split("chain output {").nth(1).unwrap();
        assert!(output.find("meta skuid 997 return").unwrap() < output.find("redirect").unwrap());
        assert!(!render_nat(&NatSpec::new(vec![])).contains("skuid"));
    }

    #[test]
    fn private_destinations_and_the_proxy_bypass_before_any_redirect() {
        let out = render_nat(&NatSpec::new(vec![Ipv4Addr::new(198, 51, 100, 7)]));
        assert!(out.contains("198.51.100.7 }"));
        for chain in ["chain output {", "chain prerouting {"] {
            let body = out.split(chain).nth(1).unwrap();
            assert!(
                body.find("@bypass return").unwrap() < body.find("redirect").unwrap(),
                "{chain}"
            );
        }
    }
}
