//! The scale-set world's rules: offers, acquires, redelivery, session ends.

use super::*;
use crate::jobs::{Job, JobSpec};
use crate::scaleset::world::tests::set;
use crate::state::{Scope, SimRunner};
use std::time::Duration;

const URL: &str = "http://sim/_services/acme/";

fn world_with_sets(names: &[&str]) -> World {
    let mut w = World::for_tests(100);
    w.add_org("acme");
    for (i, name) in names.iter().enumerate() {
        let id = 100 + i as u64;
        let acme = Scope::Org("acme".into());
        w.scalesets
            .sets
            .insert(id, set(id, acme, name, &["shared"]));
    }
    w
}

fn queue(w: &mut World, id: u64, labels: &[&str]) {
    let spec = JobSpec {
        repository: "acme/web".into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        ..Default::default()
    };
    w.jobs.insert(id, Job::new(id, spec, Utc::now()));
    w.offer_job(id);
}

/// The open session of scale set `id`.
fn session(w: &mut World, id: u64) -> &mut crate::scaleset::world::Session {
    w.scalesets
        .sets
        .get_mut(&id)
        .unwrap()
        .session
        .as_mut()
        .unwrap()
}

fn kinds(jobs: &[Value]) -> Vec<&str> {
    jobs.iter()
        .map(|m| m["messageType"].as_str().unwrap())
        .collect()
}

#[test]
fn the_first_acquirer_gets_the_job_and_a_lost_session_gives_it_back() {
    let mut w = world_with_sets(&["a", "b"]);
    w.open_session(100, "la".into(), URL.into(), Instant::now());
    queue(&mut w, 1, &["shared"]);
    w.open_session(101, "lb".into(), URL.into(), Instant::now());
    let (m, jobs) = w.next_message(101, 0).unwrap();
    assert_eq!(
        kinds(&jobs),
        ["JobAvailable"],
        "a new session hears of waiting jobs"
    );
    assert_eq!(w.acquire(100, &[1], "la", Utc::now()), vec![1]);
    assert_eq!(w.acquire(101, &[1], "lb", Utc::now()), Vec::<u64>::new());
    assert_eq!(
        w.acquire(100, &[1, 99], "la", Utc::now()),
        vec![1],
        "again: harmless"
    );
    assert_eq!(w.statistics(100).total_assigned_jobs, 1);
    assert_eq!(w.statistics(101).total_available_jobs, 0);
    assert!(w.end_session(100));
    assert_eq!(w.jobs[&1].state, JobState::Queued);
    let (_, jobs) = w.next_message(101, m).unwrap();
    assert_eq!(kinds(&jobs), ["JobAvailable"], "offered again");
    assert_eq!(w.acquire(101, &[1], "lb", Utc::now()), vec![1]);
    assert_eq!(w.jobs[&1].acquired_by.as_deref(), Some("lb"));
}

#[test]
fn messages_come_again_until_acknowledged_and_follow_the_job() {
    let mut w = world_with_sets(&["a"]);
    w.open_session(100, "la".into(), URL.into(), Instant::now());
    queue(&mut w, 1, &["a"]);
    let (first, jobs) = w.next_message(100, 0).unwrap();
    assert_eq!(kinds(&jobs), ["JobAvailable"]);
    assert_eq!(w.next_message(100, 0).unwrap().0, first, "redelivered");
    assert!(w.next_message(100, first).is_none(), "nothing newer");
    w.acquire(100, &[1], "la", Utc::now());
    let runner = SimRunner {
        id: 5,
        name: "r5".into(),
        scope: Scope::Org("acme".into()),
        labels: vec!["a".into()],
        default_labels: 0,
        group_id: 1,
        scale_set_id: Some(100),
        ephemeral: true,
        jit: true,
        busy: false,
        job_id: None,
        credential: "c".into(),
        session_started: true,
        last_contact: None,
        polls: 0,
    };
    w.runners.insert(5, runner);
    assert_eq!(w.statistics(100).total_idle_runners, 1);
    assert!(w.assign(5, Utc::now()).is_some());
    assert_eq!(w.statistics(100).total_busy_runners, 1);
    assert!(w.complete(5, 1, "success", Utc::now()));
    session(&mut w, 100).unacked.remove(&first);
    let (_, jobs) = w.next_message(100, first).unwrap();
    assert_eq!(kinds(&jobs), ["JobAssigned", "JobStarted", "JobCompleted"]);
    assert_eq!(jobs[2]["result"], "succeeded");
    assert_eq!(jobs[1]["runnerName"], "r5");
    assert!(!w.runners.contains_key(&5), "ephemeral");
}

#[test]
fn a_session_without_polls_times_out_and_scale_set_jobs_skip_other_runners() {
    let mut w = world_with_sets(&["a"]);
    w.scalesets.settings.session_timeout = Duration::from_secs(5);
    let t0 = Instant::now();
    w.open_session(100, "la".into(), URL.into(), t0);
    assert_eq!(w.next_session_expiry(), Some(t0 + Duration::from_secs(5)));
    assert!(!w.expire_sessions(t0 + Duration::from_secs(4)));
    assert!(w.expire_sessions(t0 + Duration::from_secs(6)));
    assert!(w.scalesets.sets[&100].session.is_none());
    queue(&mut w, 1, &["a"]);
    assert!(w.scalesets.claims(&w.jobs[&1]));
}

#[test]
fn a_session_hears_only_of_the_jobs_its_capacity_holds() {
    let mut w = world_with_sets(&["a", "b"]);
    w.open_session(100, "la".into(), URL.into(), Instant::now());
    session(&mut w, 100).max_capacity = Some(1);
    w.open_session(101, "lb".into(), URL.into(), Instant::now());
    for id in 1..=3 {
        queue(&mut w, id, &["shared"]);
    }
    let (m, jobs) = w.next_message(100, 0).unwrap();
    assert_eq!(kinds(&jobs), ["JobAvailable"], "one fits a capacity of 1");
    assert_eq!(jobs[0]["runnerRequestId"], 1);
    let (_, jobs) = w.next_message(101, 0).unwrap();
    assert_eq!(kinds(&jobs), ["JobAvailable"; 3], "no capacity said: all");
    // b takes job 2; a takes job 1 and then holds its capacity until the job is done.
    assert_eq!(w.acquire(101, &[2], "lb", Utc::now()), vec![2]);
    assert_eq!(w.acquire(100, &[1], "la", Utc::now()), vec![1]);
    let (m, jobs) = w.next_message(100, m).unwrap();
    assert_eq!(
        kinds(&jobs),
        ["JobAssigned"],
        "nothing more offered while full"
    );
    w.jobs.get_mut(&1).unwrap().state = JobState::Completed;
    w.job_completed(1, 7, "r1");
    let (_, jobs) = w.next_message(100, m).unwrap();
    assert_eq!(kinds(&jobs), ["JobCompleted", "JobAvailable"]);
    assert_eq!(
        jobs[1]["runnerRequestId"], 3,
        "the one still queued, not b's"
    );
}
