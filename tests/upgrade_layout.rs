//! Issue 14's last criterion: upgrading the charm on a machine where the single-unit
//! layout of earlier versions exists migrates it without losing a job. Unit
//! `github-runner/0` is driven as Juju would, first with the charm of the last such
//! version (built from git, `lab::upgrade`), then refreshed to this build and sent
//! upgrade-charm while one of its two runners runs a job, on one machine root, the real
//! LXD test daemon, the simulator and the host's nftables. The unit takes the layout
//! over (slot 0, its state, the old policy service's one-time tokens and policy, its
//! own table in place of the old one, its pool where LXD has it). The busy runner is
//! never flushed: it keeps its instance and registration, is judged by the unit's table
//! (its MAC is LXD's) and finishes its job. The idle runner is replaced, as on every
//! upgrade (so that idle runners carry the new charm's files), by one with a MAC of
//! the unit's slot, whose job passes the unit's own policy service.

mod firewall_support;
mod harness;
mod lab;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use firewall_support::poll;
use lab::machine::Machine;
use lab::upgrade::{self, bridge_port, registration, Host, UpgradeUnit, Upgraded, KEY};
use lab::upgrade::{OLD_BOOT_UNIT, OLD_POLICY_STATE, OLD_POLICY_UNIT, OLD_TABLE, UNIT};
use lab::Sim;
use serde_json::{json, Value};

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(180);
const ROOMY_KIB: u64 = 64 * 1024 * 1024;
const NEW_TABLE: &str = "github-runner-github-runner-0";
const NEW_POLICY_UNIT: &str = "github-runner-policy-github-runner-0.service";
const NEW_POLICY_STATE: &str = "github-runner-policy-github-runner-0";
const NEW_BOOT_UNIT: &str = "github-runner-firewall-github-runner-0.service";
/// Slot 0's runners, and every MAC no unit gives (LXD's, on runners made before).
const SLOT_MACS: &str = "ether saddr 0a:00:00:00:00:00-0a:00:ff:ff:ff:ff";
const LXD_MACS: &str = "ether saddr != 0a:00:00:00:00:00-0a:ff:ff:ff:ff:ff";
/// Where the old layout kept everything, and where the unit keeps its own.
const OLD_STATE: &str = "/var/lib/github-runner";
const OLD_POOL: &str = "/var/lib/github-runner/pool";
/// Files of the old layout the upgrade removes (the charm token moves).
const OLD_FILES: [&str; 4] = [
    "charm-token",
    "policy-server.env",
    "firewall.nft",
    "firewall.listing",
];
/// The busy runner's job holds until the test makes this file in its instance: the job
/// spans the upgrade however long that takes, and ends when the checks are done. The
/// timeout only bounds a job whose test died (its instance goes with the test anyway).
const RELEASE: &str = "/tmp/ghr-upgrade-release";

fn hold_step() -> String {
    format!("timeout 600 sh -c 'until [ -e {RELEASE} ]; do sleep 1; done'")
}

/// What the old charm left that the upgrade must keep or replace.
struct Before {
    charm_token: String,
    /// The runner whose job spans the upgrade, and the one idle meanwhile.
    busy: String,
    idle: String,
    /// The simulator's id of the busy runner's registration: the same id means kept.
    busy_id: Value,
    /// The old service's one-time token file (`DIGEST EXPIRY RUNNER` lines) and policy
    /// document, as the upgrade finds them.
    token_lines: Vec<String>,
    policy_json: String,
    /// The job the busy runner runs.
    job: u64,
}

fn config(denied: &Host) -> Value {
    json!({"path": REPO, "virtual-machines": 2, "denylist": denied.cidr})
}

#[test]
fn upgrading_the_single_unit_layout_keeps_busy_runners_their_firewall_and_the_policy_state() {
    // Before the lab is taken: the first build takes minutes.
    let Some(old) = upgrade::old_charm() else {
        return;
    };
    let _serial = lab::serial();
    let Some(lxd) = lab::lxd() else { return };
    let leftover = upgrade::table(OLD_TABLE).is_some();
    assert!(!leftover, "table inet {OLD_TABLE} is already on this host");
    // The simulator adds the unreachable route that guards the hosts' addresses.
    let sim = Sim::start(&["acme"], &[REPO]);
    let seed = std::process::id() % 100_000;
    let (x, y) = (
        Host::start("up", "x", seed + 150),
        Host::start("up", "y", seed + 170),
    );
    let machine = Machine::new(ROOMY_KIB);
    let mut unit = UpgradeUnit::new(machine.root(), &lxd, &old);
    unit.configure(&sim, config(&x));

    let charm_token = old_layout(&mut unit, &sim, &x, &y);
    let before = job_started_at_old_service(&unit, &sim, charm_token);
    let upgraded = upgrade_charm(&mut unit);
    layout_taken_over(&unit, &machine, &before);
    busy_runner_kept(&unit, &sim, &before, &x, &y);
    let new = idle_runner_replaced(&unit, &sim, &before, &x, &y);
    busy_job_completes(&unit, &sim, &before);
    policy_state_moved(&unit, &before, &upgraded);
    new_runner_passes_new_service(&unit, &sim, &new);
}

