//! Issue 14's acceptance test: three units (a/0 and a/1 of application `a`, b/0 of
//! `b`) on one machine, each driven as Juju would with a hook context of its own but
//! one file root, the real LXD test daemon and the host's nftables. Each unit keeps its
//! own slot, pool, policy service (port 8080 + slot) and table (its runners matched by
//! their MAC prefix); the denylist is per application, proven with packets; a flush, a
//! removal and the machine's memory cap each touch only the unit they concern.

mod firewall_support;
mod harness;
mod lab;

use std::net::SocketAddr;
use std::time::Duration;

use firewall_support::{expect, poll, reach, Reach};
use lab::hosts::Host;
use lab::machine::{Machine, Member, GIB};
use lab::Sim;
use serde_json::{json, Value};

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(180);
/// 64 GiB: room for every runner until the capacity step.
const ROOMY_KIB: u64 = 64 * 1024 * 1024;
/// What a runner claims: vm-memory + vm-disk.
const RUNNER_BYTES: u64 = 2 * GIB;

fn config(denied: &Host, runners: u32) -> Value {
    json!({"path": REPO, "virtual-machines": runners, "denylist": denied.cidr})
}

#[test]
fn units_on_one_machine_keep_to_their_own_runners_firewall_and_policy_service() {
    let _serial = lab::serial();
    let Some(lxd) = lab::lxd() else { return };
    // The simulator adds the unreachable route that guards the hosts' addresses.
    let sim = Sim::start(&["acme"], &[REPO]);
    let seed = std::process::id() % 100_000;
    let x = Host::start("co", "x", seed + 150);
    let y = Host::start("co", "y", seed + 170);
    let machine = Machine::new(ROOMY_KIB);
    let mut units = [("a/0", &x), ("a/1", &x), ("b/0", &y)]
        .map(|(name, denied)| machine.unit(&lxd, name, &sim, config(denied, 1)));

    bring_up(&machine, &sim, &mut units);
    let [a0, a1, b0] = &mut units;
    denylist_is_per_application(a0, b0, &x, &y);
    policy_services_are_per_unit(b0, &[&*a0, &*a1]);
    jobs_run_on_every_unit(&sim, &[&*a0, &*a1, &*b0]);
    a_flush_stays_within_its_unit(a0, &[&*a1, &*b0]);
    removal_takes_only_its_own(&machine, &sim, a1, &[&*a0, &*b0]);
    still_judged_after_its_sibling_left(a0, &x, &y);
    capacity_caps_the_pool(&machine, &sim, b0, &y);
}

/// install, then config-changed and start, for each unit: slots in install order, a
/// charm token, policy service, table and pool of each unit's own.
fn bring_up(machine: &Machine, sim: &Sim, units: &mut [Member]) {
    for u in units.iter() {
        u.run("hooks/install");
    }
    let mut tokens = Vec::new();
    for (slot, u) in units.iter_mut().enumerate() {
        let entry = u.entry();
        assert_eq!(
            (&entry["slot"], &entry["legacy"]),
            (&json!(slot), &json!(false)),
            "{}",
            u.name
        );
        let token = std::fs::read_to_string(u.state_dir().join("charm-token")).unwrap();
        let token = token.trim().to_string();
        assert!(
            token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit()),
            "{token}"
        );
        let unit = std::fs::read_to_string(u.unit_file("github-runner-policy", "service"));
        let unit = unit.unwrap();
        let env_file = format!("/var/lib/github-runner/units/{}/policy-server.env", u.key);
        assert!(
            unit.contains(&format!("\nEnvironmentFile={env_file}\n")),
            "{unit}"
        );
        assert!(unit.contains(&format!(
            "\nStateDirectory=github-runner-policy-{}\n",
            u.key
        )));
        let policy = u.start_policy();
        assert_eq!(policy.port, 8080 + slot as u16);
        assert_eq!(
            policy.bind,
            SocketAddr::new(lab::BRIDGE_IP.parse().unwrap(), policy.port)
        );
        assert_eq!(policy.env.get("CHARM_TOKEN"), Some(&token));
        assert_eq!(policy.env.get("GITHUB_URL"), Some(&sim.url));
        tokens.push(token);
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(
        tokens.len(),
        units.len(),
        "every unit has its own charm token"
    );
    for u in units.iter() {
        u.run("hooks/config-changed");
        u.run("hooks/start");
    }
    for u in units.iter() {
        u.wait_pool(sim, 1, SETTLE);
        assert_own_network(u);
        let entry = u.entry();
        assert_eq!(entry["runners"], json!(1), "{entry}");
        assert_eq!(entry["claim_bytes"], json!(RUNNER_BYTES), "{entry}");
        assert!(u.pool_mounted(), "{}'s tmpfs", u.name);
        assert!(u.unit_file("ghr-reconcile", "timer").is_file());
        assert!(u.unit_file("github-runner-firewall", "service").is_file());
    }
    assert_eq!(
        machine.registry()["units"].as_object().unwrap().len(),
        units.len()
    );
}

