//! The firewall through the charm on the real LXD test daemon: a table deleted (what a
//! reboot does), a chain flushed or a rule deleted is put back by the next reconcile
//! before anything else, proven with packets from a real runner to a denylisted host;
//! the boot unit's command loads the same table in a fresh namespace; and when nft
//! fails no runner is created and the status names the firewall.

mod firewall_support;
mod harness;
mod lab;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use firewall_support::{expect, free_octet, run, Netns, Reach, Responder};
use github_runner::firewall::boot::render_boot_unit;
use harness::Reply;
use lab::{Lab, Unit};
use serde_json::json;

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);
/// The table of unit `ghr-fwc/0`, the unit these tests drive.
const TABLE: &str = "github-runner-ghr-fwc-0";

fn host_table() -> Option<String> {
    run(&["nft", "list", "table", "inet", TABLE]).ok()
}

/// Runs a command inside the unit's runner instance.
fn in_runner<'a>(unit: &'a Unit, name: &'a str) -> impl Fn(&[&str]) -> Output + 'a {
    move |argv| {
        let mut args = vec!["exec", name, "--"];
        args.extend_from_slice(argv);
        unit.lxd.lxc_output(&args).expect("lxc exec")
    }
}

/// The firewall messages the charm logged in its last events.
fn firewall_logs(unit: &Unit) -> Vec<(String, String)> {
    unit.h
        .logs()
        .into_iter()
        .filter(|(_, m)| m.contains("firewall"))
        .collect()
}

/// One timer reconcile; returns what it logged about the firewall.
fn timer_reconcile(unit: &Unit) -> Vec<(String, String)> {
    unit.h.clear_calls();
    unit.run("reconcile-runners");
    firewall_logs(unit)
}

/// The handle of the rule in `chain` whose text is `rule` (`nft -a` lists handles).
fn rule_handle(chain: &str, rule: &str) -> String {
    let listed = run(&["nft", "-a", "list", "chain", "inet", TABLE, chain]).unwrap();
    let line = listed
        .lines()
        .find(|l| l.trim().starts_with(rule))
        .unwrap_or_else(|| panic!("no rule {rule:?} in {listed}"));
    line.rsplit("# handle ").next().unwrap().trim().to_string()
}

#[test]
fn a_deleted_or_edited_table_is_put_back_before_runners_are_made() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let id = std::process::id() % 100_000;
    // A host the denylist names, routed through this machine like the simulator.
    let s = free_octet(id + 150);
    let (host_side, inside) = (Ipv4Addr::new(10, 217, s, 1), Ipv4Addr::new(10, 217, s, 2));
    let ns = Netns::create(
        &format!("ghrfc-{id}"),
        &format!("gfc{id}"),
        host_side,
        inside,
    );
    let ns = ns.unwrap();
    let denied = Responder::start(Some(&ns.name), SocketAddr::from((inside, 80)), "denied");
    let denied = denied.unwrap();
    let config =
        json!({"path": REPO, "virtual-machines": 1, "denylist": format!("10.217.{s}.0/30")});
    let unit = lab.unit("ghr-fwc", config);
    unit.run("hooks/config-changed");
    unit.wait_pool(&lab.sim, 1, SETTLE);
    let runner = unit.instances().remove(0);
    let exec = in_runner(&unit, &runner);
    let loaded = host_table().expect("config-changed loaded the table");
    let state = unit.state();
    assert_eq!(
        std::fs::read_to_string(state.join("firewall.listing")).unwrap(),
        loaded
    );
    expect(&exec, "denylisted host", denied.addr, Reach::Refused);

    eprintln!("table deleted (as by a reboot):");
    run(&["nft", "delete", "table", "inet", TABLE]).unwrap();
    expect(
        &exec,
        "denylisted host",
        denied.addr,
        Reach::Answered("denied".into()),
    );
    let logs = timer_reconcile(&unit);
    assert_eq!(
        host_table().as_deref(),
        Some(loaded.as_str()),
        "reloaded as it was"
    );
    assert!(
        logs.iter()
            .any(|(l, m)| l == "WARNING" && m.contains("is missing")),
        "{logs:?}"
    );
    expect(&exec, "denylisted host", denied.addr, Reach::Refused);

    eprintln!("chain runner-forward flushed:");
    run(&["nft", "flush", "chain", "inet", TABLE, "runner-forward"]).unwrap();
    expect(
        &exec,
        "denylisted host",
        denied.addr,
        Reach::Answered("denied".into()),
    );
    let logs = timer_reconcile(&unit);
    assert_eq!(host_table().as_deref(), Some(loaded.as_str()));
    assert!(
        logs.iter()
            .any(|(l, m)| l == "WARNING" && m.contains("altered (chain runner-forward)")),
        "{logs:?}"
    );
    expect(&exec, "denylisted host", denied.addr, Reach::Refused);

    eprintln!("one rule deleted from runner-input:");
    let handle = rule_handle("runner-input", "udp dport 67 accept");
    run(&[
        "nft",
        "delete",
        "rule",
        "inet",
        TABLE,
        "runner-input",
        "handle",
        &handle,
    ])
    .unwrap();
    assert_ne!(host_table().as_deref(), Some(loaded.as_str()));
    let logs = timer_reconcile(&unit);
    assert_eq!(host_table().as_deref(), Some(loaded.as_str()));
    assert!(
        logs.iter()
            .any(|(_, m)| m.contains("altered (chain runner-input)")),
        "{logs:?}"
    );

    // A steady reconcile only reads: nothing logged about the firewall.
    let logs = timer_reconcile(&unit);
    assert!(logs.is_empty(), "{logs:?}");
    assert_eq!(host_table().as_deref(), Some(loaded.as_str()));

    boot_unit_loads_the_same_table(unit.root(), &loaded);
}