/// The old charm's install, its policy service started from the unit file it wrote,
/// config-changed and start: two idle runners with LXD's MACs behind the old table.
/// Returns the old charm token.
fn old_layout(unit: &mut UpgradeUnit, sim: &Sim, x: &Host, y: &Host) -> String {
    unit.run("hooks/install");
    let token = std::fs::read_to_string(unit.path(OLD_STATE).join("charm-token"));
    let charm_token = token
        .expect("the old install's charm token")
        .trim()
        .to_string();
    assert!(charm_token.len() == 64 && charm_token.chars().all(|c| c.is_ascii_hexdigit()));
    let policy_unit = std::fs::read_to_string(unit.unit_file(OLD_POLICY_UNIT)).unwrap();
    for line in [
        format!("EnvironmentFile={OLD_STATE}/policy-server.env"),
        format!("StateDirectory={OLD_POLICY_STATE}"),
    ] {
        assert!(
            policy_unit.contains(&format!("\n{line}\n")),
            "{policy_unit}"
        );
    }
    let policy = unit.start_policy(OLD_POLICY_UNIT, OLD_POLICY_STATE);
    assert_eq!(policy.bind, bridge_port(8080));
    assert_eq!(policy.env.get("CHARM_TOKEN"), Some(&charm_token));
    // Every rule off, kept in the service's state directory as a posted policy is.
    policy.set_policy(lab::permissive_policy());
    unit.run("hooks/config-changed");
    unit.run("hooks/start");
    unit.wait_pool(sim, 2, SETTLE);

    let table = upgrade::table(OLD_TABLE).expect("the old layout's table");
    assert!(
        !table.contains("ether saddr"),
        "the whole bridge, no MAC: {table}"
    );
    assert_eq!(upgrade::table(NEW_TABLE), None);
    for file in [
        OLD_BOOT_UNIT.to_string(),
        format!("ghr-reconcile-{KEY}.timer"),
    ] {
        assert!(unit.unit_file(&file).is_file(), "{file}");
    }
    let no_registry = !unit.path(OLD_STATE).join("units.json").exists();
    assert!(no_registry, "no registry yet");
    let old_pool = unit.path(OLD_POOL).display().to_string();
    assert_eq!(unit.pool_source(), old_pool);
    let old_state = unit.private_state(OLD_POLICY_STATE);
    assert!(old_state.join("policy.json").is_file());
    let lines = unit.token_lines(OLD_POLICY_STATE);
    for runner in unit.instances() {
        let mac = unit.hwaddr(&runner);
        assert!(
            !mac.starts_with("0a:"),
            "{runner} has a MAC of the new layout: {mac}"
        );
        let held = holds(&lines, &runner);
        assert!(held, "no one-time token for {runner}: {lines:?}");
        eprintln!("old layout, runner {runner} ({mac}):");
        unit.judged(&runner, x, y);
    }
    charm_token
}

/// A job that holds its runner until released: the simulator shows the runner busy
/// and the old service passed its pre-job check, with the runner's one-time token.
fn job_started_at_old_service(unit: &UpgradeUnit, sim: &Sim, charm_token: String) -> Before {
    let policy = unit.policy.as_ref().unwrap();
    assert_eq!(policy.passes(), 0, "{}", policy.log_text());
    let job = sim.queue_job(
        REPO,
        &["github-runner"],
        &[&hold_step(), "echo done on $(hostname)"],
    );
    let started = sim.wait_job(job, "in_progress", SETTLE);
    let busy = started["runner_name"].as_str().unwrap().to_string();
    poll(SETTLE, "the old service to pass the job's check", || {
        (policy.passes() == 1).then_some(())
    });
    let registration = registration(sim, &busy).expect("the busy runner's registration");
    let state = (&registration["busy"], &registration["online"]);
    assert_eq!(state, (&json!(true), &json!(true)), "{registration}");
    let instances = unit.instances();
    assert_eq!(instances.len(), 2, "{instances:?}");
    let idle = instances.into_iter().find(|i| *i != busy).unwrap();

    let old_state = unit.private_state(OLD_POLICY_STATE);
    let token_lines = unit.token_lines(OLD_POLICY_STATE);
    let used = !holds(&token_lines, &busy);
    assert!(used, "{busy}'s token not used up: {token_lines:?}");
    assert!(holds(&token_lines, &idle), "{token_lines:?}");
    let policy_json = std::fs::read_to_string(old_state.join("policy.json")).unwrap();
    eprintln!("job {job} runs on {busy}; {idle} idle");
    Before {
        charm_token,
        busy_id: registration["id"].clone(),
        busy,
        idle,
        token_lines,
        policy_json,
        job,
    }
}

