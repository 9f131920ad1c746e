//! Fault injection on the real LXD test daemon, through the real charm binary: GitHub
//! failing in every way the simulator can fail, the charm killed half-way, a runner's
//! container killed mid-job, the LXD daemon itself stopped by its PID and started
//! again, a missing image, a full storage pool and a second reconcile racing the first.
//! Each test ends with a converged pool, no leaked instance or registration, no busy
//! runner removed, and a status that says what happened.

mod firewall_support;
mod harness;
mod lab;

use std::time::{Duration, Instant};

use firewall_support::poll;
use lab::daemon::Daemon;
use lab::faults::assert_no_leaks;
use lab::{Lab, Unit};
use nix::sys::signal::Signal;
use serde_json::json;

const REPO: &str = "acme/widgets";
/// The route of the charm's runner list for [`REPO`], as the simulator's faults name it.
const RUNNERS: &str = "GET /repos/:owner/:repo/actions/runners";
const SETTLE: Duration = Duration::from_secs(120);

fn status(unit: &Unit) -> (String, String) {
    unit.h.last_status().expect("a status was set")
}

/// GitHub failing, one way after the other, against a steady pool: each failure ends
/// the reconcile `waiting` with the cause, deletes nothing, and the pool is untouched
/// once GitHub is healthy again.
#[test]
fn github_failures_wait_delete_nothing_and_recover() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.converged(REPO, "ghr-gh", 1);
    let before = unit.instances();

    let steady = |why: &str| {
        assert_eq!(unit.instances(), before, "{why}: the pool changed");
        assert_eq!(sim.runners(&unit.prefix).len(), 1, "{why}");
    };
    let waits_with = |why: &str, words: &[&str]| {
        let started = Instant::now();
        unit.run("reconcile-runners");
        let (s, message) = status(&unit);
        eprintln!("{why}: {s}: {message}");
        assert_eq!(s, "waiting", "{why}: {message}");
        for w in words {
            assert!(message.contains(w), "{why}: {message:?} lacks {w:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "{why}: too slow"
        );
        steady(why);
    };
    let recovers = |why: &str| {
        sim.clear_faults();
        unit.run("reconcile-runners");
        let (s, message) = status(&unit);
        assert_eq!(s, "active", "{why}: {message}");
        steady(why);
    };

    // 500s for a while, then healthy.
    sim.fault(json!({"route": "*", "count": 100, "status": 500}));
    waits_with("500s", &["GitHub server error 500"]);
    recovers("after 500s");

    // A secondary rate limit with retry-after: waited for, then it passes. One-shot
    // faults go to the charm's runner list: on "*" the policy service's health call
    // (GET /rate_limit, before the reconcile) could take them instead.
    sim.fault(
        json!({"route": RUNNERS, "count": 1, "status": 429, "retry_after": 1,
               "message": "You have exceeded a secondary rate limit"}),
    );
    unit.run("reconcile-runners");
    assert_eq!(status(&unit).0, "active", "{:?}", status(&unit));
    assert!(
        unit.h.logs().iter().any(|(_, m)| m.contains("429")),
        "the retry is logged: {:?}",
        unit.h.logs()
    );
    steady("429");

    // The primary rate limit exhausted: the status says until when; even a flush
    // deletes nothing, since GitHub cannot be read.
    sim.rate_limit(json!({"remaining": 0, "reset_in_secs": 900}));
    waits_with("rate limit", &["rate limit exhausted until "]);
    let message = status(&unit).1;
    let until = message
        .split("until ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).expect("an RFC 3339 time");
    let ahead = until.timestamp() - chrono::Utc::now().timestamp();
    assert!((800..=1000).contains(&ahead), "{message}: {ahead}s ahead");
    unit.h.set_action_params(json!({"flush-busy": true}));
    let run = unit.h.run("actions/flush-runners");
    assert!(run.success(), "{}", run.stderr());
    let failure = unit.h.action_failure().expect("the flush fails");
    assert!(failure.contains("rate limit"), "{failure}");
    steady("flush under the rate limit");
    sim.rate_limit(json!({"remaining": 5000}));
    recovers("after the rate limit");

    // Answers slower than the client's timeout (2 s under the test knob).
    sim.fault(json!({"route": "*", "count": 100, "latency_ms": 4000}));
    waits_with("slow GitHub", &["cannot reach GitHub"]);
    recovers("after slow answers");

    // The connection dropped mid-response: once is retried, always waits.
    sim.fault(json!({"route": RUNNERS, "count": 1, "drop": true}));
    unit.run("reconcile-runners");
    assert_eq!(status(&unit).0, "active", "{:?}", status(&unit));
    sim.fault(json!({"route": "*", "count": 100, "drop": true}));
    waits_with("dropped connections", &["cannot reach GitHub"]);
    recovers("after dropped connections");

    unit.wait_pool(sim, 1, SETTLE);
    assert_no_leaks(&unit, sim);
}

/// SIGKILL while creating runners: the next reconcile removes what was half made at
/// once (not after the grace time) and fills the pool.
#[test]
fn a_manager_killed_mid_creation_is_cleaned_up_after_its_restart() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.converged(REPO, "ghr-kill", 0);

    unit.configure(sim, json!({"path": REPO, "virtual-machines": 2}));
    let mut child = unit.h.spawn("reconcile-runners");
    // The manager (which makes the runners) killed with SIGKILL while an instance
    // exists in LXD and is not finished yet; systemd starts it again.
    let half_made = unit.half_made(SETTLE);
    unit.crash_manager();
    child.wait().unwrap();
    eprintln!(
        "killed while making {half_made:?}; instances {:?}",
        unit.instances()
    );

    unit.h.clear_calls();
    unit.run("reconcile-runners");
    eprintln!(
        "next reconcile: {:?}\n{:#?}",
        unit.h.last_status(),
        unit.h.logs()
    );
    unit.wait_pool(sim, 2, SETTLE);
    let now = unit.instances();
    for name in &half_made {
        assert!(!now.contains(name), "half-made {name} is still there");
    }
    assert!(
        unit.h.logs().iter().any(|(_, m)| m.contains("half-made")),
        "{:?}",
        unit.h.logs()
    );
    assert_eq!(now.len(), 2);
    assert_no_leaks(&unit, sim);
}