/// The unit's runners carry its slot in their MAC, which its table matches them by.
fn assert_own_network(u: &Member) {
    let slot = format!("{:02x}", u.slot());
    for instance in u.instances() {
        let mac = u.hwaddr(&instance);
        assert!(mac.starts_with(&format!("0a:{slot}:")), "{instance}: {mac}");
    }
    let table = u
        .table()
        .unwrap_or_else(|| panic!("no table {}", u.table_name()));
    let range = format!("ether saddr 0a:{slot}:00:00:00:00-0a:{slot}:ff:ff:ff:ff");
    assert!(table.contains(&range), "{table}");
    assert!(
        table.contains(&format!("iifname \"{}\"", lab_bridge())),
        "{table}"
    );
}

fn lab_bridge() -> String {
    std::env::var("GHR_TEST_BRIDGE").unwrap_or_else(|_| "ghrbr0".into())
}

/// a's denylist names X and b's names Y: each application's runners are refused only
/// the host its own denylist names.
fn denylist_is_per_application(a: &Member, b: &Member, x: &Host, y: &Host) {
    let a_runner = a.instances().remove(0);
    let from_a = a.exec(&a_runner);
    expect(&from_a, "X, on a's denylist", x.addr(), Reach::Refused);
    expect(
        &from_a,
        "Y, not on a's",
        y.addr(),
        Reach::Answered("y".into()),
    );
    let b_runner = b.instances().remove(0);
    let from_b = b.exec(&b_runner);
    expect(&from_b, "Y, on b's denylist", y.addr(), Reach::Refused);
    expect(
        &from_b,
        "X, not on b's",
        x.addr(),
        Reach::Answered("x".into()),
    );
}

/// A runner reaches its own unit's policy service on the bridge, no other unit's.
fn policy_services_are_per_unit(b: &Member, others: &[&Member]) {
    let runner = b.instances().remove(0);
    let from_b = b.exec(&runner);
    for other in others {
        let what = format!("{}'s policy service", other.name);
        expect(&from_b, &what, other.policy().bind, Reach::Refused);
    }
    let (got, _) = reach(&from_b, b.policy().bind, 10);
    assert!(
        matches!(got, Reach::Answered(_)),
        "its own policy service: {got:?}"
    );
}

/// Jobs routed by application label run on every unit, each checked by the policy
/// service of the unit whose runner took it; the timer's reconcile refills the pools.
fn jobs_run_on_every_unit(sim: &Sim, units: &[&Member]) {
    let passes: Vec<usize> = units.iter().map(|u| u.policy().passes()).collect();
    // One runner per unit and no reconcile meanwhile: each runner takes one job, so
    // a's two jobs run one on a/0 and one on a/1.
    let jobs: Vec<u64> = ["a", "a", "b"]
        .iter()
        .map(|app| sim.queue_job(REPO, &[app], &["echo ran on $(hostname)"]))
        .collect();
    let ran_on: Vec<String> = jobs
        .iter()
        .map(|id| {
            let done = sim.wait_job(*id, "completed", SETTLE);
            assert_eq!(done["conclusion"], json!("success"), "{done}");
            done["runner_name"].as_str().unwrap().to_string()
        })
        .collect();
    for (u, before) in units.iter().zip(passes) {
        let mine = ran_on.iter().filter(|r| r.starts_with(&u.prefix)).count();
        assert_eq!(mine, 1, "{} ran {mine} of {ran_on:?}", u.name);
        assert_eq!(u.policy().passes(), before + 1, "{}", u.policy().log_text());
    }
    for u in units {
        poll(SETTLE, "the used runner's instance to go", || {
            (!u.instances().iter().any(|i| ran_on.contains(i))).then_some(())
        });
        u.run("reconcile-runners");
    }
    for u in units {
        u.wait_pool(sim, 1, SETTLE);
    }
}

/// flush-runners on a/0 replaces a/0's runner and leaves every other unit's alone.
fn a_flush_stays_within_its_unit(a0: &Member, others: &[&Member]) {
    let before: Vec<Vec<String>> = others.iter().map(|u| u.instances()).collect();
    let flushed = a0.instances();
    a0.h.set_action_params(json!({"flush-busy": true}));
    a0.run("actions/flush-runners");
    let now = a0.instances();
    assert!(
        flushed.iter().all(|i| !now.contains(i)),
        "{flushed:?} -> {now:?}"
    );
    let after: Vec<Vec<String>> = others.iter().map(|u| u.instances()).collect();
    assert_eq!(after, before);
}

