//! Properties of the planner over arbitrary pools: a world of instances and
//! registrations (idle, busy, offline, ended, aged, missing either half, other units'
//! and look-alike names, kept ones) is observed, planned and applied with the real
//! engine over the in-memory ports, then planned again.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;

use crate::execute::{execute, Report};
use crate::fakes::{FakeHost, FakeRegistry};
use crate::observe;
use crate::plan::{
    plan, Desired, Flush, LiveState, Observed, ObservedInstance, ObservedRegistration, Plan,
    Reason, Step,
};
use ghr_types::{RunnerName, RunnerPrefix};

const GRACE: u64 = 300;
const MAX_IDLE: u64 = 72_000;

fn ours() -> RunnerPrefix {
    RunnerPrefix::from_unit("app/0")
}

/// Whose a seed's name is: ours, another unit's, a prefix that merely starts like ours
/// (`app-10-` against `app-1-`... and `app-0-` here), or ours without a proper suffix.
#[derive(Clone, Copy, Debug)]
enum Owner {
    Ours,
    OtherUnit,
    LookAlike,
    BadSuffix,
}

impl Owner {
    fn name(self, i: usize) -> RunnerName {
        RunnerName::new(match self {
            Owner::Ours => format!("app-0-{i:08x}"),
            Owner::OtherUnit => format!("app-1-{i:08x}"),
            Owner::LookAlike => format!("app-00-{i:08x}"),
            Owner::BadSuffix => format!("app-0-x{i}"),
        })
    }
}

/// One runner as it might be found: either half may be missing.
#[derive(Clone, Debug)]
struct Seed {
    owner: Owner,
    /// `(running, age in seconds)`.
    instance: Option<(bool, u64)>,
    /// `(online, busy)`.
    registration: Option<(bool, bool)>,
    kept: bool,
}

/// Ages around the grace time and the idle bound, where the planner's answers change.
fn age() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..GRACE * 2,
        MAX_IDLE - 100..MAX_IDLE + 100,
        0..MAX_IDLE * 2,
    ]
}

fn seed() -> impl Strategy<Value = Seed> {
    let owner = prop_oneof![
        6 => Just(Owner::Ours),
        1 => Just(Owner::OtherUnit),
        1 => Just(Owner::LookAlike),
        1 => Just(Owner::BadSuffix),
    ];
    (
        owner,
        prop::option::weighted(0.85, (prop::bool::weighted(0.8), age())),
        prop::option::weighted(0.8, (any::<bool>(), any::<bool>())),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(owner, instance, registration, kept)| Seed {
            owner,
            instance,
            registration,
            kept,
        })
}

/// A pool: the seeds, how many runners are wanted, and which flush is asked for.
fn world() -> impl Strategy<Value = (Vec<Seed>, u32, Flush)> {
    (
        prop::collection::vec(seed(), 0..14),
        0u32..10,
        prop_oneof![Just(Flush::None), Just(Flush::Idle), Just(Flush::All)],
    )
}

/// Everything a world holds, as the in-memory ports, and the names kept alone.
struct Pool {
    host: Arc<FakeHost>,
    registry: Arc<FakeRegistry>,
    keep: HashSet<RunnerName>,
}

fn build(seeds: &[Seed]) -> Pool {
    let mut pool = Pool {
        host: Arc::new(FakeHost::default()),
        registry: Arc::new(FakeRegistry::default()),
        keep: HashSet::new(),
    };
    for (i, s) in seeds.iter().enumerate() {
        let name = s.owner.name(i);
        if let Some((running, age_secs)) = s.instance {
            let instance = ObservedInstance {
                name: name.clone(),
                running,
                age_secs,
            };
            pool.host
                .instances
                .lock()
                .unwrap()
                .insert(name.clone(), instance);
        }
        if let Some((online, busy)) = s.registration {
            let id = i as u64 + 1;
            let registration = ObservedRegistration {
                id,
                name: name.clone(),
                online,
                busy,
            };
            pool.registry
                .runners
                .lock()
                .unwrap()
                .insert(id, registration);
        }
        // What the charm keeps: instances of a previous path's runners, still busy.
        if s.kept && s.instance.is_some() && matches!(s.owner, Owner::Ours) {
            pool.keep.insert(name);
        }
    }
    *pool.registry.next_id.lock().unwrap() = seeds.len() as u64 + 1;
    pool
}

fn desired(runners: u32, flush: Flush, keep: &HashSet<RunnerName>) -> Desired {
    Desired {
        runners,
        grace_secs: GRACE,
        max_idle_secs: MAX_IDLE,
        flush,
        keep: keep.clone(),
    }
}

/// The instances and registrations not ours, or kept: what a reconcile must not touch.
type Untouchable = (
    BTreeMap<RunnerName, ObservedInstance>,
    BTreeMap<u64, ObservedRegistration>,
);