/// The boot unit's ExecStart, run in a fresh network namespace (an empty kernel table
/// list, as at boot), loads exactly the table the charm loaded on the host.
fn boot_unit_loads_the_same_table(root: &Path, loaded: &str) {
    let host_record = "/var/lib/github-runner/units/ghr-fwc-0/firewall.nft";
    let unit = render_boot_unit(Path::new(host_record));
    let exec_start = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    // The unit names the host's path; this unit's files live under its test root.
    let record = root.join(host_record.trim_start_matches('/'));
    let argv: Vec<String> = exec_start
        .split(' ')
        .map(|a| match a {
            a if a == host_record => record.display().to_string(),
            a => a.to_string(),
        })
        .collect();
    let mode = std::fs::metadata(&record).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let ns = Netns::bare(&format!("ghrboot-{}", std::process::id())).unwrap();
    let mut cmd = vec!["ip", "netns", "exec", &ns.name];
    cmd.extend(argv.iter().map(String::as_str));
    run(&cmd).unwrap();
    let booted = run(&[
        "ip", "netns", "exec", &ns.name, "nft", "list", "table", "inet", TABLE,
    ]);
    assert_eq!(booted.unwrap(), loaded);
}

#[test]
fn no_runner_is_created_when_nft_fails() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let unit = lab.unit("ghr-fwfail", json!({"path": REPO, "virtual-machines": 1}));
    unit.h.shadow(&["nft"]);

    // nft cannot even list: the check fails before anything is created.
    unit.h.script(
        "nft",
        &[],
        Reply::fail(1, "Error: Could not process rule: Operation not permitted"),
    );
    for event in ["hooks/start", "reconcile-runners"] {
        let run = unit.h.run(event);
        let (status, message) = unit.h.last_status().unwrap();
        assert_eq!(status, "waiting", "{event}: {message}\n{}", run.stderr());
        assert!(message.starts_with("firewall: "), "{event}: {message}");
        assert!(message.contains("Operation not permitted"), "{message}");
        assert_eq!(unit.instances(), Vec::<String>::new(), "{event}");
    }

    // nft lists but refuses the ruleset: only the operator can fix that.
    unit.h.clear_script("nft");
    unit.h.script("nft", &["list"], Reply::ok(""));
    unit.h.script(
        "nft",
        &["-f"],
        Reply::fail(1, "Error: No such file or directory"),
    );
    unit.h.run("reconcile-runners");
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "blocked", "{message}");
    assert!(
        message.starts_with("firewall: nft refused the ruleset"),
        "{message}"
    );
    assert_eq!(unit.instances(), Vec::<String>::new());
    // update-status keeps saying it until a reconcile succeeds.
    unit.h.run("hooks/update-status");
    assert_eq!(unit.h.last_status().unwrap(), (status, message));
}
