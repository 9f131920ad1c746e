//! Golden files and properties of the rendered table.

use super::*;
use proptest::prelude::*;

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn spec(denylist: &[&str], ports: &[u16]) -> FirewallSpec {
    FirewallSpec {
        table: TableName::default(),
        bridge: InterfaceName::new("lxdbr0").unwrap(),
        host_address: Ipv4Addr::new(10, 20, 30, 1),
        denylist: denylist.iter().map(|s| net(s)).collect(),
        allowed_host_tcp_ports: ports.to_vec(),
        sources: Sources::Bridge,
    }
}

/// Compares with `src/firewall/golden/NAME.nft`; `UPDATE_GOLDEN=1` rewrites the file.
fn check_golden(name: &str, rendered: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/firewall/golden")
        .join(format!("{name}.nft"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, rendered).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        rendered,
        expected,
        "rendered table differs from {}",
        path.display()
    );
}

fn production(site: &UnitSite) -> FirewallSpec {
    FirewallSpec::for_site(
        site,
        InterfaceName::new("lxdbr0").unwrap(),
        Ipv4Addr::new(10, 20, 30, 1),
        vec![
            net("10.0.0.0/8"),
            net("172.16.0.0/12"),
            net("192.168.0.0/16"),
        ],
    )
    .unwrap()
}

#[test]
fn golden_production() {
    let spec = production(&UnitSite::new("runners-b/1", 3, false));
    check_golden("production", &render(&spec));
}

/// The unit that took over the single-unit layout also judges MACs LXD gave.
#[test]
fn golden_production_after_the_single_unit_layout() {
    let spec = production(&UnitSite::new("github-runner/0", 0, true));
    check_golden("production-legacy", &render(&spec));
}

#[test]
fn golden_empty_policy() {
    check_golden("empty", &render(&spec(&[], &[])));
}

#[test]
fn golden_merges_overlaps_and_host_bits() {
    let s = spec(
        &[
            "192.168.1.0/24",
            "10.1.0.0/16",
            "10.0.0.5/8",
            "192.168.0.0/24",
            "203.0.113.7/32",
        ],
        &[9000, 8080, 9000],
    );
    check_golden("merged", &render(&s));
}

#[test]
fn replaces_the_named_table_in_one_file() {
    let mut s = spec(&["10.0.0.0/8"], &[8080]);
    s.table = TableName::new("ghr-test-42").unwrap();
    let out = render(&s);
    let head: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .take(3)
        .collect();
    assert_eq!(
        head,
        [
            "table inet ghr-test-42",
            "delete table inet ghr-test-42",
            "table inet ghr-test-42 {"
        ]
    );
    assert_eq!(out.matches('{').count(), out.matches('}').count());
}

#[test]
fn bridge_host_is_excepted_before_the_denylist() {
    let out = render(&spec(&["10.0.0.0/8"], &[8080]));
    let forward = out.split("chain runner-forward {").nth(1).unwrap();
    let exception = forward.find("ip daddr 10.20.30.1 return").unwrap();
    let reject = forward.find("ip daddr @denylist").unwrap();
    assert!(exception < reject);
}

#[test]
fn never_useful_ranges_are_refused_first_whatever_the_denylist() {
    for denylist in [&[][..], &["10.0.0.0/8"][..]] {
        let out = render(&spec(denylist, &[8080]));
        assert!(out.contains(
            "\tset always-refused {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 0.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 240.0.0.0/4 }\n\t}\n"
        ), "{out}");
        let forward: Vec<&str> = out
            .split("chain runner-forward {")
            .nth(1)
            .unwrap()
            .lines()
            .map(str::trim)
            .collect();
        assert_eq!(
            forward[1..4],
            [
                "meta nfproto ipv6 drop",
                "ip daddr @always-refused meta l4proto tcp reject with tcp reset",
                "ip daddr @always-refused reject with icmpx admin-prohibited",
            ]
        );
        // The host's input chain keeps DHCP open to any destination (the broadcast).
        let input = out.split("chain runner-input {").nth(1).unwrap();
        assert!(!input
            .split("\t}")
            .next()
            .unwrap()
            .contains("always-refused"));
    }
}

