//! The unit's metrics endpoint is closed to runners, proven with real packets through
//! the unit's real table (`FirewallSpec::for_site`, rendered and loaded by the charm's
//! own `firewall::ensure`).
//!
//! Two network namespaces stand for the machine and a runner: the "host" holds the
//! runner bridge (address `BRIDGE_ADDR`), a second interface with the unit's own address
//! (`UNIT_ADDR`, where the manager serves metrics) and the table; the "runner" is a veth
//! on that bridge whose MAC the table matches. The two are linked only to each other,
//! so no test packet can leave them, and the machine's own tables are never touched.
//!
//! Every listener is first reached without the table, and the runner's own policy port
//! is still reached with it: a refusal is then the table's doing, not a dead setup.
//! 127.0.0.1 of the host is not tested: a runner has a loopback of its own.

mod firewall_support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use firewall_support::{
    answer, expect, poll, reach, root_and_tools, run, skip, Charm, FixtureError, InNetns, Netns,
    Reach, TableGuard,
};
use github_runner::firewall::{FirewallSpec, InterfaceName, TableName};
use github_runner::host::site::UnitSite;

/// The bridge's name inside the host namespace (names there are the namespace's own).
const BRIDGE: &str = "ghrbr0";
const BRIDGE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 216, 1, 1);
const RUNNER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 216, 1, 2);
/// The unit's address on the machine's other network (Juju's unit address).
const UNIT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 217, 1, 1);
/// A MAC LXD gives (its OUI 00:16:3e): a runner made before the charm assigned MACs.
const LXD_MAC: &str = "00:16:3e:12:34:56";

/// The machine and one runner on its bridge; deleting the host namespace deletes the
/// bridge, both veth pairs and the table with it.
struct Topology {
    host: Netns,
    runner: Netns,
}

impl Topology {
    fn build(tag: &str, runner_mac: &str) -> Result<Self, FixtureError> {
        let id = std::process::id();
        let topology = Topology {
            host: Netns::bare(&format!("ghrmf-{id}-{tag}-h"))?,
            runner: Netns::bare(&format!("ghrmf-{id}-{tag}-r"))?,
        };
        let (h, r) = (topology.host.name.as_str(), topology.runner.name.as_str());
        let bridge_addr = format!("{BRIDGE_ADDR}/24");
        let unit_addr = format!("{UNIT_ADDR}/24");
        let runner_addr = format!("{RUNNER_ADDR}/24");
        let gateway = BRIDGE_ADDR.to_string();
        for argv in [
            &["ip", "-n", h, "link", "set", "lo", "up"][..],
            &["ip", "-n", h, "link", "add", BRIDGE, "type", "bridge"],
            &["ip", "-n", h, "addr", "add", &bridge_addr, "dev", BRIDGE],
            &["ip", "-n", h, "link", "set", BRIDGE, "up"],
            // The runner's link: host end on the bridge, runner end named as in LXD.
            &[
                "ip", "-n", h, "link", "add", "rv0", "type", "veth", "peer", "name", "eth0",
                "netns", r,
            ],
            &["ip", "-n", h, "link", "set", "rv0", "master", BRIDGE, "up"],
            // The unit's own network: a veth pair kept inside the host (no dummy module).
            &[
                "ip", "-n", h, "link", "add", "unit0", "type", "veth", "peer", "name", "unit0p",
            ],
            &["ip", "-n", h, "addr", "add", &unit_addr, "dev", "unit0"],
            &["ip", "-n", h, "link", "set", "unit0p", "up"],
            &["ip", "-n", h, "link", "set", "unit0", "up"],
            &["ip", "-n", r, "link", "set", "lo", "up"],
            &["ip", "-n", r, "link", "set", "eth0", "address", runner_mac],
            &["ip", "-n", r, "addr", "add", &runner_addr, "dev", "eth0"],
            &["ip", "-n", r, "link", "set", "eth0", "up"],
            &["ip", "-n", r, "route", "add", "default", "via", &gateway],
        ] {
            run(argv)?;
        }
        Ok(topology)
    }

    /// Runs a command inside the runner, for [`reach`] and [`expect`].
    fn in_runner(&self) -> impl Fn(&[&str]) -> Output + '_ {
        move |argv| {
            Command::new("ip")
                .args(["netns", "exec", &self.runner.name])
                .args(argv)
                .output()
                .expect("ip netns exec")
        }
    }
}

/// A TCP server inside a namespace answering every request with `body`. Accept does not
/// block, so drop can stop it without a connection from inside the namespace.
struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn start(netns: &str, addr: SocketAddr, body: &'static str) -> Listener {
        let listener = bind_in(netns, addr);
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => answer(conn, body),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Listener {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `addr` inside `netns`: a thread enters the namespace (setns changes only the
/// calling thread) and hands the socket back; the socket stays in that namespace.
fn bind_in(netns: &str, addr: SocketAddr) -> TcpListener {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr} in {path}: {e}"))
    })
    .join()
    .expect("the binding thread")
}

