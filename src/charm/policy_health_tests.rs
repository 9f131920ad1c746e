use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;
use crate::host::fakes::{FakeClock, FakeCommands};
use crate::host::CmdOutput;

const NOW: u64 = 1_000_000;
const HOUR: u64 = 3600;

fn seen(unit_active: bool, answer: Answer) -> Seen {
    Seen {
        unit_active,
        answer,
    }
}

fn failing() -> Answer {
    Answer::Failing("/health answered 500: GitHub did not answer".into())
}

fn restart(rate_limited: bool) -> impl Fn(&Decision) -> bool {
    move |d| matches!(d, Decision::Restart { rate_limited: r, .. } if *r == rate_limited)
}

#[test]
fn a_healthy_service_is_left_alone() {
    let s = seen(true, Answer::Healthy);
    for evidence in [GithubEvidence::Unknown, GithubEvidence::Answered] {
        assert_eq!(decide(&s, evidence, None, NOW), Decision::Healthy);
    }
}

#[test]
fn a_dead_service_is_restarted_at_once_every_time() {
    for s in [
        seen(false, Answer::Healthy),
        seen(false, failing()),
        seen(true, Answer::Down("connection refused".into())),
    ] {
        // Even right after another restart, and before GitHub was asked.
        let d = decide(&s, GithubEvidence::Unknown, Some(NOW - 1), NOW);
        assert!(restart(false)(&d), "{s:?}: {d:?}");
    }
}

#[test]
fn a_failing_service_waits_for_the_charms_own_github_calls() {
    let d = decide(&seen(true, failing()), GithubEvidence::Unknown, None, NOW);
    assert!(matches!(d, Decision::AskAfterReconcile(ref why) if why.contains("500")));
}

#[test]
fn a_failing_service_is_restarted_once_github_answered_the_charm() {
    let s = seen(true, failing());
    let d = decide(&s, GithubEvidence::Answered, None, NOW);
    assert!(restart(true)(&d), "{d:?}");
    let d = decide(&s, GithubEvidence::Answered, Some(NOW - HOUR), NOW);
    assert!(restart(true)(&d), "an hour later: {d:?}");
}

#[test]
fn a_failing_service_is_restarted_at_most_once_an_hour() {
    let s = seen(true, failing());
    for ago in [0, 1, HOUR - 1] {
        let d = decide(&s, GithubEvidence::Answered, Some(NOW - ago), NOW);
        assert!(
            matches!(d, Decision::Unhealthy(ref why) if why.contains("500")),
            "{ago}s after a restart: {d:?}"
        );
    }
    // A clock that went back does not make the restart look old.
    let d = decide(&s, GithubEvidence::Answered, Some(NOW + 10), NOW);
    assert!(matches!(d, Decision::Unhealthy(_)), "{d:?}");
}

/// Answers in order; the last repeats.
struct Probe(RefCell<VecDeque<Answer>>);

impl Probe {
    fn new(answers: &[Answer]) -> Self {
        Probe(RefCell::new(answers.iter().cloned().collect()))
    }
    fn left(&self) -> usize {
        self.0.borrow().len()
    }
}

impl HealthProbe for Probe {
    fn ask(&self) -> Answer {
        let mut q = self.0.borrow_mut();
        if q.len() > 1 {
            q.pop_front().unwrap()
        } else {
            q.front().cloned().unwrap()
        }
    }
}

/// A service that is down until a restart was asked for, then answers `after`.
struct DownUntilRestart<'a> {
    commands: &'a FakeCommands,
    after: Answer,
}

impl HealthProbe for DownUntilRestart<'_> {
    fn ask(&self) -> Answer {
        let restarted = self
            .commands
            .lines()
            .iter()
            .any(|l| l.contains(" restart "));
        if restarted {
            self.after.clone()
        } else {
            Answer::Down("connection refused".into())
        }
    }
}

struct Setup {
    commands: FakeCommands,
    clock: FakeClock,
    dir: tempfile::TempDir,
    paths: HostPaths,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Setup {
            commands: FakeCommands::new(),
            clock: FakeClock::at(NOW),
            paths: HostPaths::new(dir.path()),
            dir,
        }
    }
    fn check<'a>(&'a self, probe: &'a dyn HealthProbe) -> HealthCheck<'a> {
        HealthCheck {
            commands: &self.commands,
            probe,
            clock: &self.clock,
            paths: &self.paths,
            unit: "github-runner-policy.service",
        }
    }
    fn restarts(&self) -> usize {
        let line = "systemctl restart github-runner-policy.service";
        self.commands.lines().iter().filter(|l| *l == line).count()
    }
}