/// A runner's container killed mid-job: its registration stays busy until GitHub gives
/// the job up; the reconcile neither spins nor fails on it, replaces the runner, and a
/// later reconcile removes the registration.
#[test]
fn a_container_killed_mid_job_is_replaced_and_cleaned_later() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.converged(REPO, "ghr-lost", 1);

    let job = sim.queue_job(REPO, &["ghr-lost"], &["sleep 600"]);
    let started = sim.wait_job(job, "in_progress", SETTLE);
    let busy = started["runner_name"].as_str().unwrap().to_string();
    lab.lxd.lxc(&["delete", "--force", &busy]).unwrap();

    let t = Instant::now();
    unit.run("reconcile-runners");
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let (s, message) = status(&unit);
    assert_eq!(s, "active", "{message}");
    eprintln!("lost mid-job: {message}");
    assert!(message.contains("1 lost mid-job"), "{message}");
    let dead = sim
        .runners(&unit.prefix)
        .into_iter()
        .find(|r| r["name"] == json!(busy))
        .expect("the busy registration is kept while GitHub holds the job");
    assert_eq!(dead["busy"], json!(true));

    // The simulator gives the job up after --lost-job-after (20 s in the lab).
    poll(SETTLE, "the lost runner's registration to go", || {
        unit.run("reconcile-runners");
        let gone = !sim
            .runners(&unit.prefix)
            .iter()
            .any(|r| r["name"] == json!(busy));
        gone.then_some(())
    });
    assert_eq!(sim.job(job)["state"], json!("completed"));
    unit.wait_pool(sim, 1, SETTLE);
    assert!(!status(&unit).1.contains("lost"), "{:?}", status(&unit));
    assert_no_leaks(&unit, sim);
}

/// A runner image alias that LXD does not have blocks, naming it; nothing is made.
#[test]
fn a_missing_image_blocks_naming_it() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let mut unit = lab.unit(
        "ghr-noimg",
        json!({"path": REPO, "virtual-machines": 1, "runner-image": "ghr-no-such-image"}),
    );
    unit.fail_fast();
    unit.run("hooks/config-changed");
    let (s, message) = status(&unit);
    assert_eq!(s, "blocked", "{message}");
    assert!(
        message.contains("\"ghr-no-such-image\"") && message.contains("runner-image"),
        "{message}"
    );
    assert!(unit.instances().is_empty());
    assert!(sim.runners(&unit.prefix).is_empty());

    unit.configure(sim, json!({"path": REPO, "virtual-machines": 1}));
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 1, SETTLE);
    assert_no_leaks(&unit, sim);
}

/// A reconcile asked for while another runs is answered after it (the runner manager
/// does one request at a time), and the first one's work is not doubled.
#[test]
fn a_second_reconcile_waits_for_the_first() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.converged(REPO, "ghr-lock", 0);

    // The first reconcile holds the lock for at least its slow first GitHub call and
    // the creation of a runner.
    unit.configure(sim, json!({"path": REPO, "virtual-machines": 1}));
    sim.fault(
        json!({"route": "GET /repos/:owner/:repo/actions/runners", "count": 1, "latency_ms": 1500}),
    );
    let lock_file = unit.state().join("reconcile.lock");
    unit.h.clear_calls();
    let mut first = unit.h.spawn("reconcile-runners");
    poll(SETTLE, "the first reconcile holding the lock", || {
        let file = std::fs::File::open(&lock_file).ok()?;
        let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock).is_err();
        held.then_some(())
    });
    // The second is answered once the first is done, and finds its work done.
    unit.run("reconcile-runners");
    // Both done by then, in order: the first made the runner, the second found it.
    let logs = unit.h.logs();
    let done: Vec<&str> = logs
        .iter()
        .map(|(_, m)| m.as_str())
        .filter(|m| m.starts_with("reconcile: created"))
        .collect();
    assert!(
        done.len() == 2
            && done[0].starts_with("reconcile: created 1,")
            && done[1].starts_with("reconcile: created 0,"),
        "{done:?}"
    );
    // Its answer came first; the hook may still be setting its status.
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the first reconcile still runs after the second was answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (s, message) = status(&unit);
    assert_eq!(s, "active", "{message}");
    assert!(message.starts_with("1 runners"), "{message}");
    unit.wait_pool(sim, 1, SETTLE);
    assert_eq!(unit.instances().len(), 1, "no runner made twice");
    assert_no_leaks(&unit, sim);
}