/// One scenario: the units whose tables the machine holds, the runner's MAC and unit,
/// and the unit whose metrics port the runner tries.
struct Case {
    tag: &'static str,
    units: Vec<UnitSite>,
    runner_mac: String,
    /// Index in `units` of the runner's unit: its policy port must answer.
    runner_of: usize,
    /// Index in `units` of the unit whose metrics port is tried.
    metrics_of: usize,
}

/// Root, `ip`, `nft` and `curl` (the runner's client), or the skip (a failure in CI).
fn prerequisites() -> bool {
    let curl = Command::new("curl").arg("-V").output();
    match root_and_tools().and(curl.map(drop).map_err(FixtureError::io("curl"))) {
        Ok(()) => true,
        Err(reason) => {
            skip(reason);
            false
        }
    }
}

/// Loads `site`'s table as the charm does (production shape, the default empty
/// denylist) into the host namespace; returns nft's listing of it.
fn load_table(charm: &Charm, site: &UnitSite) -> String {
    let bridge = InterfaceName::new(BRIDGE).unwrap();
    let spec = FirewallSpec::for_site(site, bridge, BRIDGE_ADDR, vec![]).unwrap();
    charm.ensure(&spec).expect("the unit's table loads").1
}

fn metrics_port_is_closed_to_runners(case: Case) {
    if !prerequisites() {
        return;
    }
    let own = &case.units[case.runner_of];
    let target = &case.units[case.metrics_of];
    let topology = Topology::build(case.tag, &case.runner_mac).unwrap();
    let host = topology.host.name.clone();
    let metrics = target.metrics_port();
    let on_bridge = Listener::start(&host, (BRIDGE_ADDR, metrics).into(), "metrics-bridge");
    let on_unit = Listener::start(&host, (UNIT_ADDR, metrics).into(), "metrics-unit");
    let policy = Listener::start(&host, (BRIDGE_ADDR, own.policy_port()).into(), "policy");
    let from_runner = topology.in_runner();
    let answered = |body: &str| Reach::Answered(body.to_string());

    eprintln!(
        "{}: runner {} without any table:",
        case.tag, case.runner_mac
    );
    // A fresh bridge port may need a moment before it forwards: wait for the first answer.
    poll(Duration::from_secs(10), "the runner's first answer", || {
        (reach(&from_runner, policy.addr, 2).0 == answered("policy")).then_some(())
    });
    expect(
        &from_runner,
        "metrics, bridge",
        on_bridge.addr,
        answered("metrics-bridge"),
    );
    expect(
        &from_runner,
        "metrics, unit address",
        on_unit.addr,
        answered("metrics-unit"),
    );

    let charm = Charm::new(InNetns(host.clone()));
    let mut guards = Vec::new();
    for site in &case.units {
        let table = TableName::new(&site.table()).unwrap();
        guards.push(TableGuard::new(InNetns(host.clone()), &table));
        let listed = load_table(&charm, site);
        eprintln!("table {table} (slot {}) loaded:\n{listed}", site.slot);
    }
    let (unit, slot) = (target.key.as_str(), target.slot);
    eprintln!("with the tables, metrics port {metrics} of {unit} (slot {slot}):");
    expect(
        &from_runner,
        "own policy port",
        policy.addr,
        answered("policy"),
    );
    for listener in [&on_bridge, &on_unit] {
        let (got, took) = reach(&from_runner, listener.addr, 3);
        eprintln!("  metrics at {}: {got:?} in {took:?}", listener.addr);
        assert!(
            matches!(got, Reach::Refused | Reach::Dropped),
            "a runner reached the metrics endpoint at {}: {got:?}",
            listener.addr
        );
    }
}

#[test]
fn a_runner_cannot_reach_its_units_metrics_port() {
    // Slot 3, so the slot's offset is in both ports.
    let site = UnitSite::new("ghr-metrics/0", 3, false);
    metrics_port_is_closed_to_runners(Case {
        tag: "own",
        runner_mac: site.runner_mac("ghr-metrics-0-0000abcd"),
        units: vec![site],
        runner_of: 0,
        metrics_of: 0,
    });
}

/// The unit that took over the single-unit layout judges runners with LXD's MACs too.
#[test]
fn a_legacy_runner_cannot_reach_its_units_metrics_port() {
    metrics_port_is_closed_to_runners(Case {
        tag: "legacy",
        runner_mac: LXD_MAC.to_string(),
        units: vec![UnitSite::new("github-runner/0", 0, true)],
        runner_of: 0,
        metrics_of: 0,
    });
}

/// Another unit's runner is judged by its own unit's table, which opens only its own
/// policy port: a neighbour's metrics stay closed to it.
#[test]
fn a_runner_cannot_reach_another_units_metrics_port() {
    let (a, b) = (
        UnitSite::new("ghr-metrics-a/0", 3, false),
        UnitSite::new("ghr-metrics-b/0", 4, false),
    );
    metrics_port_is_closed_to_runners(Case {
        tag: "other",
        runner_mac: b.runner_mac("ghr-metrics-b-0-0000abcd"),
        units: vec![a, b],
        runner_of: 1,
        metrics_of: 0,
    });
}
