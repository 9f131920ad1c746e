//! `make demo`: the charm's main job end to end on this machine: the real binary driven
//! as Juju would (install, config-changed, the timer's reconciles) keeps 3 container
//! runners on the real LXD test daemon, registered on the GitHub simulator; 5 jobs run
//! on them, each checked by the policy service first; then a table of what happened.
//! Then runners on demand ([`demo_support`]): a burst of jobs, the pool growing to its
//! maximum and back to the warm pool, as a timeline, and what its manager's metrics
//! endpoint reports (an excerpt, the job pickup histogram as a bar chart).
//! Ignored in `make test` (scripts/demo.sh runs it); everything it starts is removed.

mod demo_support;
mod firewall_support;
mod harness;
mod lab;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::Reply;
use lab::{Process, Sim, Unit, BRIDGE_IP, PAT};
use policy_service::POLICY_PORT;
use serde_json::{json, Value};

const REPO: &str = "acme/widgets";
const JOBS: usize = 5;

/// The host as after a completed install: package commands are recorded, not run, while
/// the charm's own files (charm token, policy service unit and its 0600 environment) are
/// written for real. LXD setup reads the test daemon, whose default profile already has
/// its pool and bridge, and changes nothing there (test-mode insecure: no hardening).
fn script_installed_host(unit: &Unit) {
    let h = &unit.h;
    h.shadow(lab::INSTALL_PROGRAMS);
    let installed: String = [
        "nftables",
        "cpu-checker",
        "libvirt-clients",
        "libvirt-daemon-driver-qemu",
        "apparmor-utils",
    ]
    .iter()
    .map(|p| format!("{p} installed\n"))
    .collect();
    h.script("dpkg-query", &[], Reply::ok(&installed));
}

/// Starts the policy service as its systemd unit would: the command line from the unit
/// the charm wrote, the environment from the charm's 0600 file.
fn start_policy_service(unit: &Unit) -> Process {
    let state = unit.state();
    let env_text = std::fs::read_to_string(state.join("policy-server.env"))
        .expect("install wrote the env file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_github-runner"));
    cmd.args([
        "policy-server",
        "--bind",
        &format!("{BRIDGE_IP}:{POLICY_PORT}"),
        "--charm-bind",
        &format!("127.0.0.1:{POLICY_PORT}"),
    ]);
    for line in env_text.lines().filter_map(|l| l.split_once('=')) {
        cmd.env(line.0, line.1);
    }
    // The unit's state directory is under /var/lib; the demo's is in its own root.
    let state_dir = unit.root().join("var/lib/github-runner-policy");
    std::fs::create_dir_all(&state_dir).unwrap();
    cmd.env("STATE_DIRECTORY", &state_dir);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    firewall_support::poll(Duration::from_secs(10), "policy service", || {
        std::net::TcpStream::connect(("127.0.0.1", POLICY_PORT)).ok()
    });
    Process(child)
}

fn time_of(job: &Value, key: &str) -> String {
    job[key]
        .as_str()
        .map(|t| t.get(11..23).unwrap_or(t).to_string())
        .unwrap_or_else(|| "-".into())
}

#[test]
#[ignore = "the demo; run by `make demo`"]
fn demo() {
    let _serial = lab::serial();
    let Some(lxd) = lab::lxd() else { return };
    let started = Instant::now();
    println!("\n== GitHub simulator in its own network namespace");
    let sim = Sim::start(&["acme"], &[REPO]);
    sim.post(
        &format!("/_sim/repos/{REPO}/branches"),
        json!({"name": "main", "protection": {"required_reviews": {}}}),
    );
    println!("   {} serving {REPO}", sim.url);

    let unit = Unit::new(
        &lxd,
        "github-runner",
        0,
        &sim,
        json!({"path": REPO, "virtual-machines": 3}),
    );
    script_installed_host(&unit);
    println!("== install");
    unit.run("hooks/install");
    println!("   status: {:?}", unit.h.last_status().unwrap());
    let _policy = start_policy_service(&unit);
    println!("   policy service listening on {BRIDGE_IP}:{POLICY_PORT} with the charm's token");

    println!("== config-changed: virtual-machines=3");
    let t = Instant::now();
    unit.run("hooks/config-changed");
    unit.wait_pool(&sim, 3, Duration::from_secs(180));
    println!(
        "   3 runners online after {:.1}s; status: {:?}",
        t.elapsed().as_secs_f64(),
        unit.h.last_status().unwrap()
    );

    println!("== queueing {JOBS} jobs");
    let jobs: Vec<u64> = (0..JOBS)
        .map(|i| {
            sim.queue_job(
                REPO,
                &["github-runner"],
                &[&format!("echo job {i} on $(hostname)"), "sleep 2"],
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = jobs
            .iter()
            .filter(|j| sim.job(**j)["state"] == json!("completed"))
            .count();
        if done == JOBS {
            break;
        }
        assert!(Instant::now() < deadline, "jobs did not finish");
        // What the reconcile timer does every reconcile-interval.
        unit.run("reconcile-runners");
        std::thread::sleep(Duration::from_secs(2));
    }
    // The last job's runners may still be powering off at one reconcile (counted as
    // starting) and gone by the next: keep reconciling, as the timer would, until the
    // pool is whole again.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        unit.run("reconcile-runners");
        if sim.online_idle(&unit.prefix) == 3 && unit.instances().len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the pool did not refill to 3");
        std::thread::sleep(Duration::from_secs(2));
    }
    unit.wait_pool(&sim, 3, Duration::from_secs(60));

    println!("\n{:<26} {:<8} {:<8}", "runner", "online", "busy");
    for r in sim.runners(&unit.prefix) {
        println!(
            "{:<26} {:<8} {:<8}",
            r["name"].as_str().unwrap_or(""),
            r["online"],
            r["busy"]
        );
    }
    println!(
        "\n{:<4} {:<26} {:<13} {:<13} {:<13} result",
        "job", "runner", "queued", "started", "finished"
    );
    for id in &jobs {
        let j = sim.job(*id);
        println!(
            "{:<4} {:<26} {:<13} {:<13} {:<13} {}",
            id,
            j["runner_name"].as_str().unwrap_or("-"),
            time_of(&j, "queued_at"),
            time_of(&j, "started_at"),
            time_of(&j, "finished_at"),
            j["conclusion"].as_str().unwrap_or("-")
        );
        assert_eq!(j["conclusion"], json!("success"), "{j}");
    }
    println!("\nstatus: {:?}", unit.h.last_status().unwrap());
    // The same machine's charm token: the policy service started above checks the
    // on-demand unit's jobs too.
    let charm_token = std::fs::read(unit.state().join("charm-token")).unwrap();
    drop(unit);
    demo_support::on_demand(&lxd, &sim, &charm_token);
    println!(
        "demo finished in {:.0}s; cleaning up",
        started.elapsed().as_secs_f64()
    );
    let _ = PAT;
}