#[test]
fn ipv6_is_dropped_first_in_both_runner_chains() {
    let out = render(&spec(&[], &[8080]));
    for chain in ["chain runner-input {", "chain runner-forward {"] {
        let body = out.split(chain).nth(1).unwrap();
        assert_eq!(
            body.lines().nth(1).unwrap().trim(),
            "meta nfproto ipv6 drop",
            "{chain}"
        );
    }
}

#[test]
fn host_input_allows_only_dhcp_dns_and_listed_ports_then_rejects() {
    let out = render(&spec(&[], &[8080]));
    let body: Vec<&str> = out
        .split("chain runner-input {")
        .nth(1)
        .unwrap()
        .lines()
        .map(str::trim)
        .collect();
    let accepts: Vec<&&str> = body
        .iter()
        .take_while(|l| **l != "}")
        .filter(|l| l.ends_with("accept"))
        .collect();
    assert_eq!(
        accepts,
        [
            &"ct state established,related accept",
            &"udp dport 67 accept",
            &"ip daddr 10.20.30.1 meta l4proto { tcp, udp } th dport 53 accept",
            &"ip daddr 10.20.30.1 tcp dport { 8080 } accept",
        ]
    );
    assert!(out.contains(
        "meta l4proto tcp reject with tcp reset\n\t\treject with icmpx admin-prohibited\n\t}"
    ));
}

#[test]
fn empty_lists_leave_no_empty_braces() {
    let out = render(&spec(&[], &[]));
    assert_eq!(rendered_elements(&out), []);
    assert_eq!(out.matches("elements").count(), 1, "only the fixed set's");
    assert!(!out.contains("tcp dport {"));
    assert!(!out.contains("{ }"));
}

#[test]
fn names_that_could_escape_are_refused() {
    for bad in ["", "1abc", "a b", "a\"b", "a;b", "a}b", &"x".repeat(65)] {
        assert!(TableName::new(bad).is_err(), "table {bad:?}");
    }
    for bad in ["", "br0\"", "br 0", "br0\n", "abcdefghijklmnop", "br/0"] {
        assert!(InterfaceName::new(bad).is_err(), "interface {bad:?}");
    }
    assert_eq!(
        TableName::new("github-runner").unwrap(),
        TableName::default()
    );
    assert!(InterfaceName::new("veth-a.1_b").is_ok());
}

#[test]
fn invalid_name_error_names_the_value() {
    let err = InterfaceName::new("br 0").unwrap_err().to_string();
    assert!(
        err.contains("interface") && err.contains("\"br 0\""),
        "{err}"
    );
}

fn arb_net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, p)| Ipv4Net::new(Ipv4Addr::from(a), p).unwrap())
}

/// The elements of the `denylist` set.
fn rendered_elements(out: &str) -> Vec<Ipv4Net> {
    let set = out.split("set denylist {").nth(1).unwrap();
    let set = &set[..set.find("\t}").unwrap()];
    set.lines()
        .find_map(|l| l.trim().strip_prefix("elements = { "))
        .map(|rest| rest.trim_end_matches(" }").split(", ").map(net).collect())
        .unwrap_or_default()
}

proptest! {
    /// Whatever the order or overlap of the configured CIDRs, the set covers exactly the
    /// same addresses, sorted and without overlaps (nft refuses overlapping intervals).
    #[test]
    fn denylist_set_covers_the_same_addresses(list in proptest::collection::vec(arb_net(), 0..12), probe in any::<u32>()) {
        let mut s = spec(&[], &[8080]);
        s.denylist = list.clone();
        let elements = rendered_elements(&render(&s));
        for pair in elements.windows(2) {
            prop_assert!(pair[0].broadcast() < pair[1].network(), "{} overlaps or precedes {}", pair[0], pair[1]);
        }
        let addr = Ipv4Addr::from(probe);
        let wanted = list.iter().any(|n| n.contains(&addr));
        prop_assert_eq!(elements.iter().any(|n| n.contains(&addr)), wanted);
        for n in &list {
            prop_assert!(elements.iter().any(|e| e.contains(&n.network()) && e.contains(&n.broadcast())));
        }
    }
}