/// stop and remove on a/1 take its runners, policy service, table, boot unit, pool,
/// tmpfs and registry entry, and nothing of the others, which keep serving jobs.
fn removal_takes_only_its_own(machine: &Machine, sim: &Sim, a1: &mut Member, others: &[&Member]) {
    for u in others {
        u.wait_pool(sim, 1, SETTLE);
    }
    let kept: Vec<Vec<String>> = others.iter().map(|u| u.instances()).collect();
    a1.h.clear_calls();
    a1.run("hooks/stop");
    a1.run("hooks/remove");
    let systemctl: Vec<String> =
        a1.h.calls_of("systemctl")
            .map(|c| c.args.join(" "))
            .collect();
    let disable = format!("disable --now github-runner-policy-{}.service", a1.key);
    assert!(systemctl.contains(&disable), "{systemctl:?}");
    for other in others {
        let touched = systemctl
            .iter()
            .find(|c| c.contains(&format!("-{}.", other.key)));
        assert_eq!(touched, None, "{systemctl:?}");
    }
    // What systemd's `disable --now` ends.
    a1.stop_policy();
    assert_eq!(a1.instances(), Vec::<String>::new());
    assert!(
        sim.runners(&a1.prefix).is_empty(),
        "{:?}",
        sim.runners(&a1.prefix)
    );
    assert_eq!(a1.table(), None, "{} left", a1.table_name());
    for (base, suffix) in [
        ("github-runner-policy", "service"),
        ("github-runner-firewall", "service"),
        ("ghr-reconcile", "timer"),
    ] {
        assert!(
            !a1.unit_file(base, suffix).exists(),
            "{base}-{}.{suffix} left",
            a1.key
        );
    }
    assert!(
        a1.lxd.lxc(&["storage", "show", &a1.pool_name()]).is_err(),
        "pool left"
    );
    assert!(!a1.pool_mounted(), "tmpfs left");
    assert_eq!(a1.entry(), Value::Null, "{}", machine.registry());

    for (u, kept) in others.iter().zip(kept) {
        assert_eq!(u.instances(), kept, "{}", u.name);
        assert_eq!(sim.online_idle(&u.prefix), 1, "{}", u.name);
        assert_own_network(u);
        assert!(u.unit_file("github-runner-policy", "service").is_file());
        assert!(u.lxd.lxc(&["storage", "show", &u.pool_name()]).is_ok());
        assert!(u.pool_mounted() && u.entry().is_object(), "{}", u.name);
    }
    let b0 = others.iter().find(|u| u.name == "b/0").unwrap();
    let passes = b0.policy().passes();
    let job = sim.queue_job(REPO, &["b"], &["echo still here"]);
    let done = sim.wait_job(job, "completed", SETTLE);
    assert_eq!(done["conclusion"], json!("success"), "{done}");
    assert!(done["runner_name"]
        .as_str()
        .unwrap()
        .starts_with(&b0.prefix));
    assert_eq!(b0.policy().passes(), passes + 1, "checked before it ran");
    let used = done["runner_name"].as_str().unwrap().to_string();
    poll(SETTLE, "the used runner's instance to go", || {
        (!b0.instances().contains(&used)).then_some(())
    });
}

/// a/1's removal took its own table only: a/0's runner (same application) is still
/// refused what a's denylist names and reaches its own policy service.
fn still_judged_after_its_sibling_left(a0: &Member, x: &Host, y: &Host) {
    let runner = a0.instances().remove(0);
    let from_a0 = a0.exec(&runner);
    expect(&from_a0, "X, on a's denylist", x.addr(), Reach::Refused);
    expect(&from_a0, "Y", y.addr(), Reach::Answered("y".into()));
    let (got, _) = reach(&from_a0, a0.policy().bind, 10);
    assert!(
        matches!(got, Reach::Answered(_)),
        "a/0's policy service: {got:?}"
    );
}

/// With the machine's memory left room for one more runner beside a/0's, b/0 asking
/// for 3 gets that one, and its status names capacity.
fn capacity_caps_the_pool(machine: &Machine, sim: &Sim, b0: &Member, y: &Host) {
    // 5.5 GiB: the reserve is its 1 GiB floor, which leaves 4.5 GiB: a/0's runner
    // (2 GiB) and one of b/0's.
    let mem_total = 11 * GIB / 2;
    let usable = mem_total - GIB;
    machine.set_mem_total(mem_total / 1024);
    b0.configure(sim, config(y, 3));
    b0.run("hooks/config-changed");
    b0.wait_pool(sim, 1, SETTLE);
    for event in ["hooks/config-changed", "reconcile-runners"] {
        b0.run(event);
        assert_eq!(
            b0.instances().len(),
            1,
            "after {event}: {:?}",
            b0.instances()
        );
        assert!(
            sim.runners(&b0.prefix).len() <= 1,
            "{:?}",
            sim.runners(&b0.prefix)
        );
        let (status, message) = b0.h.last_status().unwrap();
        eprintln!("  b/0 after {event}: {status}: {message}");
        assert!(message.contains("capacity"), "after {event}: {message}");
    }
    let units = machine.registry()["units"].clone();
    let claimed: u64 = units
        .as_object()
        .unwrap()
        .values()
        .map(|u| u["claim_bytes"].as_u64().unwrap())
        .sum();
    assert!(claimed <= usable, "{claimed} claimed of {usable}: {units}");
    assert_eq!(units["b/0"]["runners"], json!(1), "{units}");
    b0.run("actions/check-runners");
    let results = b0.h.action_results();
    let result = |key: &str| results.get(key).cloned().unwrap_or_default();
    assert_eq!(
        [
            result("mode"),
            result("max-runners"),
            result("effective-max-runners"),
            result("limited-by")
        ],
        ["static", "3", "1", "host-capacity"],
        "{results:?}"
    );
}
