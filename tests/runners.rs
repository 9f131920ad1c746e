//! End to end on the real LXD test daemon: the charm binary, driven as Juju would,
//! keeps a pool of container runners registered on the simulator; jobs run on them and
//! their instances go away; the reconcile repairs what happens behind its back.

mod firewall_support;
mod harness;
mod lab;

use std::time::Duration;

use lab::forks::{
    fork_pull_requests, marker_exists, marker_step, queue_fork_job, APPROVED_SHA, FORK,
    UNAPPROVED_SHA,
};
use lab::{serial, Lab, Policy, Sim, Unit};
use serde_json::json;

const REPO: &str = "acme/widgets";
const SETTLE: Duration = Duration::from_secs(120);

#[test]
fn pool_runs_jobs_and_is_refilled() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.unit("ghr-pool", json!({"path": REPO, "virtual-machines": 3}));

    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 3, SETTLE);
    assert_eq!(unit.instances().len(), 3);
    let (status, message) = unit.h.last_status().unwrap();
    assert_eq!(status, "active", "{message}");

    // Each runner is sized by the unit's resource profile and set up by its runner
    // profile.
    let first = &unit.instances()[0];
    let instance: serde_json::Value = serde_json::from_str(
        &lab.lxd
            .lxc(&["query", &format!("/1.0/instances/{first}")])
            .unwrap(),
    )
    .unwrap();
    let profiles = unit.profiles();
    assert_eq!(profiles.len(), 2, "{profiles:?}");
    for profile in &profiles {
        assert!(
            instance["profiles"]
                .as_array()
                .unwrap()
                .contains(&json!(profile)),
            "{instance}"
        );
    }
    assert_eq!(
        instance["expanded_config"]["limits.memory"],
        json!("1073741824B")
    );
    assert_eq!(
        instance["expanded_config"]["security.nesting"],
        json!("true")
    );
    assert_eq!(
        instance["expanded_config"]["boot.autostart"],
        json!("false")
    );

    // check-runners names what LXD and the simulator hold.
    unit.h.clear_calls();
    unit.run("actions/check-runners");
    let results = unit.h.action_results();
    let result = |key: &str| results.get(key).cloned().unwrap_or_default();
    let mut registered: Vec<String> = sim
        .runners(&unit.prefix)
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    registered.sort();
    assert_eq!(registered, unit.instances());
    assert_eq!(
        result("online-runners"),
        registered.join(","),
        "{results:?}"
    );
    let keys = [
        "online",
        "offline",
        "busy",
        "unknown",
        "mode",
        "max-runners",
    ];
    let figures: Vec<String> = keys.iter().map(|k| result(k)).collect();
    assert_eq!(figures, ["3", "0", "0", "0", "static", "3"], "{results:?}");
    let limit = [result("effective-max-runners"), result("limited-by")];
    assert_eq!(limit, ["3", "config"], "{results:?}");

    let job = sim.queue_job(
        REPO,
        &["ghr-pool"],
        &["echo ran > /tmp/step-ran", "test -f /tmp/step-ran"],
    );
    let done = sim.wait_job(job, "completed", SETTLE);
    assert_eq!(
        done["conclusion"],
        json!("success"),
        "{done}\npolicy: {}",
        lab.policy.log_text()
    );
    let ran_on = done["runner_name"].as_str().unwrap().to_string();
    assert!(ran_on.starts_with(&unit.prefix), "{ran_on}");
    let log = lab.policy.log_text();
    assert!(
        log.contains(REPO) && log.contains(": pass"),
        "the pre-job hook asked the policy service: {log}"
    );
    firewall_support::poll(SETTLE, "the used runner's instance to go", || {
        (!unit.instances().contains(&ran_on)).then_some(())
    });

    unit.run("reconcile-runners");
    unit.wait_pool(sim, 3, SETTLE);
    assert!(!unit.instances().contains(&ran_on));
}

/// Waits until `runner`'s job is in progress and returns the runner's name.
fn busy_runner(sim: &Sim, job: u64) -> String {
    let started = sim.wait_job(job, "in_progress", SETTLE);
    started["runner_name"].as_str().unwrap().to_string()
}

