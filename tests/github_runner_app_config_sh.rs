//! The simulator's runner app, run on this machine as host processes against the
//! simulator, registered through `config.sh` with a registration token: goes online,
//! runs a job and deregisters when ephemeral; a persistent listener stops on SIGINT and
//! `config.sh remove` deregisters it; `--runnergroup` and `--replace`; and `config.sh
//! remove` refusing a bad token. JIT registration: github_runner_app.rs. Needs bash,
//! curl and jq (scripts/deps.sh installs them).

mod runner_app_support;

use std::time::Duration;

use runner_app_support::{assert_job_ran, config_sh, skip, spawn, wait_until, Setup};
use serde_json::json;

#[test]
fn config_sh_runner_registers_runs_a_job_and_deregisters() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("cfg-runner", 0);
    let ephemeral = ["--labels", "custom1,gpu", "--ephemeral", "--work", "_work"];
    let (status, output) = setup.register(&root, "cfg-runner", &ephemeral);
    assert!(status.success(), "{output}");
    assert_eq!(
        setup.runner_state("cfg-runner"),
        Some((false, false)),
        "registered, not yet online"
    );

    let mut runner = spawn(&root, &[]);
    wait_until("runner online", Duration::from_secs(20), || {
        setup.runner_state("cfg-runner") == Some((true, false))
    });
    let job = setup.queue_job("cfg-runner", &["self-hosted", "custom1"]);
    let status = runner.wait_exit(Duration::from_secs(30));
    assert!(
        status.success(),
        "ephemeral runner exits 0 after its job: {status:?}"
    );
    assert_job_ran(&setup, "cfg-runner", job, "success");
    let marks = setup.marks("cfg-runner");
    assert_eq!(
        std::fs::read_to_string(marks.join("step1")).unwrap().trim(),
        "one"
    );
    assert_eq!(
        std::fs::read_to_string(marks.join("step2")).unwrap().trim(),
        "acme/web"
    );
    assert_eq!(
        setup.runner_state("cfg-runner"),
        None,
        "ephemeral runner deregistered"
    );
}

#[test]
fn listener_stops_on_sigint_and_config_remove_deregisters() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("persistent", 0);
    let (status, output) = setup.register(&root, "persistent", &[]);
    assert!(status.success(), "{output}");
    let mut runner = spawn(&root, &[]);
    wait_until("runner online", Duration::from_secs(20), || {
        setup.runner_state("persistent") == Some((true, false))
    });
    let pid = nix::unistd::Pid::from_raw(runner.0.id() as i32);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(
        comm.trim(),
        "Runner.Listener",
        "pkill -2 Runner.Listener must find it"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = runner.wait_exit(Duration::from_secs(5));
    assert!(!status.success());
    wait_until("runner offline", Duration::from_secs(10), || {
        setup.runner_state("persistent") == Some((false, false))
    });

    let remove = setup.client.remove_token(&setup.org).unwrap();
    let (status, output) = config_sh(&root, &["remove", "--token", remove.token.expose()]);
    assert!(status.success(), "{output}");
    assert_eq!(setup.runner_state("persistent"), None);
}

#[test]
fn config_sh_registers_into_a_runner_group_and_replace_takes_over_a_name() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let group = setup.admin(
        "POST",
        "/_sim/orgs/acme/runner-groups",
        Some(json!({"name": "gpu"})),
    );
    let group_id = group["id"].as_u64().unwrap();
    let first = setup.install("first", 0);
    let (status, stderr) = setup.register(&first, "shared", &["--runnergroup", "gpu"]);
    assert!(status.success(), "{stderr}");
    let old = setup.registered("shared");
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].runner_group_id, Some(group_id), "in the gpu group");
    let (status, stderr) =
        setup.register(&setup.install("lost", 0), "x", &["--runnergroup", "nope"]);
    assert!(!status.success(), "an unknown group is refused");
    assert!(stderr.contains("runner group not found"), "{stderr}");

    // Another machine under the same name: refused, unless it replaces the old one.
    let second = setup.install("second", 0);
    let (status, stderr) = setup.register(&second, "shared", &[]);
    assert!(!status.success());
    assert!(stderr.contains("same name"), "{stderr}");
    let (status, stderr) = setup.register(&second, "shared", &["--replace"]);
    assert!(status.success(), "{stderr}");
    let now = setup.registered("shared");
    assert_eq!(now.len(), 1, "one registration under the name");
    assert_ne!(now[0].id, old[0].id, "the old registration was replaced");
    assert_eq!(now[0].runner_group_id, Some(1), "back in the default group");

    // The replaced runner's own registration is gone: its removal is skipped.
    let remove = setup.client.remove_token(&setup.org).unwrap();
    let (status, output) = config_sh(&first, &["remove", "--token", remove.token.expose()]);
    assert!(status.success(), "{output}");
    assert!(output.contains("Does not exist. Skipping"), "{output}");
    assert_eq!(setup.registered("shared").len(), 1);
}

#[test]
fn config_remove_with_a_bad_token_fails_and_keeps_the_runner() {
    if skip() {
        return;
    }
    let setup = Setup::new();
    let root = setup.install("keeper", 0);
    let (status, stderr) = setup.register(&root, "keeper", &[]);
    assert!(status.success(), "{stderr}");

    let (status, output) = config_sh(&root, &["remove", "--token", "AAAAbogusRemoveToken"]);
    assert!(!status.success(), "a rejected remove token is a failure");
    assert!(
        output.contains("removing the runner failed (401)"),
        "{output}"
    );
    assert_eq!(setup.registered("keeper").len(), 1);
    assert!(root.join(".runner").exists(), "still configured");

    let remove = setup.client.remove_token(&setup.org).unwrap();
    let (status, output) = config_sh(&root, &["remove", "--token", remove.token.expose()]);
    assert!(status.success(), "{output}");
    assert!(output.contains("Runner removed"), "{output}");
    assert!(setup.registered("keeper").is_empty());
    assert!(!root.join(".runner").exists());
}