/// The runners' RAM-backed pool full: creation fails cleanly, saying so, leaves no
/// instance or registration, and works again once there is room.
#[test]
fn a_full_storage_pool_fails_cleanly() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.converged(REPO, "ghr-full", 0);

    // Leave a few MiB free in the pool's tmpfs: less than one container needs.
    let pool = unit.state().join("pool");
    let filler = pool.join("filler");
    let stat = nix::sys::statvfs::statvfs(&pool).unwrap();
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let fill = free.saturating_sub(8 << 20);
    firewall_support::run(&[
        "fallocate",
        "-l",
        &fill.to_string(),
        &filler.display().to_string(),
    ])
    .unwrap();

    unit.configure(sim, json!({"path": REPO, "virtual-machines": 1}));
    unit.run("reconcile-runners");
    let (_, message) = status(&unit);
    eprintln!("pool full: {message}");
    assert!(message.contains("1 failed"), "{message}");
    assert!(unit.instances().is_empty(), "{:?}", unit.instances());
    assert!(sim.runners(&unit.prefix).is_empty());

    std::fs::remove_file(&filler).unwrap();
    unit.run("reconcile-runners");
    unit.wait_pool(sim, 1, SETTLE);
    assert_no_leaks(&unit, sim);
}

/// The LXD daemon stopped by its PID (SIGTERM: it exits and leaves the containers
/// running), then started again. Down for a whole reconcile: the reconcile waits,
/// naming LXD, and deletes nothing on GitHub. Stopped while runners are being made and
/// started a few seconds later: the following reconciles converge, leaking nothing.
#[test]
fn lxd_stopped_then_started_again() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.converged(REPO, "ghr-lxdstop", 1);
    let before = unit.instances();
    // Declared after the unit, so it is dropped first: the daemon answers again before
    // the unit's own cleanup needs it.
    let daemon = match Daemon::of(&lab.lxd) {
        Ok(d) => d,
        Err(reason) => return firewall_support::skip(&reason),
    };

    // Down for a whole reconcile.
    let took = daemon.stop(Signal::SIGTERM).expect("lxd stops");
    eprintln!("lxd stopped (SIGTERM) in {took:?}");
    let t = Instant::now();
    unit.run("reconcile-runners");
    let (s, message) = status(&unit);
    eprintln!("LXD down: {s}: {message} ({:?})", t.elapsed());
    assert_eq!(s, "waiting", "{message}");
    assert!(message.contains("LXD"), "{message}");
    assert_eq!(sim.runners(&unit.prefix).len(), 1, "nothing deleted");
    let took = daemon.start().expect("lxd starts");
    eprintln!("lxd started again in {took:?}");
    assert_eq!(unit.instances(), before, "the runner survived the outage");

    // Stopped while runners are being made, started again a few seconds later: once
    // asked to (SIGTERM, LXD fails what is in flight with 503 "shutting down"), once
    // not (SIGKILL, connections cut and operations lost half-way).
    for (signal, pool) in [(Signal::SIGTERM, 3), (Signal::SIGKILL, 5)] {
        unit.configure(sim, json!({"path": REPO, "virtual-machines": pool}));
        unit.h.clear_calls();
        let mut child = unit.h.spawn("reconcile-runners");
        let half_made = unit.half_made(SETTLE);
        let took = daemon.stop(signal).expect("lxd stops");
        eprintln!("lxd stopped ({signal}) in {took:?} while making {half_made:?}");
        // The outage lasts a few seconds, as a daemon restart does.
        std::thread::sleep(Duration::from_secs(3));
        let took = daemon.start().expect("lxd starts");
        eprintln!("lxd started again in {took:?}");
        let exit = child.wait().unwrap();
        let (s, message) = status(&unit);
        eprintln!("the interrupted reconcile: {exit}, {s}: {message}");
        assert!(
            message.contains("failed") && message.contains("LXD"),
            "{message}"
        );

        let t = Instant::now();
        poll(SETTLE, "a full pool again", || {
            unit.run("reconcile-runners");
            let full = sim.online_idle(&unit.prefix) == pool as usize;
            (full && unit.instances().len() == pool as usize).then_some(())
        });
        eprintln!(
            "{signal}: converged {:?} after the restart\n{:#?}",
            t.elapsed(),
            unit.h.logs()
        );
        let now = unit.instances();
        for name in &half_made {
            assert!(!now.contains(name), "half-made {name} is still there");
        }
        assert_eq!(status(&unit).0, "active", "{:?}", status(&unit));
        assert_no_leaks(&unit, sim);
    }
}
