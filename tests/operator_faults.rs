//! Failures only the operator can fix, through the real charm binary on the real LXD
//! test daemon, also when they happen inside one runner's creation: a token GitHub
//! rejects, a token without the permission to register runners, a runner group that
//! does not exist. Each ends `blocked` with a message naming what to fix (and
//! update-status repeats it), makes and leaks nothing, and the pool fills once it is
//! fixed. A missing image alias is `faults.rs`'s `a_missing_image_blocks_naming_it`.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use lab::faults::assert_no_leaks;
use lab::{Lab, Unit};
use serde_json::json;

const REPO: &str = "acme/widgets";
/// The routes of the JIT config a runner's creation asks for, as the simulator's
/// faults name them.
const REPO_JIT: &str = "POST /repos/:owner/:repo/actions/runners/generate-jitconfig";
const SETTLE: Duration = Duration::from_secs(120);

/// The unit is blocked with a message holding every one of `words`, and update-status
/// says the same until a reconcile succeeds.
fn blocked_naming(unit: &Unit, words: &[&str]) -> String {
    let (status, message) = unit.h.last_status().expect("a status was set");
    eprintln!("{status}: {message}");
    assert_eq!(status, "blocked", "{message}");
    for w in words {
        assert!(message.contains(w), "{message:?} lacks {w:?}");
    }
    unit.run("hooks/update-status");
    assert_eq!(
        unit.h.last_status(),
        Some(("blocked".to_string(), message.clone()))
    );
    message
}

/// Nothing of the unit's exists: no instance in LXD, no registration on GitHub.
fn nothing_made(unit: &Unit, lab: &Lab) {
    assert!(unit.instances().is_empty(), "{:?}", unit.instances());
    assert!(lab.sim.runners(&unit.prefix).is_empty());
}

/// The pool fills to `n` and the status is `active` again.
fn recovers(unit: &Unit, lab: &Lab, n: usize) {
    unit.run("reconcile-runners");
    unit.wait_pool(&lab.sim, n, SETTLE);
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");
    assert_no_leaks(unit, &lab.sim);
}

/// Every generate-jitconfig answered `status` with GitHub's `message`: the unit blocks
/// naming `words` and makes nothing; once GitHub answers again, its pool of one fills.
fn jit_refused(unit: &Unit, lab: &Lab, status: u16, message: &str, words: &[&str]) {
    lab.sim
        .fault(json!({"route": REPO_JIT, "count": 100, "status": status, "message": message}));
    unit.run("hooks/config-changed");
    blocked_naming(unit, words);
    nothing_made(unit, lab);
    lab.sim.clear_faults();
    recovers(unit, lab, 1);
}

#[test]
fn a_rejected_token_blocks_naming_the_token() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    // A token GitHub does not know, from the first hook on.
    let mut unit = lab.unit(
        "ghr-badtoken",
        json!({"path": REPO, "virtual-machines": 1, "token": "ghp_notATokenGithubKnows000001"}),
    );
    unit.fail_fast();
    unit.run("hooks/config-changed");
    blocked_naming(&unit, &["token", "rejected"]);
    nothing_made(&unit, &lab);

    // A token revoked between the listing and a runner's creation: the 401 comes from
    // generate-jitconfig alone.
    unit.configure(&lab.sim, json!({"path": REPO, "virtual-machines": 1}));
    jit_refused(&unit, &lab, 401, "Bad credentials", &["token", "rejected"]);
}

#[test]
fn a_token_without_the_permission_to_register_runners_blocks_naming_it() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let mut unit = lab.unit("ghr-noperm", json!({"path": REPO, "virtual-machines": 1}));
    unit.fail_fast();
    // What GitHub answers a fine-grained token without "Administration: write".
    let refusal = "Resource not accessible by personal access token";
    let words = ["token", "permission", "register runners", REPO, refusal];
    jit_refused(&unit, &lab, 403, refusal, &words);
}

#[test]
fn a_runner_group_that_does_not_exist_blocks_naming_it() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let config = |n: u32| json!({"path": "acme", "group": "ghost", "virtual-machines": n});
    let mut unit = lab.unit("ghr-group", config(1));
    unit.fail_fast();
    unit.run("hooks/config-changed");
    blocked_naming(&unit, &["runner group", "\"ghost\"", "acme"]);
    nothing_made(&unit, &lab);

    // The operator makes the group: the pool fills (and the unit keeps its id).
    sim.post("/_sim/orgs/acme/runner-groups", json!({"name": "ghost"}));
    recovers(&unit, &lab, 1);

    // The group removed on GitHub after the unit learned its id: the next runner's
    // creation is where it shows.
    sim.delete("/_sim/orgs/acme/runner-groups/ghost");
    unit.configure(sim, config(2));
    unit.run("reconcile-runners");
    blocked_naming(&unit, &["runner group", "\"ghost\"", "acme"]);
    assert_eq!(unit.instances().len(), 1, "only the runner made before");
    assert_eq!(sim.runners(&unit.prefix).len(), 1);

    sim.post("/_sim/orgs/acme/runner-groups", json!({"name": "ghost"}));
    recovers(&unit, &lab, 2);
}
