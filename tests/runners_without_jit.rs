//! On the real LXD test daemon, against a GitHub without JIT configs (an older GitHub
//! Enterprise Server): runners register from inside with a registration token, which
//! is gone once used.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use lab::Lab;
use serde_json::json;

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);

#[test]
fn without_jit_runners_register_from_inside_with_a_registration_token() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    // An older GitHub Enterprise Server: generate-jitconfig does not exist.
    sim.fault(
        json!({"route": "POST /repos/:owner/:repo/actions/runners/generate-jitconfig", "count": 100, "status": 404}),
    );
    let unit = lab.unit("ghr-nojit", json!({"path": REPO, "virtual-machines": 1}));
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 1, SETTLE);
    let runner = &sim.runners(&unit.prefix)[0];
    assert_eq!(runner["jit"], json!(false), "{runner}");
    assert_eq!(runner["ephemeral"], json!(true), "{runner}");
    // The registration token was used and deleted: nothing reusable is left inside.
    let name = unit.instances()[0].clone();
    let out = lab
        .lxd
        .lxc_output(&[
            "exec",
            &name,
            "--",
            "ls",
            "-A",
            "/home/ubuntu/actions-runner",
        ])
        .unwrap();
    let files = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !files.contains(".registration-token") && !files.contains(".jitconfig"),
        "{files}"
    );
    let job = sim.queue_job(REPO, &["ghr-nojit"], &["true"]);
    assert_eq!(
        sim.wait_job(job, "completed", SETTLE)["conclusion"],
        json!("success")
    );
}
