//! install through the real binary when the host does not cooperate: apt exits 100, the
//! package lock is held, the snap store fails, a reboot is needed; and the settings that
//! change what install does (test-mode, invalid config).

mod harness;
mod host_support;
mod lxd_daemon_support;

use std::fs;

use harness::Reply;
use host_support::*;
use serde_json::json;

#[test]
fn apt_exit_100_runs_dpkg_configure_and_retries() {
    let Some(h) = fresh_ubuntu() else { return };
    h.script(
        "apt-get",
        &["install"],
        Reply::fail(100, "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n").times(1),
    );
    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    let calls = host_calls(&h);
    let apt: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("apt-get") || c.starts_with("dpkg "))
        .collect();
    assert_eq!(apt.len(), 4, "{apt:?}");
    assert_eq!(apt[0], "apt-get update");
    assert!(apt[1].starts_with("apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nftables"));
    assert_eq!(apt[2], "dpkg --configure -a");
    assert_eq!(apt[3], apt[1]);
}

#[test]
fn apt_failing_twice_leaves_a_status_naming_the_command() {
    let Some(h) = fresh_ubuntu() else { return };
    h.script(
        "apt-get",
        &["update"],
        Reply::fail(100, "E: The repository is broken\n"),
    );
    let run = h.run("hooks/install");
    assert!(!run.success(), "Juju must retry the hook");
    let (status, message) = h.last_status().unwrap();
    assert_eq!(status, "maintenance");
    assert_eq!(
        message,
        "installing packages failed: `apt-get update` failed (exit 100): E: The repository is broken"
    );
    assert!(!host_calls(&h).iter().any(|c| c.starts_with("snap install")));
}

#[test]
fn a_held_apt_lock_is_waited_for_then_the_install_goes_on() {
    let Some(h) = fresh_ubuntu() else { return };
    h.script("apt-get", &["update"], Reply::fail(100, LOCKED).times(1));
    let run = h.run("hooks/install");
    assert!(run.success(), "{}", run.stderr());
    let calls = host_calls(&h);
    assert_eq!(calls.iter().filter(|c| *c == "apt-get update").count(), 2);
    assert!(
        !calls.iter().any(|c| c.starts_with("dpkg --configure")),
        "{calls:?}"
    );
}

#[test]
fn lock_contention_is_bounded() {
    let Some(mut h) = fresh_ubuntu() else { return };
    h.extra_env
        .insert("GITHUB_RUNNER_APT_LOCK_WAIT".into(), "4".into());
    h.script("apt-get", &["update"], Reply::fail(100, LOCKED));
    let started = std::time::Instant::now();
    let run = h.run("hooks/install");
    assert!(!run.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Tries at 0 s, 1 s and 3 s; waiting 4 s more would pass the deadline.
    assert_eq!(h.calls_of("apt-get").count(), 3);
    assert_eq!(
        h.last_status().unwrap(),
        (
            "maintenance".into(),
            "installing packages failed: the apt lock was still held after 4s; another package operation is running".into()
        )
    );
}

#[test]
fn a_required_reboot_is_requested_at_the_end() {
    let Some(h) = fresh_ubuntu() else { return };
    fs::create_dir_all(root(&h).join("var/run")).unwrap();
    fs::write(
        root(&h).join("var/run/reboot-required"),
        "*** System restart required ***\n",
    )
    .unwrap();
    assert!(h.run("hooks/install").success());
    assert_eq!(
        h.reboots(),
        [Vec::<String>::new()],
        "juju-reboot without --now"
    );
    assert_eq!(host_calls(&h).last().unwrap(), "juju-reboot");
    assert_eq!(h.last_status().unwrap().0, "maintenance");
}

#[test]
fn a_snap_failure_leaves_a_clear_status_and_retries() {
    let Some(h) = fresh_ubuntu() else { return };
    h.script(
        "snap",
        &["install"],
        Reply::fail(1, "error: unable to contact snap store\n"),
    );
    let run = h.run("hooks/install");
    assert!(!run.success());
    assert_eq!(
        h.last_status().unwrap(),
        (
            "maintenance".into(),
            "installing the lxd snap failed: `snap install lxd` failed (exit 1): error: unable to contact snap store".into()
        )
    );
    assert!(!host_calls(&h).iter().any(|c| c.starts_with("lxd ")));
}

#[test]
fn insecure_test_mode_leaves_the_nic_unhardened() {
    let Some(h) = fresh_ubuntu() else { return };
    h.set_config(json!({"path": "acme/widgets", "token": TOKEN, "test-mode": "insecure"}));
    assert!(h.run("hooks/install").success());
    let hardened = h.lxd.lxc(&[
        "profile",
        "device",
        "get",
        "default",
        "eth0",
        "security.mac_filtering",
    ]);
    assert_eq!(hardened, "", "the NIC is left as LXD made it");
    assert_eq!(
        h.lxd
            .writes()
            .iter()
            .filter(|w| w.contains("/profiles/default"))
            .count(),
        1,
        "the profile got its devices, nothing more"
    );
}

#[test]
fn invalid_config_blocks_install_before_any_host_command() {
    let Some(h) = fresh_ubuntu() else { return };
    h.set_config(json!({"path": "acme/widgets", "token": ""}));
    let run = h.run("hooks/install");
    assert!(run.success());
    assert_eq!(h.last_status().unwrap().0, "blocked");
    assert!(host_calls(&h).is_empty(), "{:?}", host_calls(&h));
    assert!(!root(&h).join("var").exists());
}
