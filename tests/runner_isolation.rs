//! Runner instances as the charm lays them out, on the real LXD test daemon: every NIC
//! a runner gets is hardened, so a runner that spoofs its IPv4 address or takes another
//! MAC (another unit's, whose firewall would judge it by that MAC) reaches nothing;
//! container runners each get an id map of their own where root's subordinate ids
//! allow it (the shared map otherwise), and still run jobs.

mod firewall_support;
mod harness;
mod lab;

use std::net::TcpListener;
use std::time::Duration;

use firewall_support::{poll, timed_cleanup, Lxd};
use github_runner::config::CharmConfig;
use github_runner::runner::layout::{HostFacts, Idmap, InstanceLayout, NIC_HARDENING};
use github_runner::runner::lxd_host::ensure_profiles;
use github_runner::runner::{RunnerName, RunnerPrefix};
use lab::{serial, Lab, Unit, BRIDGE_IP};
use lxd_client::LxdClient;
use serde_json::{json, Value};

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);
/// An address on the test bridge that no instance is given (LXD hands out the low ones).
const SPOOFED: &str = "10.216.1.250";
/// A MAC in slot 5's range: another unit's runner's, as far as nftables can tell.
const OTHER_UNITS_MAC: &str = "0a:05:12:34:56:78";

fn instance(lxd: &Lxd, name: &str) -> Value {
    serde_json::from_str(
        &lxd.lxc(&["query", &format!("/1.0/instances/{name}")])
            .unwrap(),
    )
    .unwrap()
}

/// Runs `script` in the instance; whether it exited 0.
fn in_instance(lxd: &Lxd, name: &str, script: &str) -> bool {
    lxd.lxc_output(&["exec", name, "--", "sh", "-c", script])
        .unwrap()
        .status
        .success()
}

/// Instances and profiles launched straight from a layout, removed on drop.
struct Launched {
    lxd: Lxd,
    instances: Vec<String>,
    profiles: Vec<String>,
}

impl Drop for Launched {
    fn drop(&mut self) {
        timed_cleanup("layout instances", || {
            for name in &self.instances {
                let _ = self.lxd.lxc(&["delete", "--force", name]);
            }
            for profile in &self.profiles {
                let _ = self.lxd.lxc(&["profile", "delete", profile]);
            }
        });
    }
}

/// One container laid out by the charm's own code for a unit of `app`, launched on the
/// test bridge and pool, as a reconcile launches it.
fn launch_from_layout(lxd: &Lxd, app: &str, test_mode: &str, guard: &mut Launched) -> String {
    let config = CharmConfig::from_json(&json!({
        "path": REPO, "token": "ghp_notUsedHere", "runner-instance-type": "container",
        "runner-image": lxd.image, "vm-cpu": 1, "vm-memory": "1GiB", "vm-disk": "1GiB",
        "test-mode": test_mode,
    }))
    .unwrap();
    let prefix = RunnerPrefix::from_unit(&format!("{app}/0"));
    let host = HostFacts {
        pool: std::env::var("GHR_TEST_POOL").unwrap_or_else(|_| "ghr-pool".into()),
        cpus: 2,
        network: std::env::var("GHR_TEST_BRIDGE").unwrap_or_else(|_| "ghrbr0".into()),
        idmap: Idmap::Shared,
        site: github_runner::host::site::UnitSite::new(&format!("{app}/0"), 0, false),
    };
    let layout = InstanceLayout::from_config(&config, &prefix, &host);
    let name = RunnerName::new(format!("{}00000001", prefix.as_str()));
    guard.instances.push(name.as_str().to_string());
    guard
        .profiles
        .extend(layout.own_profiles.iter().map(|p| p.name.clone()));
    let client = LxdClient::new(format!("{}/unix.socket", lxd.dir));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(ensure_profiles(&client, &layout.own_profiles))
        .unwrap();
    runtime
        .block_on(client.launch(&layout.spec(&name)))
        .unwrap();
    name.as_str().to_string()
}

/// The NIC devices LXD gives the instance from all its profiles.
fn expanded_nics(instance: &Value) -> Vec<(String, Value)> {
    instance["expanded_devices"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, d)| d["type"] == json!("nic"))
        .map(|(k, d)| (k.clone(), d.clone()))
        .collect()
}

/// Whether the instance reaches the host's listener on the bridge from `source`.
fn reaches_host(lxd: &Lxd, name: &str, port: u16, source: Option<&str>) -> bool {
    let from = source.map(|s| format!("-s {s} ")).unwrap_or_default();
    in_instance(lxd, name, &format!("nc -z -w 5 {from}{BRIDGE_IP} {port}"))
}

