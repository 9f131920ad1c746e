//! The firewall with real packets: the rendered table loaded into the kernel, a real LXD
//! container behind it, and test hosts in network namespaces routed through the host.
//!
//! Needs root, nft and (for the container test) the LXD test daemon from
//! `scripts/testbed.sh up`. Without them the tests print why and pass, unless CI=true.

mod firewall_support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use firewall_support::*;
use github_runner::firewall::{Drift, FirewallError, FirewallSpec, InterfaceName, TableName};
use github_runner::host::SystemCommands;
use ipnet::Ipv4Net;
use policy_service::POLICY_PORT;

fn spec(table: &TableName, bridge: &str, host: Ipv4Addr, denylist: &[Ipv4Net]) -> FirewallSpec {
    FirewallSpec {
        table: table.clone(),
        bridge: InterfaceName::new(bridge).unwrap(),
        host_address: host,
        denylist: denylist.to_vec(),
        allowed_host_tcp_ports: vec![POLICY_PORT],
        sources: github_runner::firewall::Sources::Bridge,
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
    let charm = Charm::new(InNetns(ns.name.clone()));
    let nft = charm.nft();
    let table = TableName::new("ghr-fw-invalid").unwrap();
    let _guard = TableGuard::new(InNetns(ns.name.clone()), &table);
    let good = spec(
        &table,
        "ghrbr0",
        Ipv4Addr::new(10, 216, 1, 1),
        &["10.217.0.0/16".parse().unwrap()],
    );
    let (_, before) = charm.ensure(&good).expect("valid table loads");
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
    let charm = Charm::new(InNetns(ns.name.clone()));
    let nft = charm.nft();
    let table = TableName::new("ghr-fw-reapply").unwrap();
    let _guard = TableGuard::new(InNetns(ns.name.clone()), &table);
    let host = Ipv4Addr::new(10, 216, 1, 1);
    let load = |denied: &str| {
        let denylist = [denied.parse().unwrap()];
        charm
            .ensure(&spec(&table, "ghrbr0", host, &denylist))
            .unwrap()
    };
    let (drift, first) = load("10.1.0.0/16");
    assert_eq!(drift, Drift::Missing);
    let (drift, second) = load("10.2.0.0/16");
    assert_eq!(drift, Drift::Changed);
    assert!(
        first.contains("10.1.0.0/16")
            && !second.contains("10.1.0.0/16")
            && second.contains("10.2.0.0/16")
    );
    // The same spec twice: the kernel's table is found current and left alone.
    let (drift, again) = load("10.2.0.0/16");
    assert_eq!((drift, &again), (Drift::Current, &second));
    nft.remove(&table).unwrap();
    assert_eq!(nft.list(&table).unwrap(), None);
    nft.remove(&table)
        .expect("removing a missing table is fine");
}

/// Runs a command inside `c`, for [`reach`] and [`expect`].
fn inside(c: &Container) -> impl Fn(&[&str]) -> std::process::Output + '_ {
    move |argv| c.exec(argv)
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
    let policy =
        Responder::start(None, SocketAddr::from((bridge_host, POLICY_PORT)), "policy").unwrap();
    // The address is usable once the kernel's duplicate address detection is done.
    let policy6 = poll(Duration::from_secs(10), "the bridge's IPv6 address", || {
        Responder::start(
            None,
            SocketAddr::from((bridge_host6, POLICY_PORT)),
            "policy-v6",
        )
        .ok()
    });
    let other = Responder::start(None, SocketAddr::from((bridge_host, 0)), "other-port").unwrap();
    let t_topology = t0.elapsed();

    let container = Container::launch(&lxd, &format!("ghr-fw-{id}"), &network.name).unwrap();
    let in_c = inside(&container);
    let address = container.wait_ipv4(Duration::from_secs(60));
    container.wait_ipv6(Duration::from_secs(30));
    let t_container = t0.elapsed();
    eprintln!(
        "container {} has {address}; baseline without our table:",
        container.name
    );
    let answered = |body: &str| Reach::Answered(body.to_string());
    // Without the table everything answers, so every refusal below is the table's doing.
    expect(&in_c, "host A", a.addr, answered("host-a"));
    expect(&in_c, "host B", b.addr, answered("host-b"));
    expect(&in_c, "policy port", policy.addr, answered("policy"));
    expect(&in_c, "other host port", other.addr, answered("other-port"));
    // IPv6 neighbour discovery on a fresh bridge sometimes needs a few seconds more than
    // the address does: wait for the first answer rather than fail the baseline.
    let t_v6 = Instant::now();
    poll(
        Duration::from_secs(30),
        "IPv6 from the container to the host",
        || (reach(&in_c, policy6.addr, 2).0 == answered("policy-v6")).then_some(()),
    );
    eprintln!(
        "  policy port over IPv6 ({}): answered after {:?}",
        policy6.addr,
        t_v6.elapsed()
    );

    let charm = Charm::new(SystemCommands);
    let table = TableName::new(&format!("ghr-fw-{id}")).unwrap();
    let _table_guard = TableGuard::new(SystemCommands, &table);
    // The bridge's own network is denylisted too, as a production denylist of 10.0.0.0/8
    // would: the host's services on it must still answer.
    let mut firewall = spec(&table, &network.name, bridge_host, &[net_b, bridge_net]);
    let t_apply = Instant::now();
    charm.ensure(&firewall).unwrap();
    let apply_took = t_apply.elapsed();
    eprintln!("table {table} applied in {apply_took:?}, denylist {net_b} {bridge_net}:");
    expect(&in_c, "host A", a.addr, answered("host-a"));
    expect(&in_c, "host B (denylisted)", b.addr, Reach::Refused);
    expect(&in_c, "policy port", policy.addr, answered("policy"));
    expect(&in_c, "other host port", other.addr, Reach::Refused);
    expect(&in_c, "policy port over IPv6", policy6.addr, Reach::Dropped);
    let t_dhcp = Instant::now();
    renew_dhcp(&container);
    assert_eq!(container.wait_ipv4(Duration::from_secs(10)), address);
    eprintln!("  DHCP release + renew: ok in {:?}", t_dhcp.elapsed());
    resolve_own_name(&container, address);
    eprintln!("  DNS over UDP and TCP: ok");

    // Swap the denylisted host; nothing is restarted.
    firewall.denylist = vec![net_a, bridge_net];
    assert_eq!(charm.ensure(&firewall).unwrap().0, Drift::Changed);
    eprintln!("re-applied with denylist {net_a} {bridge_net}:");
    expect(&in_c, "host A (denylisted)", a.addr, Reach::Refused);
    expect(&in_c, "host B", b.addr, answered("host-b"));
    expect(&in_c, "policy port", policy.addr, answered("policy"));
    expect(&in_c, "other host port", other.addr, Reach::Refused);
    resolve_own_name(&container, address);

    eprintln!(
        "timings: daemon answered {t_daemon:?}, topology {t_topology:?}, container ready at {t_container:?}, apply {apply_took:?}, total {:?}",
        t0.elapsed()
    );
}