#[test]
fn scaling_down_and_flushing_never_touch_a_busy_runner_unless_asked() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.unit("ghr-scale", json!({"path": "acme", "virtual-machines": 3}));
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 3, SETTLE);

    let long = sim.queue_job(REPO, &["ghr-scale"], &["sleep 600"]);
    let busy = busy_runner(sim, long);

    // 3 -> 1 while a job runs: the two idle runners go, the busy one stays.
    unit.configure(sim, json!({"path": "acme", "virtual-machines": 1}));
    unit.run("hooks/config-changed");
    firewall_support::poll(SETTLE, "only the busy runner left", || {
        (unit.instances() == [busy.clone()]).then_some(())
    });
    assert_eq!(sim.job(long)["state"], json!("in_progress"));

    // A new kernel waits: no reboot while a job runs.
    let flag = unit.root().join("var/run/reboot-required");
    std::fs::create_dir_all(flag.parent().unwrap()).unwrap();
    std::fs::write(&flag, "").unwrap();
    unit.run("reconcile-runners");
    assert!(unit.h.reboots().is_empty(), "no reboot with a busy runner");

    // flush-busy=false keeps the busy runner.
    unit.h.set_action_params(json!({"flush-busy": false}));
    unit.run("actions/flush-runners");
    assert!(unit.instances().contains(&busy), "{:?}", unit.instances());
    assert_eq!(sim.job(long)["state"], json!("in_progress"));

    // flush-busy=true removes it; its job is lost.
    unit.h.set_action_params(json!({"flush-busy": true}));
    unit.run("actions/flush-runners");
    assert!(!unit.instances().contains(&busy));
    // Nothing busy any more: the timer's reconcile reboots into the new kernel now.
    unit.run("reconcile-runners");
    assert_eq!(unit.h.reboots(), [vec!["--now".to_string()]]);
    std::fs::remove_file(&flag).unwrap();
    unit.configure(sim, json!({"path": "acme", "virtual-machines": 0}));
    unit.run("hooks/config-changed");
    firewall_support::poll(SETTLE, "no instance left", || {
        unit.instances().is_empty().then_some(())
    });
}

#[test]
fn a_reconcile_repairs_what_changed_behind_its_back() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    let unit = lab.unit("ghr-repair", json!({"path": REPO, "virtual-machines": 2}));
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 2, SETTLE);
    let before = unit.instances();

    // An instance deleted behind the charm's back.
    lab.lxd.lxc(&["delete", "--force", &before[0]]).unwrap();
    // A registration deleted behind its back: its runner notices and ends.
    let victim = sim
        .runners(&unit.prefix)
        .into_iter()
        .find(|r| r["name"] == json!(before[1]))
        .unwrap();
    let client = github_client::GithubClient::new(
        &format!("{}/api/v3", sim.url),
        github_runner::config::Token::new(lab::PAT),
        &Default::default(),
    )
    .unwrap();
    let path = github_runner::config::GithubPath::parse(REPO, "default").unwrap();
    client
        .delete_runner(
            &path,
            github_client::RunnerId(victim["id"].as_u64().unwrap()),
        )
        .unwrap();

    // The timer's reconciles: the runner whose registration went notices on its next
    // poll and ends; the reconcile after that replaces it.
    firewall_support::poll(SETTLE, "two fresh runners", || {
        unit.run("reconcile-runners");
        let now = unit.instances();
        let fresh = !now.contains(&before[0]) && !now.contains(&before[1]);
        (sim.online_idle(&unit.prefix) == 2 && now.len() == 2 && fresh).then_some(())
    });
    // Nothing is left registered without an instance.
    let instances = unit.instances();
    for r in sim.runners(&unit.prefix) {
        assert!(
            instances.contains(&r["name"].as_str().unwrap().to_string()),
            "leaked registration {r}"
        );
    }
}

#[test]
fn a_path_change_moves_the_pool_and_units_keep_to_their_own() {
    let other_repo = "acme/gadgets";
    let Some(lab) = Lab::new(&[REPO, other_repo]) else {
        return;
    };
    let sim = &lab.sim;
    let first = Unit::new(
        &lab.lxd,
        "github-runner",
        0,
        sim,
        json!({"path": REPO, "virtual-machines": 2}),
    );
    let second = Unit::new(
        &lab.lxd,
        "github-runner",
        1,
        sim,
        json!({"path": REPO, "virtual-machines": 1}),
    );
    first.run("hooks/config-changed");
    second.run("hooks/config-changed");
    first.wait_pool(sim, 2, SETTLE);
    second.wait_pool(sim, 1, SETTLE);
    let seconds_runner = second.instances();

    // The first unit moves to another repository.
    first.configure(sim, json!({"path": other_repo, "virtual-machines": 2}));
    first.run("hooks/config-changed");
    first.wait_pool(sim, 2, SETTLE);
    for r in sim.runners(&first.prefix) {
        assert_eq!(
            r["scope"]["name"],
            json!(other_repo),
            "left on the old path: {r}"
        );
    }
    // Flushing everything on one unit leaves the other's runner alone.
    first.h.set_action_params(json!({"flush-busy": true}));
    first.run("actions/flush-runners");
    assert_eq!(second.instances(), seconds_runner);
    second.run("reconcile-runners");
    assert_eq!(
        second.instances(),
        seconds_runner,
        "nothing to do costs no change"
    );
}