/// upgrade-charm with this build's binary in the unit's charm directory, systemd's
/// part played as the charm's systemctl calls come.
fn upgrade_charm(unit: &mut UpgradeUnit) -> Upgraded {
    let new = Path::new(env!("CARGO_BIN_EXE_github-runner"));
    let upgraded = unit.upgrade(new, NEW_POLICY_UNIT, NEW_POLICY_STATE);
    for (level, message) in &unit.h.logs() {
        eprintln!("  upgrade-charm {level}: {message}");
    }
    assert!(
        upgraded.status.success(),
        "upgrade-charm: {}",
        upgraded.status
    );
    let systemctl = &upgraded.systemctl;
    let at = |call: String| {
        let found = systemctl.iter().position(|c| *c == call);
        found.unwrap_or_else(|| panic!("no `systemctl {call}` in {systemctl:?}"))
    };
    // Stopped before its state moved, and before the unit's own took the port.
    let stop = at(format!("disable --now {OLD_POLICY_UNIT}"));
    assert!(
        stop < at(format!("restart {NEW_POLICY_UNIT}")),
        "{systemctl:?}"
    );
    at(format!("disable {OLD_BOOT_UNIT}"));
    upgraded
}

/// Slot 0 (legacy), the state and policy service moved, the unit's own table in force
/// and the old one gone, the pool where LXD had it.
fn layout_taken_over(unit: &UpgradeUnit, machine: &Machine, before: &Before) {
    let registry = machine.registry();
    let entry = &registry["units"][UNIT];
    let slot = (&entry["slot"], &entry["legacy"]);
    assert_eq!(slot, (&json!(0), &json!(true)), "{registry}");
    for gone in [OLD_POLICY_UNIT, OLD_BOOT_UNIT] {
        assert!(!unit.unit_file(gone).exists(), "{gone} left");
    }
    for file in [NEW_POLICY_UNIT, NEW_BOOT_UNIT] {
        assert!(unit.unit_file(file).is_file(), "no {file}");
    }
    let old_state = unit.path(OLD_STATE);
    for gone in OLD_FILES {
        assert!(!old_state.join(gone).exists(), "{OLD_STATE}/{gone} left");
    }
    let own_token = std::fs::read_to_string(old_state.join("units").join(KEY).join("charm-token"));
    assert_eq!(own_token.unwrap().trim(), before.charm_token);
    let old_private = unit.private_state(OLD_POLICY_STATE);
    assert!(!old_private.exists(), "old private state left");
    let link = unit.path("/var/lib").join(OLD_POLICY_STATE);
    assert!(link.symlink_metadata().is_err(), "{} left", link.display());

    let policy = unit.policy.as_ref().expect("the unit's service");
    assert_eq!(policy.bind, bridge_port(8080));
    assert_eq!(policy.charm_bind, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(policy.env.get("CHARM_TOKEN"), Some(&before.charm_token));

    old_table_gone();
    let table = upgrade::table(NEW_TABLE).unwrap_or_else(|| panic!("no table {NEW_TABLE}"));
    assert!(
        table.contains(SLOT_MACS) && table.contains(LXD_MACS),
        "{table}"
    );
    let old_pool = unit.path(OLD_POOL).display().to_string();
    assert_eq!(unit.pool_source(), old_pool);
}

/// The busy runner is the same instance and registration, still busy on its job, and,
/// with only the unit's table loaded, judged by its rule for LXD's MACs (packets).
fn busy_runner_kept(unit: &UpgradeUnit, sim: &Sim, before: &Before, x: &Host, y: &Host) {
    let instances = unit.instances();
    assert!(
        instances.contains(&before.busy),
        "busy runner lost: {instances:?}"
    );
    let kept = registration(sim, &before.busy).expect("the busy runner's registration");
    assert_eq!(kept["id"], before.busy_id, "re-registered: {kept}");
    assert_eq!(
        (&kept["online"], &kept["busy"]),
        (&json!(true), &json!(true)),
        "{kept}"
    );
    assert_eq!(sim.job(before.job)["state"], json!("in_progress"));
    old_table_gone();
    eprintln!(
        "after upgrade-charm, busy runner {} ({}):",
        before.busy,
        unit.hwaddr(&before.busy)
    );
    unit.judged(&before.busy, x, y);
}

/// The idle runner was flushed and a runner of this build (a MAC of slot 0) took its
/// place, online and idle: two runners again. Returns the new runner's name.
fn idle_runner_replaced(unit: &UpgradeUnit, sim: &Sim, b: &Before, x: &Host, y: &Host) -> String {
    let what = "the idle runner's replacement online and idle";
    let new = poll(SETTLE, what, || beside_busy(unit, sim, &b.busy));
    assert_ne!(new, b.idle, "the idle runner was kept");
    let gone = registration(sim, &b.idle).is_none();
    assert!(gone, "{} still registered", b.idle);
    let mac = unit.hwaddr(&new);
    assert!(mac.starts_with("0a:00:"), "{new}: {mac}");
    eprintln!("new runner {new} ({mac}):");
    unit.judged(&new, x, y);
    new
}

/// The one runner beside `busy` (which is still there), once online and idle.
fn beside_busy(unit: &UpgradeUnit, sim: &Sim, busy: &str) -> Option<String> {
    let instances = unit.instances();
    let mut others = instances.iter().filter(|i| *i != busy);
    let (new, none) = (others.next()?, others.next());
    let reg = registration(sim, new)?;
    let idle = reg["online"] == json!(true) && reg["busy"] == json!(false);
    let both = none.is_none() && instances.iter().any(|i| i == busy);
    (idle && both).then(|| new.clone())
}

/// Released, the busy runner's job ends with success (no job lost across the upgrade)
/// and its instance goes.
fn busy_job_completes(unit: &UpgradeUnit, sim: &Sim, before: &Before) {
    let release = unit.exec(&before.busy)(&["touch", RELEASE]);
    assert!(release.status.success(), "{release:?}");
    let done = sim.wait_job(before.job, "completed", SETTLE);
    assert_eq!(done["conclusion"], json!("success"), "{done}");
    assert_eq!(done["runner_name"], json!(before.busy), "{done}");
    poll(SETTLE, "the busy runner's instance to go", || {
        (!unit.instances().contains(&before.busy)).then_some(())
    });
}

/// The unit's service started with the old one's unused one-time tokens and runs with
/// its policy document; it then revoked the flushed runner's token, which only the old
/// charm had issued.
fn policy_state_moved(unit: &UpgradeUnit, before: &Before, upgraded: &Upgraded) {
    let loaded: Vec<&str> = upgraded.tokens_at_start.lines().collect();
    for line in &before.token_lines {
        assert!(
            loaded.contains(&line.as_str()),
            "{line} not moved: {loaded:?}"
        );
    }
    let new_state = unit.private_state(NEW_POLICY_STATE);
    let policy_json = std::fs::read_to_string(new_state.join("policy.json"));
    assert_eq!(
        policy_json.expect("the moved policy.json"),
        before.policy_json
    );
    let log = unit.policy.as_ref().unwrap().log_text();
    let revoked = format!("revoked the one-time token of runner {}", before.idle);
    assert!(
        log.contains(&revoked),
        "{revoked:?} not in the service's log: {log}"
    );
    let now = unit.token_lines(NEW_POLICY_STATE);
    assert!(!holds(&now, &before.idle), "{now:?}");
}

/// A job on the new runner passes its pre-job check at the unit's service on 8080 and
/// succeeds; its instance goes.
fn new_runner_passes_new_service(unit: &UpgradeUnit, sim: &Sim, new: &str) {
    let policy = unit.policy.as_ref().unwrap();
    let passes = policy.passes();
    let job = sim.queue_job(REPO, &["github-runner"], &["echo ran on $(hostname)"]);
    let done = sim.wait_job(job, "completed", SETTLE);
    assert_eq!(
        done["conclusion"],
        json!("success"),
        "{done}\n{}",
        policy.log_text()
    );
    assert_eq!(done["runner_name"], json!(new), "{done}");
    assert_eq!(policy.passes(), passes + 1, "{}", policy.log_text());
    poll(SETTLE, "the new runner's instance to go", || {
        (!unit.instances().iter().any(|i| i == new)).then_some(())
    });
}

/// Whether one-time token file `lines` hold a token for `runner`.
fn holds(lines: &[String], runner: &str) -> bool {
    lines.iter().any(|l| l.ends_with(&format!(" {runner}")))
}

fn old_table_gone() {
    let gone = upgrade::table(OLD_TABLE).is_none();
    assert!(gone, "table inet {OLD_TABLE} left");
}
