//! What `update-status` shows after a hook failed: the status that hook left, until a
//! reconcile succeeds again, never the counts of an older reconcile (which would show a
//! blocked unit as `active`).

mod firewall_support;
mod harness;
mod lab;

use lab::{serial, Sim, Unit};
use serde_json::json;

const REPO: &str = "acme/widgets";

fn status(unit: &Unit) -> (String, String) {
    unit.h.last_status().expect("a status was set")
}

#[test]
fn update_status_repeats_a_failed_reconciles_status_until_one_succeeds() {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let sim = Sim::start(&["acme"], &[REPO]);
    let wanted = json!({"path": REPO, "virtual-machines": 0});
    let unit = Unit::new(&lxd, "ghr-status", 0, &sim, wanted.clone());
    unit.run("hooks/config-changed");
    unit.run("hooks/update-status");
    let healthy = status(&unit);
    assert_eq!(healthy.0, "active", "{healthy:?}");
    // Lab units run with test-mode=insecure, and every status says so.
    assert!(healthy.1.ends_with(" [test-mode=insecure]"), "{healthy:?}");

    // GitHub now rejects the token: the timer's reconcile blocks, and so does every
    // update-status after it.
    unit.configure(
        &sim,
        json!({"path": REPO, "virtual-machines": 0, "token": "revoked"}),
    );
    unit.run("reconcile-runners");
    let blocked = status(&unit);
    assert_eq!(blocked.0, "blocked", "{blocked:?}");
    assert!(
        blocked.1.contains("token rejected by GitHub"),
        "{blocked:?}"
    );
    assert!(blocked.1.ends_with(" [test-mode=insecure]"), "{blocked:?}");
    unit.run("hooks/update-status");
    assert_eq!(status(&unit), blocked);

    // A reconcile that works again settles it.
    unit.configure(&sim, wanted);
    unit.run("reconcile-runners");
    unit.run("hooks/update-status");
    assert_eq!(status(&unit), healthy);
}