/// Operators see how much of GitHub's hourly budget is left: each reconcile logs the
/// last response's rate-limit figures, and check-runners reports them.
#[test]
fn the_reconcile_log_and_check_runners_show_githubs_rate_limit() {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let sim = Sim::start(&["acme"], &[REPO]);
    let unit = Unit::new(
        &lxd,
        "ghr-rate",
        0,
        &sim,
        json!({"path": REPO, "virtual-machines": 0}),
    );
    // A fresh unit, which never downloaded the runner application, empties its pool.
    unit.run("hooks/config-changed");
    assert_eq!(
        unit.h.last_status().map(|(s, _)| s).as_deref(),
        Some("active"),
        "{:?}",
        unit.h.statuses()
    );
    unit.run("reconcile-runners");
    let budget = sim.get("/_sim/rate-limit");
    let reset = chrono::DateTime::from_timestamp(budget["reset"].as_i64().unwrap(), 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let want = format!(
        "GitHub rate limit: {} of {} requests left until {reset}",
        budget["remaining"], budget["limit"]
    );
    let logs = unit.h.logs();
    assert!(
        logs.iter()
            .any(|(_, m)| m.starts_with("reconcile:") && m.ends_with(&want)),
        "{want}: {logs:?}"
    );

    unit.run("actions/check-runners");
    let budget = sim.get("/_sim/rate-limit");
    let results = unit.h.action_results();
    let result = |key: &str| results.get(key).cloned().unwrap_or_default();
    assert_eq!(
        result("github-rate-limit-remaining"),
        budget["remaining"].to_string(),
        "{results:?}"
    );
    assert_eq!(result("github-rate-limit-limit"), "5000");
    assert_eq!(result("github-rate-limit-reset"), reset);
}

/// A pull_request job from the fork's `head` at `sha`, once completed.
fn run_fork_job(sim: &Sim, head: &str, sha: &str, marker: &str) -> serde_json::Value {
    let id = queue_fork_job(sim, REPO, &["ghr-policy"], head, sha, marker);
    sim.wait_job(id, "completed", SETTLE)
}

#[test]
fn the_default_policy_runs_a_push_and_an_approved_fork_and_stops_an_unapproved_fork_before_any_step(
) {
    let _serial = serial();
    let Some(lxd) = lab::lxd() else { return };
    let sim = Sim::start(&["acme"], &[REPO]);
    fork_pull_requests(&sim, REPO);
    // The default policy: disallow_fork off, so only execute_job stands between a
    // fork's pull request and the runner.
    let policy = Policy::start(
        &sim,
        json!({"pull_request": {"disallow_fork": {"enabled": false}}}),
    );
    let unit = Unit::new(
        &lxd,
        "ghr-policy",
        0,
        &sim,
        json!({"path": REPO, "virtual-machines": 3}),
    );
    unit.run("hooks/config-changed");
    unit.wait_pool(&sim, 3, SETTLE);

    let push = sim.queue_job(REPO, &["ghr-policy"], &[&marker_step(&sim, "marker-push")]);
    let done = sim.wait_job(push, "completed", SETTLE);
    assert_step_ran(&sim, &policy, &done, "marker-push");

    let done = run_fork_job(&sim, "feature", UNAPPROVED_SHA, "marker-fork");
    assert_eq!(done["conclusion"], json!("failure"), "{done}");
    assert!(
        !marker_exists(&sim, "marker-fork"),
        "no step of the refused job ran"
    );
    assert_refused_by_execute_job(&policy, "feature");
    let refused_on = done["runner_name"].as_str().unwrap().to_string();
    firewall_support::poll(SETTLE, "the refused runner's instance to go", || {
        (!unit.instances().contains(&refused_on)).then_some(())
    });

    let done = run_fork_job(&sim, "approved", APPROVED_SHA, "marker-approved");
    assert_step_ran(&sim, &policy, &done, "marker-approved");
}

/// The completed job succeeded and its step left `marker`.
fn assert_step_ran(sim: &Sim, policy: &Policy, done: &serde_json::Value, marker: &str) {
    let log = policy.log_text();
    assert_eq!(done["conclusion"], json!("success"), "{done}\n{log}");
    assert!(
        marker_exists(sim, marker),
        "no {marker}: the step did not run"
    );
}

/// The policy service refused the fork's `head` under execute_job, not another rule
/// (disallow_fork, checked before it, would name itself).
fn assert_refused_by_execute_job(policy: &Policy, head: &str) {
    let log = policy.log_text();
    let refusal = log
        .lines()
        .find(|l| l.contains(&format!("{FORK}:{head} ")) && l.contains(": fail: "))
        .unwrap_or_else(|| panic!("the policy service logged no refusal: {log}"));
    assert!(
        refusal.contains("fail: execute_job:") && refusal.contains("is not approved"),
        "refused by execute_job, for want of an approval: {refusal}"
    );
}