#[test]
fn never_useful_ranges_are_refused_with_an_empty_denylist() {
    if let Err(reason) = root_and_tools() {
        return skip(&reason);
    }
    let lxd = match Lxd::from_env() {
        Ok(lxd) => lxd,
        Err(reason) => return skip(&reason),
    };
    let id = std::process::id() % 100_000;
    let s = free_octet(id + 100);
    run(&["ip", "route", "replace", "unreachable", "10.216.0.0/13"]).unwrap();
    let _guards = [
        RouteGuard::unreachable("169.254.216.0/24"),
        RouteGuard::unreachable("240.0.216.0/24"),
    ];
    // Link-local but not the metadata address itself (169.254.169.254 is a real
    // service on clouds), and a reserved (class E) address the kernel routes as unicast.
    let (ll_host, ll_ns) = free_pair(169, 254, 216);
    let (e_host, e_ns) = free_pair(240, 0, 216);
    let link_local = Netns::create(&format!("ghrll-{id}"), &format!("gll{id}"), ll_host, ll_ns);
    let link_local = link_local.unwrap();
    let class_e = Netns::create(&format!("ghrce-{id}"), &format!("gce{id}"), e_host, e_ns);
    let class_e = class_e.unwrap();
    let metadata = Responder::start(Some(&link_local.name), (ll_ns, 80).into(), "link-local");
    let metadata = metadata.unwrap();
    let reserved = Responder::start(Some(&class_e.name), (e_ns, 80).into(), "class-e").unwrap();
    let bridge_host = Ipv4Addr::new(10, 216, s, 1);
    let network = LxdNetwork::create(
        &lxd,
        &format!("ghrll{id}"),
        &format!("{bridge_host}/24"),
        None,
    );
    let network = network.unwrap();
    let container = Container::launch(&lxd, &format!("ghr-ll-{id}"), &network.name).unwrap();
    let in_c = inside(&container);
    container.wait_ipv4(Duration::from_secs(60));

    eprintln!("without the table:");
    let answered = |body: &str| Reach::Answered(body.to_string());
    expect(
        &in_c,
        "link-local host",
        metadata.addr,
        answered("link-local"),
    );
    expect(&in_c, "class E host", reserved.addr, answered("class-e"));

    let charm = Charm::new(SystemCommands);
    let table = TableName::new(&format!("ghr-ll-{id}")).unwrap();
    let _table_guard = TableGuard::new(SystemCommands, &table);
    let (_, listed) = charm
        .ensure(&spec(&table, &network.name, bridge_host, &[]))
        .unwrap();
    assert!(listed.contains("169.254.0.0/16"), "{listed}");
    eprintln!("with the table, empty denylist:");
    expect(&in_c, "link-local host", metadata.addr, Reach::Refused);
    expect(&in_c, "class E host", reserved.addr, Reach::Refused);
}

/// 0.0.0.0/8 and multicast cannot be sent to honestly (the kernel drops the first as a
/// martian and forwards no multicast without a multicast router): the loaded table
/// holds them in the fixed set, with an empty denylist, and nft accepts it.
#[test]
fn the_fixed_set_loads_with_every_range() {
    let Some(ns) = scratch_netns("f") else { return };
    let charm = Charm::new(InNetns(ns.name.clone()));
    let table = TableName::new("ghr-fw-fixed").unwrap();
    let host = Ipv4Addr::new(10, 216, 1, 1);
    let (_, listed) = charm.ensure(&spec(&table, "ghrbr0", host, &[])).unwrap();
    let set = listed.split("set always-refused {").nth(1).unwrap();
    let set = &set[..set.find('}').unwrap()];
    for range in github_runner::firewall::ALWAYS_REFUSED {
        assert!(set.contains(range), "{range} in {set}");
    }
    let denylist = listed.split("set denylist {").nth(1).unwrap();
    assert!(!denylist[..denylist.find('}').unwrap()].contains("elements"));
}

/// The boot unit as install writes it passes systemd's own check (where systemd-analyze
/// is installed; CI has it).
#[test]
fn the_boot_unit_passes_systemd_analyze_verify() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip("systemd-analyze is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let name = github_runner::firewall::boot::BOOT_UNIT;
    let unit = github_runner::firewall::boot::render_boot_unit(std::path::Path::new(
        "/var/lib/github-runner/firewall.nft",
    ));
    std::fs::write(dir.path().join(name), unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no", name])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}
