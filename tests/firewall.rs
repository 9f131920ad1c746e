//! The firewall with real packets: the rendered table loaded into the kernel, a real LXD
//! container behind it, and test hosts in network namespaces routed through the host.
//!
//! Needs root, nft and (for the container test) the LXD test daemon from
//! `scripts/testbed.sh up`. Without them the tests print why and pass, unless CI=true.

mod firewall_support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use firewall_support::*;
use github_runner::firewall::{FirewallError, FirewallSpec, InterfaceName, Nft, TableName};
use ipnet::Ipv4Net;

/// Removes the table it names when the test ends, however it ends.
struct TableGuard {
    nft: Nft<'static>,
    table: TableName,
}

impl Drop for TableGuard {
    fn drop(&mut self) {
        if let Err(e) = self.nft.remove(&self.table) {
            eprintln!("cleanup: could not remove table {}: {e}", self.table);
        }
    }
}

fn spec(table: &TableName, bridge: &str, host: Ipv4Addr, denylist: &[Ipv4Net]) -> FirewallSpec {
    FirewallSpec {
        table: table.clone(),
        bridge: InterfaceName::new(bridge).unwrap(),
        host_address: host,
        denylist: denylist.to_vec(),
        allowed_host_tcp_ports: vec![8080],
    }
}

/// A scratch namespace for tests that only need nftables, not packets.
fn scratch_netns(tag: &str) -> Option<Netns> {
    if let Err(reason) = root_and_tools() {
        skip(&reason);
        return None;
    }
    Some(Netns::bare(&format!("ghrfw-{}-{tag}", std::process::id())).unwrap())
}

#[test]
fn invalid_ruleset_fails_and_the_previous_table_stays() {
    let Some(ns) = scratch_netns("i") else { return };
    let nft = Nft::in_netns(&ns.name);
    let table = TableName::new("ghr-fw-invalid").unwrap();
    let _guard = TableGuard {
        nft: nft.clone(),
        table: table.clone(),
    };
    let good = spec(
        &table,
        "ghrbr0",
        Ipv4Addr::new(10, 216, 1, 1),
        &["10.217.0.0/16".parse().unwrap()],
    );
    let before = nft.apply(&good).expect("valid table loads");
    assert!(before.contains("10.217.0.0/16"), "{before}");

    // A complete replacement file that breaks in its last rule: nft must abort the whole
    // transaction, including the delete of the old table that precedes it.
    let broken = github_runner::firewall::render(&good).replace(
        "reject with icmpx admin-prohibited\n\t}\n}",
        "reject with nonsense\n\t}\n}",
    );
    assert_ne!(broken, github_runner::firewall::render(&good));
    let err = nft.apply_ruleset(&table, &broken).unwrap_err();
    assert!(matches!(err, FirewallError::Rejected { .. }), "{err}");
    assert!(
        err.to_string().contains("nonsense"),
        "error should carry nft's message: {err}"
    );
    assert_eq!(
        nft.list(&table).unwrap().as_deref(),
        Some(before.as_str()),
        "previous table must stay in force"
    );
}

#[test]
fn reapply_replaces_and_remove_is_idempotent() {
    let Some(ns) = scratch_netns("r") else { return };
    let nft = Nft::in_netns(&ns.name);
    let table = TableName::new("ghr-fw-reapply").unwrap();
    let _guard = TableGuard {
        nft: nft.clone(),
        table: table.clone(),
    };
    let host = Ipv4Addr::new(10, 216, 1, 1);
    let first = nft
        .apply(&spec(
            &table,
            "ghrbr0",
            host,
            &["10.1.0.0/16".parse().unwrap()],
        ))
        .unwrap();
    let second = nft
        .apply(&spec(
            &table,
            "ghrbr0",
            host,
            &["10.2.0.0/16".parse().unwrap()],
        ))
        .unwrap();
    assert!(
        first.contains("10.1.0.0/16")
            && !second.contains("10.1.0.0/16")
            && second.contains("10.2.0.0/16")
    );
    // The same spec twice lists the same table: a second install changes nothing.
    let again = nft
        .apply(&spec(
            &table,
            "ghrbr0",
            host,
            &["10.2.0.0/16".parse().unwrap()],
        ))
        .unwrap();
    assert_eq!(second, again);
    nft.remove(&table).unwrap();
    assert_eq!(nft.list(&table).unwrap(), None);
    nft.remove(&table)
        .expect("removing a missing table is fine");
}