fn untouchable(pool: &Pool) -> Untouchable {
    let off_limits = |name: &RunnerName| !ours().owns(name.as_str()) || pool.keep.contains(name);
    let instances = pool.host.instances.lock().unwrap();
    let registrations = pool.registry.runners.lock().unwrap();
    (
        instances
            .iter()
            .filter(|(name, _)| off_limits(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        registrations
            .iter()
            .filter(|(_, r)| off_limits(&r.name))
            .map(|(k, v)| (*k, v.clone()))
            .collect(),
    )
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Observe, plan and execute once, as one reconcile does.
fn reconcile_once(pool: &Pool, desired: &Desired) -> (Observed, Plan, Report) {
    block_on(async {
        let observed = observe(pool.host.as_ref(), pool.registry.clone(), &ours())
            .await
            .unwrap();
        let plan = plan(desired, &observed);
        let report = execute(pool.host.clone(), pool.registry.clone(), &ours(), &plan, 4).await;
        (observed, plan, report)
    })
}

/// Names of runners the planner counts as busy: a running instance whose registration
/// has a job.
fn busy_runners(observed: &Observed) -> HashSet<&RunnerName> {
    let running: HashSet<_> = observed
        .instances
        .iter()
        .filter(|i| i.running)
        .map(|i| &i.name)
        .collect();
    observed
        .registrations
        .iter()
        .filter(|r| r.busy && running.contains(&r.name))
        .map(|r| &r.name)
        .collect()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// A busy runner is removed only by a flush of busy ones; a busy registration
    /// without an instance is waited for, never deleted.
    #[test]
    fn a_busy_runner_is_removed_only_by_flushing_busy_ones((seeds, runners, flush) in world()) {
        let pool = build(&seeds);
        let (observed, plan, _) = reconcile_once(&pool, &desired(runners, flush, &pool.keep));
        let busy = busy_runners(&observed);
        let busy_orphans: HashSet<_> = observed
            .registrations
            .iter()
            .filter(|r| r.busy && !observed.instances.iter().any(|i| i.name == r.name))
            .map(|r| &r.name)
            .collect();
        for (name, reason) in plan.removals() {
            if busy.contains(name) {
                prop_assert_eq!(flush, Flush::All, "{} removed ({:?})", name, reason);
                prop_assert_eq!(reason, Reason::Flushed);
            }
            prop_assert!(!busy_orphans.contains(name), "{} removed while busy", name);
        }
        // And the engine did not remove them either.
        if flush != Flush::All {
            let left = pool.host.instances.lock().unwrap();
            for name in &busy {
                prop_assert!(left.contains_key(*name), "{} gone", name);
            }
        }
    }

    /// Alive plus created is what is wanted, or the busy runners when they alone are
    /// more (busy runners are never removed to shrink the pool).
    #[test]
    fn alive_plus_created_equals_wanted((seeds, runners, flush) in world()) {
        let pool = build(&seeds);
        let (_, plan, report) = reconcile_once(&pool, &desired(runners, flush, &pool.keep));
        let alive = plan.idle + plan.busy + plan.starting;
        prop_assert_eq!(alive + plan.creates() as u32, runners.max(plan.busy), "{:?}", plan);
        prop_assert_eq!(report.created.len(), plan.creates());
        prop_assert!(report.failed.is_empty(), "{:?}", report.failed);
    }

    /// Once a plan is carried out, the next reconcile (no flush asked) has nothing to
    /// create or remove, and finds the pool the first one planned.
    #[test]
    fn after_a_plan_is_applied_planning_again_is_empty((seeds, runners, flush) in world()) {
        let pool = build(&seeds);
        let (_, first, _) = reconcile_once(&pool, &desired(runners, flush, &pool.keep));
        let (_, again, report) = reconcile_once(&pool, &desired(runners, Flush::None, &pool.keep));
        let actions: Vec<&Step> = again
            .steps
            .iter()
            .filter(|s| !matches!(s, Step::WaitForGithub { .. }))
            .collect();
        prop_assert!(actions.is_empty(), "after {:?}\nplanned {:?}", first, actions);
        prop_assert!(report.created.is_empty() && report.removed_total() == 0, "{:?}", report);
        let alive = |p: &Plan| p.idle + p.busy + p.starting;
        prop_assert_eq!(alive(&again), alive(&first) + first.creates() as u32);
    }

    /// A unit only touches names with its own prefix and a proper suffix, and leaves
    /// kept ones alone; what it creates carries its prefix.
    #[test]
    fn a_unit_never_touches_another_prefixs_names((seeds, runners, flush) in world()) {
        let pool = build(&seeds);
        let before = untouchable(&pool);
        let (_, plan, report) = reconcile_once(&pool, &desired(runners, flush, &pool.keep));
        for step in &plan.steps {
            if let Step::Remove { name, .. } | Step::WaitForGithub { name } = step {
                prop_assert!(ours().owns(name.as_str()), "{:?}", step);
                prop_assert!(!pool.keep.contains(name), "{:?}", step);
            }
        }
        for name in &report.created {
            prop_assert!(ours().owns(name.as_str()), "{}", name);
        }
        prop_assert_eq!(untouchable(&pool), before);
    }

    /// The live list holds exactly the runners the counts count, each once, none of
    /// them removed; the report's adds the created ones; every removal is named.
    #[test]
    fn the_live_runners_are_the_counted_ones_and_never_removed((seeds, runners, flush) in world()) {
        let pool = build(&seeds);
        let (_, plan, report) = reconcile_once(&pool, &desired(runners, flush, &pool.keep));
        let count = |state| plan.live.iter().filter(|r| r.state == state).count() as u32;
        prop_assert_eq!(
            (count(LiveState::Idle), count(LiveState::Busy), count(LiveState::Starting)),
            (plan.idle, plan.busy, plan.starting)
        );
        let removed: HashSet<&RunnerName> = plan.removals().map(|(n, _)| n).collect();
        let live: HashSet<&RunnerName> = plan.live.iter().map(|r| &r.name).collect();
        prop_assert_eq!(live.len(), plan.live.len(), "a runner listed twice");
        prop_assert!(live.is_disjoint(&removed), "{:?}", plan);
        for name in &plan.removed_starting {
            prop_assert!(removed.contains(name), "{} not removed", name);
        }
        prop_assert_eq!(report.live.len(), plan.live.len() + report.created.len() + report.kept_busy.len());
        prop_assert_eq!(report.removed_runners.len() as u32, report.removed_total());
    }
}
