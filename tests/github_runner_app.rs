//! The simulator's runner app, run on this machine as host processes against the
//! simulator, registered with `--jitconfig`: goes online, takes a queued job, runs the
//! job-started hook and the steps, and deregisters; a JIT config works once, a failing
//! hook fails the job before its steps, and a runner that dies mid-job stays busy until
//! the job is given up. Registration through `config.sh`: github_runner_app_config_sh.rs.
//! Needs bash, curl and jq (scripts/deps.sh installs them).

mod runner_app_support;

use std::time::Duration;

use github_client::DeleteOutcome;
use runner_app_support::{assert_job_ran, skip, spawn, wait_until, Setup};

#[test]
fn jit_runner_registers_runs_a_job_and_its_config_is_single_use() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("jit-runner", 0);
    let group = setup
        .client
        .runner_group_id("acme", "default")
        .unwrap()
        .unwrap();
    let jit = setup.jit("jit-runner", group, &["jitlabel", "linux"]);
    assert_eq!(jit.runner.ephemeral, Some(true));
    assert_eq!(
        setup.runner_state("jit-runner"),
        Some((false, false)),
        "JIT registers at once"
    );

    let mut runner = spawn(&root, &["--jitconfig", jit.encoded_jit_config.expose()]);
    wait_until("runner online", Duration::from_secs(20), || {
        setup.runner_state("jit-runner") == Some((true, false))
    });
    let copy = setup.install("jit-again", 0);
    let status = spawn(&copy, &["--jitconfig", jit.encoded_jit_config.expose()])
        .wait_exit(Duration::from_secs(20));
    assert!(!status.success(), "a JIT config works once");

    let job = setup.queue_job("jit-runner", &["jitlabel"]);
    let status = runner.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert_job_ran(&setup, "jit-runner", job, "success");
    assert!(setup.marks("jit-runner").join("step1").exists());
    assert_eq!(setup.runner_state("jit-runner"), None);
}

#[test]
fn failing_hook_fails_the_job_before_its_steps() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("hook-fails", 3);
    let jit = setup.jit("hook-fails", 1, &["h"]);
    let mut runner = spawn(&root, &["--jitconfig", jit.encoded_jit_config.expose()]);
    let job = setup.queue_job("hook-fails", &["h"]);
    assert!(runner.wait_exit(Duration::from_secs(30)).success());
    assert_job_ran(&setup, "hook-fails", job, "failure");
    assert!(
        !setup.marks("hook-fails").join("step1").exists(),
        "steps must not run after a failed hook"
    );
}

#[test]
fn a_runner_that_dies_mid_job_stays_busy_until_the_job_is_lost() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("dies", 0);
    let jit = setup.jit("dies", 1, &["die"]);
    let id = jit.runner.id;
    let mut runner = spawn(&root, &["--jitconfig", jit.encoded_jit_config.expose()]);
    let job = setup.queue_job_with(&["die"], &["sleep 60".to_string()]);
    wait_until("runner busy", Duration::from_secs(20), || {
        setup.runner_state("dies") == Some((true, true))
    });
    runner.kill_group();
    runner.wait_exit(Duration::from_secs(5));
    assert_eq!(
        setup.client.delete_runner(&setup.org, id).unwrap(),
        DeleteOutcome::Busy
    );
    wait_until("job given up", Duration::from_secs(15), || {
        setup.runner_state("dies") == Some((false, false))
    });
    let state = setup.admin("GET", &format!("/_sim/jobs/{job}"), None);
    assert_eq!(
        (
            state["state"].as_str(),
            state["conclusion"].as_str(),
            state["lost"].as_bool()
        ),
        (Some("completed"), Some("failure"), Some(true))
    );
    assert_eq!(
        setup.client.delete_runner(&setup.org, id).unwrap(),
        DeleteOutcome::Deleted
    );
}
