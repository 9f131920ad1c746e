use super::*;

fn n(s: &str) -> RunnerName {
    RunnerName(format!("app-0-{s}"))
}

fn inst(s: &str, running: bool, age: u64) -> ObservedInstance {
    ObservedInstance {
        name: n(s),
        running,
        age_secs: age,
    }
}

fn reg(id: u64, s: &str, online: bool, busy: bool) -> ObservedRegistration {
    ObservedRegistration {
        id,
        name: n(s),
        online,
        busy,
    }
}

fn want(runners: u32) -> Desired {
    Desired {
        runners,
        grace_secs: 300,
        max_idle_secs: 72_000,
        flush: Flush::None,
        keep: Default::default(),
    }
}

fn removed(p: &Plan) -> Vec<(String, Reason)> {
    p.removals().map(|(name, r)| (name.0.clone(), r)).collect()
}

#[test]
fn empty_pool_creates_the_wanted_count() {
    let p = plan(&want(3), &Observed::default());
    assert_eq!(p.creates(), 3);
    assert_eq!(removed(&p), []);
}

#[test]
fn a_healthy_pool_needs_nothing() {
    let o = Observed {
        instances: vec![inst("a", true, 900), inst("b", true, 900)],
        registrations: vec![reg(1, "a", true, false), reg(2, "b", true, true)],
    };
    let p = plan(&want(2), &o);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!((p.idle, p.busy), (1, 1));
}

#[test]
fn ended_instances_are_removed_and_replaced() {
    let o = Observed {
        instances: vec![inst("a", false, 900), inst("b", true, 900)],
        registrations: vec![reg(1, "a", false, false), reg(2, "b", true, false)],
    };
    let p = plan(&want(2), &o);
    assert_eq!(removed(&p), [(n("a").0, Reason::Ended)]);
    assert!(p.steps.contains(&Step::Remove {
        name: n("a"),
        registration: Some(1),
        instance: true,
        reason: Reason::Ended
    }));
    assert_eq!(p.creates(), 1);
}

#[test]
fn registrations_without_instances_are_deleted_unless_busy() {
    let o = Observed {
        instances: vec![],
        registrations: vec![reg(1, "gone", false, false), reg(2, "lost", false, true)],
    };
    let p = plan(&want(1), &o);
    assert!(p.steps.contains(&Step::Remove {
        name: n("gone"),
        registration: Some(1),
        instance: false,
        reason: Reason::NoInstance
    }));
    assert!(p.steps.contains(&Step::WaitForGithub { name: n("lost") }));
    assert_eq!(p.creates(), 1, "a lost busy registration is not a runner");
}

#[test]
fn unregistered_and_offline_instances_get_a_grace_period() {
    let young = Observed {
        instances: vec![inst("new", true, 10), inst("off", true, 10)],
        registrations: vec![reg(1, "off", false, false)],
    };
    let p = plan(&want(2), &young);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(p.starting, 2);
    let old = Observed {
        instances: vec![inst("new", true, 301), inst("off", true, 301)],
        registrations: vec![reg(1, "off", false, false)],
    };
    let p = plan(&want(2), &old);
    assert_eq!(
        removed(&p),
        [
            (n("new").0, Reason::NoRegistration),
            (n("off").0, Reason::Offline)
        ]
    );
    assert_eq!(p.creates(), 2);
}

#[test]
fn surplus_removes_only_idle_runners_starting_ones_first() {
    let o = Observed {
        instances: vec![
            inst("busy", true, 900),
            inst("idle", true, 900),
            inst("new", true, 5),
        ],
        registrations: vec![
            reg(1, "busy", true, true),
            reg(2, "idle", true, false),
            reg(3, "new", false, false),
        ],
    };
    let p = plan(&want(1), &o);
    assert_eq!(
        removed(&p),
        [
            (n("new").0, Reason::Surplus),
            (n("idle").0, Reason::Surplus)
        ]
    );
    assert_eq!(p.busy, 1);
    let p = plan(&want(0), &o);
    assert!(
        !removed(&p).iter().any(|(name, _)| name == &n("busy").0),
        "busy runners are never surplus"
    );
}

#[test]
fn flush_idle_keeps_busy_and_flush_all_removes_it() {
    let o = Observed {
        instances: vec![inst("busy", true, 900), inst("idle", true, 900)],
        registrations: vec![reg(1, "busy", true, true), reg(2, "idle", true, false)],
    };
    let idle = plan(
        &Desired {
            flush: Flush::Idle,
            ..want(2)
        },
        &o,
    );
    assert_eq!(removed(&idle), [(n("idle").0, Reason::Flushed)]);
    assert_eq!(idle.creates(), 1);
    let all = plan(
        &Desired {
            flush: Flush::All,
            ..want(2)
        },
        &o,
    );
    assert_eq!(
        removed(&all),
        [
            (n("busy").0, Reason::Flushed),
            (n("idle").0, Reason::Flushed)
        ]
    );
    assert_eq!(all.creates(), 2);
}

#[test]
fn plan_is_linear_enough_for_ten_thousand_runners() {
    let count = 10_000;
    let o = Observed {
        instances: (0..count)
            .map(|i| inst(&format!("{i:08x}"), true, 900))
            .collect(),
        registrations: (0..count)
            .map(|i| reg(i, &format!("{i:08x}"), true, i % 3 == 0))
            .collect(),
    };
    let p = plan(&want(count as u32), &o);
    assert!(p.is_empty());
    assert_eq!(p.busy + p.idle, count as u32);
}

/// Idle runners past the age bound are replaced before their token expires; busy ones
/// of any age keep their job, and a young idle one stays.
#[test]
fn idle_runners_past_the_age_bound_are_replaced() {
    let cases: [(
        &str,
        ObservedInstance,
        ObservedRegistration,
        Option<Reason>,
        usize,
    ); 5] = [
        (
            "young idle",
            inst("a", true, 71_999),
            reg(1, "a", true, false),
            None,
            0,
        ),
        (
            "at the bound",
            inst("a", true, 72_000),
            reg(1, "a", true, false),
            None,
            0,
        ),
        (
            "old idle",
            inst("a", true, 72_001),
            reg(1, "a", true, false),
            Some(Reason::Aged),
            1,
        ),
        (
            "old busy",
            inst("a", true, 500_000),
            reg(1, "a", true, true),
            None,
            0,
        ),
        (
            "old and ended",
            inst("a", false, 500_000),
            reg(1, "a", true, false),
            Some(Reason::Ended),
            1,
        ),
    ];
    for (case, instance, registration, reason, creates) in cases {
        let o = Observed {
            instances: vec![instance],
            registrations: vec![registration],
        };
        let p = plan(&want(1), &o);
        let want_removed: Vec<(String, Reason)> =
            reason.map(|r| (n("a").0, r)).into_iter().collect();
        assert_eq!(removed(&p), want_removed, "{case}");
        assert_eq!(p.creates(), creates, "{case}: the pool stays whole");
    }
    assert_eq!(Reason::Aged.as_str(), "aged");
}