/// What a request from the container got.
#[derive(Debug, PartialEq)]
enum Reach {
    Answered(String),
    /// curl could not connect (exit 7) and gave up quickly: the firewall rejected it.
    Refused,
    /// No answer at all until curl's deadline (exit 28): the packets were dropped.
    Dropped,
    Other(String),
}

fn reach(c: &Container, addr: SocketAddr, max_time: u32) -> (Reach, Duration) {
    let url = format!("http://{addr}/");
    let start = Instant::now();
    let out = c.exec(&["curl", "-sS", "--max-time", &max_time.to_string(), &url]);
    let took = start.elapsed();
    let reach = match out.status.code() {
        Some(0) => Reach::Answered(String::from_utf8_lossy(&out.stdout).into_owned()),
        Some(7) if took < Duration::from_secs(3) => Reach::Refused,
        Some(28) => Reach::Dropped,
        code => Reach::Other(format!(
            "exit {code:?} after {took:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    };
    (reach, took)
}

fn expect(c: &Container, what: &str, addr: SocketAddr, want: Reach) {
    // A drop is only seen as a timeout: keep that wait short.
    let max_time = if want == Reach::Dropped { 3 } else { 10 };
    let (got, took) = reach(c, addr, max_time);
    eprintln!("  {what} ({addr}): {got:?} in {took:?}");
    assert_eq!(got, want, "{what} at {addr}");
}

/// DHCP: release the lease, then get a new one in a single bounded attempt.
fn renew_dhcp(c: &Container) {
    let script = "dhclient -4 -r -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases eth0 \
        && ! ip -4 -o addr show eth0 | grep -q inet \
        && timeout 30 dhclient -4 -1 -v -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases eth0 2>&1 \
        && ip -4 -o addr show eth0 | grep -q inet";
    let out = c.exec(&["sh", "-c", script]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && log.contains("bound to"),
        "DHCP renew failed ({}): {log}",
        out.status
    );
}

/// DNS from the bridge's dnsmasq, over UDP and over TCP (glibc's `use-vc`).
fn resolve_own_name(c: &Container, ip: Ipv4Addr) {
    let fqdn = format!("{}.lxd", c.name);
    for (transport, env) in [
        ("udp", "RES_OPTIONS=attempts:1"),
        ("tcp", "RES_OPTIONS=use-vc attempts:1"),
    ] {
        let out = c.exec(&["env", env, "getent", "hosts", &fqdn]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with(&format!("{ip} ")),
            "DNS over {transport} for {fqdn}: {text:?} ({})",
            out.status
        );
    }
}

#[test]
fn container_traffic_obeys_the_table() {
    if let Err(reason) = root_and_tools() {
        return skip(&reason);
    }
    // From before the first LXD call: the shared daemon has been seen to stall for a
    // minute or more, and the timings should show it.
    let t0 = Instant::now();
    let lxd = match Lxd::from_env() {
        Ok(lxd) => lxd,
        Err(reason) => return skip(&reason),
    };
    let t_daemon = t0.elapsed();
    let id = std::process::id() % 100_000;
    let s = free_octet(id);
    // Guard first: a half-built topology can then never send test traffic off the machine.
    run(&["ip", "route", "replace", "unreachable", "10.216.0.0/13"]).unwrap();
    run(&[
        "ip",
        "-6",
        "route",
        "replace",
        "unreachable",
        "fd42:216::/32",
    ])
    .unwrap();
    let ip = |c, d| Ipv4Addr::new(10, c, s, d);
    let host_a = Netns::create(
        &format!("ghrfw-{id}-a"),
        &format!("gfw{id}a"),
        ip(217, 1),
        ip(217, 2),
    )
    .unwrap();
    let host_b = Netns::create(
        &format!("ghrfw-{id}-b"),
        &format!("gfw{id}b"),
        ip(217, 5),
        ip(217, 6),
    )
    .unwrap();
    let (net_a, net_b): (Ipv4Net, Ipv4Net) = (
        format!("10.217.{s}.0/30").parse().unwrap(),
        format!("10.217.{s}.4/30").parse().unwrap(),
    );
    let a = Responder::start(
        Some(&host_a.name),
        SocketAddr::from((ip(217, 2), 80)),
        "host-a",
    )
    .unwrap();
    let b = Responder::start(
        Some(&host_b.name),
        SocketAddr::from((ip(217, 6), 80)),
        "host-b",
    )
    .unwrap();
    let bridge_host = ip(216, 1);
    let bridge_net: Ipv4Net = format!("10.216.{s}.0/24").parse().unwrap();
    // IPv6 is on for this bridge (a ULA prefix, no routing) only to prove the table drops it.
    let bridge_host6: Ipv6Addr = format!("fd42:216:{s}::1").parse().unwrap();
    let network = LxdNetwork::create(
        &lxd,
        &format!("ghrfw{id}"),
        &format!("{bridge_host}/24"),
        Some(&format!("{bridge_host6}/64")),
    )
    .unwrap();
    let policy = Responder::start(None, SocketAddr::from((bridge_host, 8080)), "policy").unwrap();
    // The address is usable once the kernel's duplicate address detection is done.
    let policy6 = poll(Duration::from_secs(10), "the bridge's IPv6 address", || {
        Responder::start(None, SocketAddr::from((bridge_host6, 8080)), "policy-v6").ok()
    });
    let other = Responder::start(None, SocketAddr::from((bridge_host, 0)), "other-port").unwrap();
    let t_topology = t0.elapsed();

    let container = Container::launch(&lxd, &format!("ghr-fw-{id}"), &network.name).unwrap();
    let address = container.wait_ipv4(Duration::from_secs(60));
    container.wait_ipv6(Duration::from_secs(30));
    let t_container = t0.elapsed();
    eprintln!(
        "container {} has {address}; baseline without our table:",
        container.name
    );
    let answered = |body: &str| Reach::Answered(body.to_string());
    // Without the table everything answers, so every refusal below is the table's doing.
    expect(&container, "host A", a.addr, answered("host-a"));
    expect(&container, "host B", b.addr, answered("host-b"));
    expect(&container, "policy port", policy.addr, answered("policy"));
    expect(
        &container,
        "other host port",
        other.addr,
        answered("other-port"),
    );
    // IPv6 neighbour discovery on a fresh bridge sometimes needs a few seconds more than
    // the address does: wait for the first answer rather than fail the baseline.
    let t_v6 = Instant::now();
    poll(
        Duration::from_secs(30),
        "IPv6 from the container to the host",
        || (reach(&container, policy6.addr, 2).0 == answered("policy-v6")).then_some(()),
    );
    eprintln!(
        "  policy port over IPv6 ({}): answered after {:?}",
        policy6.addr,
        t_v6.elapsed()
    );

    let nft = Nft::default();
    let table = TableName::new(&format!("ghr-fw-{id}")).unwrap();
    let _table_guard = TableGuard {
        nft: nft.clone(),
        table: table.clone(),
    };
    // The bridge's own network is denylisted too, as a production denylist of 10.0.0.0/8
    // would: the host's services on it must still answer.
    let mut firewall = spec(&table, &network.name, bridge_host, &[net_b, bridge_net]);
    let t_apply = Instant::now();
    nft.apply(&firewall).unwrap();
    let apply_took = t_apply.elapsed();
    eprintln!("table {table} applied in {apply_took:?}, denylist {net_b} {bridge_net}:");
    expect(&container, "host A", a.addr, answered("host-a"));
    expect(&container, "host B (denylisted)", b.addr, Reach::Refused);
    expect(&container, "policy port", policy.addr, answered("policy"));
    expect(&container, "other host port", other.addr, Reach::Refused);
    expect(
        &container,
        "policy port over IPv6",
        policy6.addr,
        Reach::Dropped,
    );
    let t_dhcp = Instant::now();
    renew_dhcp(&container);
    assert_eq!(container.wait_ipv4(Duration::from_secs(10)), address);
    eprintln!("  DHCP release + renew: ok in {:?}", t_dhcp.elapsed());
    resolve_own_name(&container, address);
    eprintln!("  DNS over UDP and TCP: ok");

    // Swap the denylisted host; nothing is restarted.
    firewall.denylist = vec![net_a, bridge_net];
    nft.apply(&firewall).unwrap();
    eprintln!("re-applied with denylist {net_a} {bridge_net}:");
    expect(&container, "host A (denylisted)", a.addr, Reach::Refused);
    expect(&container, "host B", b.addr, answered("host-b"));
    expect(&container, "policy port", policy.addr, answered("policy"));
    expect(&container, "other host port", other.addr, Reach::Refused);
    resolve_own_name(&container, address);

    eprintln!(
        "timings: daemon answered {t_daemon:?}, topology {t_topology:?}, container ready at {t_container:?}, apply {apply_took:?}, total {:?}",
        t0.elapsed()
    );
}
