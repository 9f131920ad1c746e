use reconcile::plan::LiveRunner;

use super::*;

/// A runner as a look lists it; a starting one has no registration (a new runner, or
/// one whose registration GitHub dropped after its job).
fn live(name: &str, state: LiveState, age_secs: u64) -> LiveRunner {
    LiveRunner {
        registered: state != LiveState::Starting,
        name: RunnerName::new(name),
        state,
        age_secs,
    }
}

fn kinds(changes: &Changes) -> Vec<String> {
    changes
        .events
        .iter()
        .map(|e| {
            let v = serde_json::to_value(e).unwrap();
            format!(
                "{} {}",
                v["event"].as_str().unwrap(),
                v["runner"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_runner_is_created_comes_online_takes_a_job_and_ends() {
    let mut life = Lifecycle::default();
    let created = Report {
        created: vec![RunnerName::new("u-0-a")],
        live: vec![live("u-0-a", LiveState::Starting, 0)],
        starting: 1,
        ..Report::default()
    };
    let first = life.look(&created, 0.0, |_| None);
    assert_eq!(kinds(&first), ["created u-0-a"]);
    let online = Report {
        live: vec![live("u-0-a", LiveState::Idle, 12)],
        idle: 1,
        ..Report::default()
    };
    let second = life.look(&online, 12.0, |_| None);
    assert_eq!(kinds(&second), ["online u-0-a"]);
    assert_eq!(second.spawned, [12.0]);
    assert_eq!(second.idle_runner_seconds, 0.0, "it was starting before");
    let busy = Report {
        live: vec![live("u-0-a", LiveState::Busy, 20)],
        busy: 1,
        ..Report::default()
    };
    let third = life.look(&busy, 20.0, |_| None);
    assert_eq!(kinds(&third), ["job-started u-0-a"]);
    assert_eq!(third.idle_runner_seconds, 8.0, "idle from 12 s to 20 s");
    assert!(third.spawned.is_empty(), "online once");
    let ended = Report {
        removed_runners: vec![(RunnerName::new("u-0-a"), Reason::Ended)],
        ..Report::default()
    };
    let fourth = life.look(&ended, 30.0, |n| Some(format!("succeeded:{n}")));
    assert_eq!(kinds(&fourth), ["job-completed u-0-a", "removed u-0-a"]);
    assert_eq!((fourth.jobs_started, fourth.jobs_completed), (0, 1));
    let v = serde_json::to_value(&fourth.events[0]).unwrap();
    assert_eq!(v["result"], "succeeded:u-0-a");
}

#[test]
fn a_job_done_between_two_looks_still_counts_and_a_dead_start_does_not() {
    let mut life = Lifecycle::default();
    let up = Report {
        live: vec![
            live("u-0-a", LiveState::Idle, 30),
            live("u-0-b", LiveState::Starting, 30),
        ],
        ..Report::default()
    };
    life.look(&up, 0.0, |_| None);
    let gone = Report {
        removed_runners: vec![
            (RunnerName::new("u-0-a"), Reason::Ended),
            (RunnerName::new("u-0-b"), Reason::Ended),
        ],
        ..Report::default()
    };
    let changes = life.look(&gone, 60.0, |_| None);
    assert_eq!((changes.jobs_started, changes.jobs_completed), (1, 1));
    assert_eq!(
        kinds(&changes),
        [
            "job-started u-0-a",
            "job-completed u-0-a",
            "removed u-0-a",
            "removed u-0-b"
        ]
    );
}

#[test]
fn a_registration_gone_after_the_job_counts_it_once_whatever_removes_the_runner() {
    let mut life = Lifecycle::default();
    let busy = Report {
        live: vec![
            live("u-0-a", LiveState::Busy, 20),
            live("u-0-b", LiveState::Idle, 20),
        ],
        ..Report::default()
    };
    life.look(&busy, 0.0, |_| None);
    // GitHub dropped both registrations: each reads as starting again.
    let done = Report {
        live: vec![
            live("u-0-a", LiveState::Starting, 30),
            live("u-0-b", LiveState::Starting, 30),
        ],
        ..Report::default()
    };
    let changes = life.look(&done, 10.0, |_| None);
    assert_eq!((changes.jobs_started, changes.jobs_completed), (1, 2));
    // Then one is removed as surplus and the other's instance deletes itself.
    let gone = Report {
        removed_runners: vec![(RunnerName::new("u-0-a"), Reason::Surplus)],
        ..Report::default()
    };
    let changes = life.look(&gone, 20.0, |_| None);
    assert_eq!((changes.jobs_started, changes.jobs_completed), (0, 0));
    assert_eq!(kinds(&changes), ["removed u-0-a"]);
}

#[test]
fn an_instance_that_deleted_itself_after_its_job_counts_it() {
    let mut life = Lifecycle::default();
    let idle = Report {
        live: vec![
            live("u-0-a", LiveState::Idle, 20),
            live("u-0-b", LiveState::Starting, 5),
        ],
        ..Report::default()
    };
    life.look(&idle, 0.0, |_| None);
    let changes = life.look(&Report::default(), 10.0, |_| Some("succeeded".into()));
    assert_eq!((changes.jobs_started, changes.jobs_completed), (1, 1));
    assert_eq!(
        kinds(&changes),
        ["job-started u-0-a", "job-completed u-0-a"]
    );
}

#[test]
fn a_finished_runner_removed_as_surplus_counts_and_an_idle_one_does_not() {
    let mut life = Lifecycle::default();
    let up = Report {
        live: vec![
            live("u-0-a", LiveState::Idle, 20),
            live("u-0-b", LiveState::Idle, 20),
        ],
        ..Report::default()
    };
    life.look(&up, 0.0, |_| None);
    // a's registration went with its job; both are removed as surplus in one look.
    let scaled_down = Report {
        removed_runners: vec![
            (RunnerName::new("u-0-a"), Reason::Surplus),
            (RunnerName::new("u-0-b"), Reason::Surplus),
        ],
        removed_starting: vec![RunnerName::new("u-0-a")],
        ..Report::default()
    };
    let changes = life.look(&scaled_down, 10.0, |_| None);
    assert_eq!((changes.jobs_started, changes.jobs_completed), (1, 1));
    assert_eq!(
        kinds(&changes),
        [
            "job-started u-0-a",
            "job-completed u-0-a",
            "removed u-0-a",
            "removed u-0-b"
        ]
    );
}

#[test]
fn a_restarted_manager_takes_the_runners_it_finds_as_they_are() {
    let mut life = Lifecycle::default();
    let found = Report {
        live: vec![
            live("u-0-old", LiveState::Idle, 7200),
            live("u-0-busy", LiveState::Busy, 3600),
        ],
        idle: 1,
        busy: 1,
        ..Report::default()
    };
    let first = life.look(&found, 0.0, |_| None);
    assert_eq!(
        first,
        Changes::default(),
        "no spawn of a 2-hour-old runner, no job started"
    );
    let later = life.look(&found, 10.0, |_| None);
    assert!(later.events.is_empty() && later.spawned.is_empty());
    assert_eq!(later.idle_runner_seconds, 10.0);
}

#[test]
fn an_offline_blip_and_a_failed_removal_count_no_job() {
    let mut life = Lifecycle::default();
    let up = Report {
        live: vec![
            live("u-0-a", LiveState::Idle, 20),
            live("u-0-b", LiveState::Idle, 20),
        ],
        ..Report::default()
    };
    life.look(&up, 0.0, |_| None);
    // a's registration reads offline for a moment; b's removal (aged) fails.
    let mut blip = live("u-0-a", LiveState::Starting, 30);
    blip.registered = true;
    let next = Report {
        live: vec![blip],
        remove_failed: vec![RunnerName::new("u-0-b")],
        ..Report::default()
    };
    let changes = life.look(&next, 10.0, |_| None);
    assert_eq!(
        (changes.jobs_started, changes.jobs_completed),
        (0, 0),
        "{changes:?}"
    );
    // Both are seen idle again: no second online event, no spawn time.
    let again = life.look(&up, 20.0, |_| None);
    assert!(
        again.events.is_empty() && again.spawned.is_empty(),
        "{again:?}"
    );
}
