//! The audit's case: a NEW application deployed on a machine that still holds an OLD
//! single-unit application must not seize the old layout. The owner is the unit whose
//! LXD pool sits on that layout's pool directory, and only it. On one machine root, the
//! real LXD test daemon, the host's nftables and the simulator:
//! 1. `github-runner/0` runs the charm of the last single-unit version (built from git,
//!    `lab::upgrade`): one idle runner behind the old table and policy service;
//! 2. `newapp/0` (this build) installs and is configured beside it: slot 1, not the
//!    layout's owner; it blocks naming the earlier version, makes no runner, asks for
//!    no reboot (a package asked for one) and leaves the old layout as it was;
//! 3. `github-runner/0` is refreshed to this build: its upgrade-charm takes the layout
//!    over (slot 0, legacy, the old table gone);
//! 4. `newapp/0`'s next config-changed makes its runner (a MAC of slot 1, its own table
//!    and policy service on 8081), whose job passes the check at that service.

mod firewall_support;
mod harness;
mod lab;

use std::path::Path;
use std::time::Duration;

use firewall_support::poll;
use lab::machine::{Machine, Member};
use lab::upgrade::beside::{OldLayout, RebootPending};
use lab::upgrade::{self, bridge_port, registration, UpgradeUnit, OLD_POLICY_STATE};
use lab::upgrade::{OLD_POLICY_UNIT, OLD_TABLE, PREFIX, UNIT};
use lab::Sim;
use serde_json::{json, Value};

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(180);
const ROOMY_KIB: u64 = 64 * 1024 * 1024;
const NEW_APP_UNIT: &str = "newapp/0";
/// What `github-runner/0` is named by once it runs this build.
const OWN_TABLE: &str = "github-runner-github-runner-0";
const OWN_POLICY_UNIT: &str = "github-runner-policy-github-runner-0.service";
const OWN_POLICY_STATE: &str = "github-runner-policy-github-runner-0";
const OLD_POOL: &str = "/var/lib/github-runner/pool";
/// newapp/0's table once it has slot 1.
const NEWAPP_TABLE: &str = "github-runner-newapp-0";
const SLOT_1_MACS: &str = "ether saddr 0a:01:00:00:00:00-0a:01:ff:ff:ff:ff";

fn config() -> Value {
    json!({"path": REPO, "virtual-machines": 1})
}

#[test]
fn a_new_application_beside_the_single_unit_layout_waits_until_that_one_is_refreshed() {
    // Before the lab is taken: the first build takes minutes.
    let Some(old) = upgrade::old_charm() else {
        return;
    };
    let _serial = lab::serial();
    let Some(lxd) = lab::lxd() else { return };
    for name in [OLD_TABLE, OWN_TABLE, NEWAPP_TABLE] {
        let leftover = upgrade::table(name).is_some();
        assert!(!leftover, "table inet {name} is already on this host");
    }
    let sim = Sim::start(&["acme"], &[REPO]);
    // Dropped before the machine: the units unmount their pools under its root.
    let machine = Machine::new(ROOMY_KIB);
    let mut old_unit = UpgradeUnit::new(machine.root(), &lxd, &old);
    old_unit.configure(&sim, config());
    let old_runner = old_layout(&mut old_unit, &sim);
    let mut new_unit = machine.unit(&lxd, NEW_APP_UNIT, &sim, config());

    new_unit_waits(&new_unit, &old_unit, &sim, &old_runner);
    owner_takes_over(&machine, &mut old_unit, &sim);
    new_unit_runs(&mut new_unit, &old_unit, &sim);
}

/// The old charm's install, its policy service started from the unit file it wrote,
/// config-changed: one idle online runner behind the old table, and the unit's LXD pool
/// on the old pool directory (what makes it the layout's owner). Returns the runner.
fn old_layout(unit: &mut UpgradeUnit, sim: &Sim) -> String {
    unit.run("hooks/install");
    let policy = unit.start_policy(OLD_POLICY_UNIT, OLD_POLICY_STATE);
    assert_eq!(policy.bind, bridge_port(8080));
    policy.set_policy(lab::permissive_policy());
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 1, SETTLE);
    assert!(
        upgrade::table(OLD_TABLE).is_some(),
        "no table inet {OLD_TABLE}"
    );
    let old_pool = unit.path(OLD_POOL).display().to_string();
    assert_eq!(unit.pool_source(), old_pool);
    let mut runners = unit.instances();
    assert_eq!(runners.len(), 1, "{runners:?}");
    let runner = runners.remove(0);
    let mac = unit.hwaddr(&runner);
    eprintln!("old layout: runner {runner} ({mac})");
    runner
}

/// newapp/0's install and config-changed (then a reconcile) beside the old layout: it
/// takes slot 1 and is no owner, blocks naming the earlier version, makes no runner,
/// asks for no reboot although a package asked for one, and the old layout (files,
/// table, policy process and its answers, runner) stays as it was.
fn new_unit_waits(new: &Member, old: &UpgradeUnit, sim: &Sim, old_runner: &str) {
    let before = OldLayout::take(old);
    let old_registration = registration(sim, old_runner).expect("the old runner's");
    let pending = RebootPending::new(old);
    new.run("hooks/install");
    let reboots = new.h.reboots();
    assert!(
        reboots.is_empty(),
        "{} asked for a reboot beside another application: {reboots:?}\nlogs: {:#?}",
        new.name,
        new.h.logs()
    );
    drop(pending);
    let entry = new.entry();
    let slot = (&entry["slot"], &entry["legacy"]);
    assert_eq!(slot, (&json!(1), &json!(false)), "{entry}");

    for event in ["hooks/config-changed", "reconcile-runners"] {
        let run = new.h.run(event);
        let status = new.h.last_status();
        eprintln!("  {} after {event}: {status:?}", new.name);
        let (status, message) = status.expect("a status");
        assert_eq!(status, "blocked", "{message}\n{}", run.stderr());
        for words in [
            "earlier github-runner version",
            "refresh that application first",
        ] {
            assert!(message.contains(words), "{words:?} not in {message:?}");
        }
        assert_eq!(new.instances(), Vec::<String>::new(), "after {event}");
        let registered = sim.runners(&new.prefix);
        assert!(registered.is_empty(), "after {event}: {registered:?}");
    }
    assert_eq!(new.entry()["slot"], json!(1), "slot kept");
    old_layout_untouched(old, sim, &before, &old_registration);
}

