//! The test fixtures' own failures are typed: a test (or a skip) can tell a missing
//! prerequisite from a failed command, and every message still names the command, its
//! exit status and stderr, the address or the directory involved.

mod firewall_support;
mod harness;
mod lab;

use std::net::SocketAddr;

use firewall_support::{run, FixtureError, Lxd, Responder, Spawned};
use lab::daemon::{Daemon, DaemonError};

#[test]
fn a_failed_command_carries_its_line_status_and_stderr() {
    let err = run(&["sh", "-c", "echo no route >&2; exit 3"]).unwrap_err();
    match &err {
        FixtureError::Failed {
            command,
            status,
            stderr,
        } => {
            assert_eq!(command, "sh -c echo no route >&2; exit 3");
            assert_eq!(status.code(), Some(3));
            assert_eq!(stderr, "no route");
        }
        other => panic!("want Failed, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "`sh -c echo no route >&2; exit 3` failed (exit status: 3): no route"
    );
}

#[test]
fn a_missing_program_is_an_io_error_naming_it() {
    let err = run(&["ghr-no-such-program"]).unwrap_err();
    assert!(
        matches!(&err, FixtureError::Io { what, .. } if what == "ghr-no-such-program"),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("ghr-no-such-program: "),
        "{err}"
    );
}

#[test]
fn a_server_that_exited_is_reported_with_its_status() {
    let mut server = Spawned::start("a short-lived server", &["sh", "-c", "exit 4"]).unwrap();
    let err = firewall_support::poll(
        std::time::Duration::from_secs(10),
        "the server to exit",
        || server.alive().err(),
    );
    assert!(matches!(err, FixtureError::Exited { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "a short-lived server exited: exit status: 4"
    );
}

#[test]
fn a_responder_on_a_foreign_address_names_it() {
    // A documentation address is on no interface here, so the bind fails at once.
    let addr: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let err = Responder::start(None, addr, "never").err().unwrap();
    assert!(
        matches!(&err, FixtureError::Io { what, .. } if what == "bind 192.0.2.1:9"),
        "{err:?}"
    );
}

#[test]
fn a_daemon_outside_the_testbed_is_refused_by_its_dir() {
    // Not named `lxd`, so refused before testbed.sh is asked anything.
    let lxd = Lxd {
        dir: "/nonexistent/ghr-not-a-testbed".into(),
        image: "ghr-runner".into(),
    };
    let err = Daemon::of(&lxd).err().unwrap();
    assert!(
        matches!(&err, DaemonError::NotTestbed(dir) if dir == &lxd.dir),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "/nonexistent/ghr-not-a-testbed is not a testbed's LXD_DIR"
    );
}