#[test]
fn every_runner_nic_is_hardened_and_a_spoofed_address_reaches_nothing() {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let listener = TcpListener::bind((BRIDGE_IP, 0)).expect("the test bridge's address");
    let port = listener.local_addr().unwrap().port();
    let mut guard = Launched {
        lxd: lxd.clone(),
        instances: Vec::new(),
        profiles: Vec::new(),
    };
    // Hardened as a production unit has it; test-mode=insecure shows the same spoof
    // would get through without the keys (the testbed's `default` NIC has none).
    for (app, test_mode, hardened) in [("ghr-nic", "", true), ("ghr-nicoff", "insecure", false)] {
        let name = launch_from_layout(&lxd, app, test_mode, &mut guard);
        let got = instance(&lxd, &name);
        let profiles = got["profiles"].as_array().unwrap();
        assert!(!profiles.contains(&json!("default")), "{profiles:?}");
        let nics = expanded_nics(&got);
        assert!(!nics.is_empty(), "{got}");
        for (device, nic) in &nics {
            for key in NIC_HARDENING {
                let set = nic[key] == json!("true");
                assert_eq!(set, hardened, "{name} {device} {key}: {nic}");
            }
        }
        poll(SETTLE, &format!("{name}'s DHCP address"), || {
            in_instance(
                &lxd,
                &name,
                "ip -4 -o addr show dev eth0 | grep -q 'inet 10.216.1.'",
            )
            .then_some(())
        });
        assert!(
            reaches_host(&lxd, &name, port, None),
            "{name} cannot reach the host from its own address"
        );
        assert!(
            in_instance(&lxd, &name, &format!("ip addr add {SPOOFED}/24 dev eth0")),
            "{name}: root in the runner adds an address"
        );
        assert_eq!(
            reaches_host(&lxd, &name, port, Some(SPOOFED)),
            !hardened,
            "{name} (hardened: {hardened}) from the spoofed {SPOOFED}"
        );
        let mac = got["config"]["volatile.eth0.hwaddr"].as_str().unwrap_or("");
        assert!(
            mac.starts_with("0a:00:"),
            "{name}: the unit's MAC range: {mac}"
        );
        assert_eq!(
            reaches_host_as(&lxd, &name, port, OTHER_UNITS_MAC),
            !hardened,
            "{name} (hardened: {hardened}) with another unit's MAC"
        );
    }
    drop(listener);
}

/// Whether the instance, its NIC given `mac` by root inside it, still reaches the host
/// from its own address. The host forgets the old MAC first, so an answer can only
/// come back through a neighbour entry learnt for the new one.
fn reaches_host_as(lxd: &Lxd, name: &str, port: u16, mac: &str) -> bool {
    let ip = lxd
        .lxc_output(&[
            "exec",
            name,
            "--",
            "sh",
            "-c",
            "ip -4 -o addr show dev eth0 scope global",
        ])
        .unwrap();
    let text = String::from_utf8_lossy(&ip.stdout);
    let own = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("the runner's address")
        .to_string();
    let changed = format!("ip addr del {SPOOFED}/24 dev eth0; ip link set eth0 address {mac}");
    assert!(
        in_instance(lxd, name, &changed),
        "{name}: root changes its MAC"
    );
    let bridge = std::env::var("GHR_TEST_BRIDGE").unwrap_or_else(|_| "ghrbr0".into());
    firewall_support::run(&["ip", "neigh", "flush", "dev", &bridge, "to", &own]).unwrap();
    reaches_host(lxd, name, port, Some(&own))
}

/// Gives the unit's (relocated) host files root's subordinate id ranges.
fn give_subids(unit: &Unit, subuid: &str, subgid: &str) {
    let etc = unit.root().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("subuid"), subuid).unwrap();
    std::fs::write(etc.join("subgid"), subgid).unwrap();
}

/// The host uid that root in the instance is, from its init process.
fn host_root_uid(lxd: &Lxd, name: &str) -> u64 {
    let state: Value = serde_json::from_str(
        &lxd.lxc(&["query", &format!("/1.0/instances/{name}/state")])
            .unwrap(),
    )
    .unwrap();
    let pid = state["pid"].as_u64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    uid.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn idmap_base(instance: &Value) -> u64 {
    instance["config"]["volatile.idmap.base"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap()
}

#[test]
fn container_runners_get_id_maps_of_their_own_and_still_run_jobs() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    // The daemon's own ranges (scripts/testbed.sh gives root room for 128 runners).
    let host_subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let host_subgid = std::fs::read_to_string("/etc/subgid").unwrap_or_default();
    let unit = lab.unit("ghr-idmap", json!({"path": REPO, "virtual-machines": 2}));
    give_subids(&unit, &host_subuid, &host_subgid);
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 2, SETTLE);

    let names = unit.instances();
    assert_eq!(names.len(), 2, "{names:?}");
    let mut bases = Vec::new();
    let mut uids = Vec::new();
    for name in &names {
        let got = instance(&lab.lxd, name);
        assert_eq!(
            got["expanded_config"]["security.idmap.isolated"],
            json!("true"),
            "{got}"
        );
        bases.push(idmap_base(&got));
        uids.push(host_root_uid(&lab.lxd, name));
    }
    assert!(bases.iter().all(|b| *b > 0), "{bases:?}");
    assert_ne!(bases[0], bases[1], "two runners share an id map");
    assert_ne!(uids[0], uids[1], "root of two runners is one host user");
    assert_eq!(bases, uids, "root in a runner is the first id of its map");

    let job = sim.queue_job(
        REPO,
        &["ghr-idmap"],
        &["echo ran > /tmp/step-ran", "test -f /tmp/step-ran"],
    );
    let done = sim.wait_job(job, "completed", SETTLE);
    assert_eq!(done["conclusion"], json!("success"), "{done}");

    // Where root's range has no room for a map per runner, runners share one and the
    // log says why.
    let short = "root:100000:131072\n";
    let shared = lab.unit("ghr-idshared", json!({"path": REPO, "virtual-machines": 2}));
    give_subids(&shared, short, short);
    shared.run("hooks/config-changed");
    shared.wait_pool(sim, 2, SETTLE);
    for name in shared.instances() {
        let got = instance(&lab.lxd, &name);
        assert_eq!(idmap_base(&got), 0, "{got}");
        assert!(
            got["expanded_config"]
                .get("security.idmap.isolated")
                .is_none(),
            "{got}"
        );
    }
    let logs = shared.h.logs();
    assert!(
        logs.iter().any(|(_, m)| m.contains("share one id map")
            && m.contains("/etc/subuid")
            && m.contains("131072")),
        "{logs:#?}"
    );
}