#[test]
fn a_healthy_service_costs_one_look() {
    let s = Setup::new();
    let probe = Probe::new(&[Answer::Healthy]);
    assert_eq!(
        s.check(&probe).before_reconcile(),
        Checked::Done(Health::Healthy)
    );
    assert_eq!(
        s.commands.lines(),
        ["systemctl is-active --quiet github-runner-policy.service"]
    );
}

#[test]
fn a_just_started_service_gets_a_moment_to_listen_not_a_restart() {
    let s = Setup::new();
    let down = Answer::Down("connection refused".into());
    let probe = Probe::new(&[down.clone(), down.clone(), down, Answer::Healthy]);
    assert_eq!(
        s.check(&probe).before_reconcile(),
        Checked::Done(Health::Healthy)
    );
    assert_eq!(s.restarts(), 0);
    assert_eq!(s.clock.sleeps().len(), 3, "polled, no fixed wait");
}

#[test]
fn a_killed_service_is_restarted_and_waited_for_until_it_listens() {
    let s = Setup::new();
    let probe = DownUntilRestart {
        commands: &s.commands,
        after: Answer::Healthy,
    };
    assert_eq!(
        s.check(&probe).before_reconcile(),
        Checked::Done(Health::Healthy)
    );
    assert_eq!(s.restarts(), 1);
    assert!(s.clock.slept() >= START_GRACE, "the grace was given first");
    assert!(s.clock.slept() < START_GRACE + Duration::from_secs(1));
    assert!(
        !s.paths.policy_health_file().exists(),
        "a dead service's restart is not rate-limited"
    );
}

#[test]
fn an_inactive_unit_that_does_not_come_back_is_reported_by_the_deadline() {
    let s = Setup::new();
    s.commands
        .on("systemctl", &["is-active"], vec![CmdOutput::failed(3, "")]);
    let probe = Probe::new(&[Answer::Down("connection refused".into())]);
    let Checked::Done(Health::Unhealthy(why)) = s.check(&probe).before_reconcile() else {
        panic!("not reported unhealthy")
    };
    assert!(why.contains("connection refused"), "{why}");
    assert_eq!(s.restarts(), 1);
    // An inactive unit gets no grace, only the restart's deadline.
    assert!(s.clock.slept() >= RESTART_DEADLINE);
    assert!(s.clock.slept() < RESTART_DEADLINE + Duration::from_secs(1));
}

#[test]
fn a_failed_restart_is_reported() {
    let s = Setup::new();
    s.commands.on(
        "systemctl",
        &["restart"],
        vec![CmdOutput::failed(5, "Unit not found.")],
    );
    let probe = Probe::new(&[Answer::Down("refused".into())]);
    let Checked::Done(Health::Unhealthy(why)) = s.check(&probe).before_reconcile() else {
        panic!("not reported unhealthy")
    };
    assert!(why.contains("Unit not found"), "{why}");
}

#[test]
fn a_500_is_restarted_only_after_github_answered_and_then_once_an_hour() {
    let s = Setup::new();
    let probe = Probe::new(&[failing()]);
    let check = s.check(&probe);
    assert_eq!(check.before_reconcile(), Checked::AskAfterReconcile);
    assert_eq!(s.restarts(), 0);

    // The reconcile read GitHub; the restarted service still cannot (its first answer
    // is fresh, so a 500 ends the wait at once).
    let Health::Unhealthy(why) = check.after_github_answered() else {
        panic!("a 500 after the restart is unhealthy")
    };
    assert!(
        why.contains("restarted, still failing") && why.contains("500"),
        "{why}"
    );
    assert_eq!(s.restarts(), 1);
    assert!(s.clock.sleeps().is_empty());

    // The next reconciles within the hour leave it alone.
    assert_eq!(check.before_reconcile(), Checked::AskAfterReconcile);
    assert!(matches!(
        check.after_github_answered(),
        Health::Unhealthy(_)
    ));
    assert_eq!(s.restarts(), 1, "no restart loop");
    drop(s.dir);
}

#[test]
fn a_500_that_clears_by_the_second_look_needs_no_restart() {
    let s = Setup::new();
    let probe = Probe::new(&[failing(), Answer::Healthy]);
    let check = s.check(&probe);
    assert_eq!(check.before_reconcile(), Checked::AskAfterReconcile);
    assert_eq!(check.after_github_answered(), Health::Healthy);
    assert_eq!(s.restarts(), 0);
    assert_eq!(probe.left(), 1);
}
