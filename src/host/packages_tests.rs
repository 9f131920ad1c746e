use std::time::Duration;

use super::*;
use crate::host::fakes::{FakeClock, FakeCommands};

const LOCKED: &str = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42 (apt-get)\nE: Unable to acquire the dpkg frontend lock";

fn apt<'a>(c: &'a FakeCommands, clock: &'a FakeClock) -> Apt<'a> {
    Apt {
        commands: c,
        clock,
        env: vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())],
        lock_wait: LockWait::default(),
    }
}

fn install_plan() -> PackagePlan {
    PackagePlan {
        install: vec!["nftables".into()],
        remove: vec![],
    }
}

#[test]
fn plan_installs_the_missing_and_removes_the_unwanted() {
    let installed = parse_installed(
        "nftables installed\ncpu-checker not-installed\nlxd installed\nlxd-client config-files\n",
    );
    let p = plan(&installed, &["nftables", "cpu-checker"], DEB_LXD);
    assert_eq!(p.install, vec!["cpu-checker"]);
    assert_eq!(p.remove, vec!["lxd"]);
    assert!(plan(&installed, &["nftables"], &[]).is_empty());
}

#[test]
fn an_empty_plan_runs_nothing() {
    let (c, clock) = (FakeCommands::new(), FakeClock::default());
    assert!(!apt(&c, &clock).apply(&PackagePlan::default()).unwrap());
    assert!(c.lines().is_empty());
}

#[test]
fn removes_then_updates_then_installs_with_the_env() {
    let (c, clock) = (FakeCommands::new(), FakeClock::default());
    let plan = PackagePlan {
        install: vec!["nftables".into(), "cpu-checker".into()],
        remove: vec!["lxd".into()],
    };
    assert!(apt(&c, &clock).apply(&plan).unwrap());
    assert_eq!(
        c.lines(),
        [
            "apt-get remove -y lxd",
            "apt-get update",
            "apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nftables cpu-checker"
        ]
    );
    assert!(c.calls.borrow().iter().all(|cmd| cmd
        .env
        .contains(&("DEBIAN_FRONTEND".into(), "noninteractive".into()))));
}

#[test]
fn exit_100_runs_dpkg_configure_then_retries_once() {
    let (c, clock) = (FakeCommands::new(), FakeClock::default());
    c.on(
        "apt-get",
        &["update"],
        vec![
            CmdOutput::failed(
                100,
                "E: dpkg was interrupted, you must manually run 'dpkg --configure -a'",
            ),
            CmdOutput::ok(""),
        ],
    );
    apt(&c, &clock).apply(&install_plan()).unwrap();
    assert_eq!(
        c.lines(),
        [
            "apt-get update",
            "dpkg --configure -a",
            "apt-get update",
            "apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nftables"
        ]
    );
    assert!(clock.sleeps().is_empty());
}

#[test]
fn exit_100_twice_is_an_error_naming_the_command() {
    let (c, clock) = (FakeCommands::new(), FakeClock::default());
    c.on(
        "apt-get",
        &["update"],
        vec![CmdOutput::failed(100, "E: broken")],
    );
    let err = apt(&c, &clock).apply(&install_plan()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`apt-get update` failed (exit 100): E: broken"
    );
    assert_eq!(c.lines().len(), 3);
}

#[test]
fn a_held_lock_is_waited_for_with_backoff() {
    let (c, clock) = (FakeCommands::new(), FakeClock::default());
    c.on(
        "apt-get",
        &["update"],
        vec![
            CmdOutput::failed(100, LOCKED),
            CmdOutput::failed(100, LOCKED),
            CmdOutput::ok(""),
        ],
    );
    apt(&c, &clock).apply(&install_plan()).unwrap();
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(1), Duration::from_secs(2)]
    );
    assert!(!c.lines().iter().any(|l| l.starts_with("dpkg")));
}

#[test]
fn lock_contention_is_bounded_by_the_deadline() {
    let (c, clock) = (FakeCommands::new(), FakeClock::default());
    c.on("apt-get", &[], vec![CmdOutput::failed(100, LOCKED)]);
    let err = apt(&c, &clock).apply(&install_plan()).unwrap_err();
    assert!(matches!(err, HostError::LockTimeout(_)), "{err}");
    assert!(clock.slept() <= LockWait::default().deadline);
    assert!(clock.sleeps().iter().all(|d| *d <= Duration::from_secs(20)));
    // 1+2+4+8+16 then 20 s steps up to 300 s: a bounded number of attempts.
    assert!(c.lines().len() < 20, "{}", c.lines().len());
}

#[test]
fn the_lxd_snap_is_installed_once_and_refreshed_on_upgrade() {
    let c = FakeCommands::new();
    c.on(
        "snap",
        &["list"],
        vec![CmdOutput::failed(1, "error: no matching snaps installed")],
    );
    assert!(ensure_lxd_snap(&c, &[], false).unwrap());
    assert_eq!(c.lines(), ["snap list lxd", "snap install lxd"]);

    let c = FakeCommands::new();
    assert!(!ensure_lxd_snap(&c, &[], false).unwrap());
    assert_eq!(c.lines(), ["snap list lxd"]);
    assert!(ensure_lxd_snap(&c, &[], true).unwrap());
    assert_eq!(
        c.lines(),
        ["snap list lxd", "snap list lxd", "snap refresh lxd"]
    );
}

#[test]
fn a_snap_failure_names_the_command_and_its_error() {
    let c = FakeCommands::new();
    c.on("snap", &["list"], vec![CmdOutput::failed(1, "")]);
    c.on(
        "snap",
        &["install"],
        vec![CmdOutput::failed(
            1,
            "error: cannot install \"lxd\": store unreachable",
        )],
    );
    let err = ensure_lxd_snap(&c, &[], false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`snap install lxd` failed (exit 1): error: cannot install \"lxd\": store unreachable"
    );
}

#[test]
fn the_real_dpkg_query_answers_in_the_parsed_format() {
    if std::process::Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "dpkg-query is required in CI"
        );
        eprintln!("skipping: dpkg-query is not installed");
        return;
    }
    let clock = FakeClock::default();
    let apt = Apt {
        commands: &crate::host::SystemCommands,
        clock: &clock,
        env: Vec::new(),
        lock_wait: LockWait::default(),
    };
    let installed = apt.installed(&["dpkg", "no-such-package-ghr"]).unwrap();
    assert!(installed.contains("dpkg"), "{installed:?}");
    assert!(!installed.contains("no-such-package-ghr"));
}