/// The old layout as `before`, its policy service answering /health on 127.0.0.1:8080
/// and its runner the same registration, online and idle.
fn old_layout_untouched(old: &UpgradeUnit, sim: &Sim, before: &OldLayout, reg: &Value) {
    before.assert_same(old);
    let policy = old.policy.as_ref().unwrap();
    assert_eq!(policy.charm_bind, "127.0.0.1:8080".parse().unwrap());
    let health = policy.health();
    assert_eq!(health, Ok(()), "the old policy service's /health");
    let runner = reg["name"].as_str().unwrap();
    assert_eq!(old.instances(), vec![runner.to_string()]);
    let now = registration(sim, runner).expect("the old runner's registration");
    assert_eq!(now["id"], reg["id"], "re-registered: {now}");
    let state = (&now["online"], &now["busy"]);
    assert_eq!(state, (&json!(true), &json!(false)), "{now}");
}

/// github-runner/0 refreshed to this build, its upgrade-charm run with systemd's part
/// played: it is the owner (slot 0, legacy), the old table and policy unit are gone,
/// and its idle runner is replaced by one with a MAC of slot 0.
fn owner_takes_over(machine: &Machine, unit: &mut UpgradeUnit, sim: &Sim) {
    let binary = Path::new(env!("CARGO_BIN_EXE_github-runner"));
    let upgraded = unit.upgrade(binary, OWN_POLICY_UNIT, OWN_POLICY_STATE);
    for (level, message) in &unit.h.logs() {
        eprintln!("  upgrade-charm {level}: {message}");
    }
    assert!(upgraded.status.success(), "{}", upgraded.status);
    let registry = machine.registry();
    let entry = &registry["units"][UNIT];
    let slot = (&entry["slot"], &entry["legacy"]);
    assert_eq!(slot, (&json!(0), &json!(true)), "{registry}");
    assert_eq!(
        upgrade::table(OLD_TABLE),
        None,
        "table inet {OLD_TABLE} left"
    );
    assert!(upgrade::table(OWN_TABLE).is_some(), "no table {OWN_TABLE}");
    assert!(!unit.unit_file(OLD_POLICY_UNIT).exists());
    let what = "github-runner/0's runner of this build, online and idle";
    let runner = poll(SETTLE, what, || {
        let instances = unit.instances();
        let [one] = instances.as_slice() else {
            return None;
        };
        let reg = registration(sim, one)?;
        let idle = reg["online"] == json!(true) && reg["busy"] == json!(false);
        (idle && unit.hwaddr(one).starts_with("0a:00:")).then(|| one.clone())
    });
    eprintln!(
        "github-runner/0 now runs {runner} ({})",
        unit.hwaddr(&runner)
    );
}

/// newapp/0's next config-changed, its policy service started from its unit file: one
/// idle runner with a MAC of slot 1 behind its own table, whose job passes the check at
/// its service on 8081 (not github-runner/0's on 8080); github-runner/0 keeps its one.
fn new_unit_runs(new: &mut Member, old: &UpgradeUnit, sim: &Sim) {
    let policy = new.start_policy();
    assert_eq!((policy.port, policy.bind), (8081, bridge_port(8081)));
    new.run("hooks/config-changed");
    new.wait_pool(sim, 1, SETTLE);
    let (status, message) = new.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");
    let runner = new.instances().remove(0);
    let mac = new.hwaddr(&runner);
    assert!(mac.starts_with("0a:01:"), "{runner}: {mac}");
    assert_eq!(new.table_name(), NEWAPP_TABLE);
    let table = new
        .table()
        .unwrap_or_else(|| panic!("no table {NEWAPP_TABLE}"));
    assert!(table.contains(SLOT_1_MACS), "{table}");
    assert!(table.contains("8081") && !table.contains("8080"), "{table}");
    let unit_file = std::fs::read_to_string(new.unit_file("github-runner-policy", "service"));
    let bind = format!(" --bind {} ", bridge_port(8081));
    assert!(unit_file.unwrap().contains(&bind), "{bind}");
    eprintln!("newapp/0 runs {runner} ({mac})");

    let own_policy = old.policy.as_ref().unwrap();
    let (passes, old_passes) = (new.policy().passes(), own_policy.passes());
    let job = sim.queue_job(REPO, &["newapp"], &["echo ran on $(hostname)"]);
    let done = sim.wait_job(job, "completed", SETTLE);
    let log = new.policy().log_text();
    assert_eq!(done["conclusion"], json!("success"), "{done}\n{log}");
    assert_eq!(done["runner_name"], json!(runner), "{done}");
    assert_eq!(new.policy().passes(), passes + 1, "checked at 8081: {log}");
    assert_eq!(own_policy.passes(), old_passes, "not at github-runner/0's");
    assert_eq!(sim.online_idle(PREFIX), 1, "{:?}", sim.runners(PREFIX));
    assert_eq!(old.instances().len(), 1, "{:?}", old.instances());
}
