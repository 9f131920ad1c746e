//! The executor's bound on concurrent work, observed from a host whose creations block
//! until the test lets each one finish: in flight at once is at most the bound, and the
//! bound is reached (so the test fails both for too much and for too little
//! parallelism). Synchronised on counters, not on time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use crate::execute::execute;
use crate::fakes::FakeRegistry;
use crate::plan::{ObservedInstance, Plan, Step};
use crate::ports::{Credential, PortResult, RunnerHost};
use ghr_types::{RunnerName, RunnerPrefix};

/// How many creations have begun, how many are running now, and the most at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    arrived: usize,
    in_flight: usize,
    peak: usize,
}

/// A host whose `provision` waits for a permit from `gate`.
struct GatedHost {
    gate: Semaphore,
    counts: watch::Sender<Counts>,
}

impl RunnerHost for GatedHost {
    async fn list(&self) -> PortResult<Vec<ObservedInstance>> {
        Ok(Vec::new())
    }
    async fn provision(&self, _name: &RunnerName, _c: &Credential) -> PortResult<()> {
        self.counts.send_modify(|c| {
            c.arrived += 1;
            c.in_flight += 1;
            c.peak = c.peak.max(c.in_flight);
        });
        self.gate.acquire().await.expect("gate open").forget();
        self.counts.send_modify(|c| c.in_flight -= 1);
        Ok(())
    }
    async fn delete(&self, _name: &RunnerName) -> PortResult<()> {
        Ok(())
    }
}

/// Waits until the counts satisfy `ready`; a generous deadline only turns a hang (the
/// bound never reached, or more creations than expected) into a failure.
async fn until(counts: &mut watch::Receiver<Counts>, what: &str, ready: impl Fn(&Counts) -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(60), counts.wait_for(|c| ready(c)))
        .await
        .is_ok();
    assert!(waited, "never {what}: {:?}", *counts.borrow());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_in_flight_never_exceed_the_bound_and_reach_it() {
    const BOUND: usize = 3;
    const RUNNERS: usize = 10;
    let (counts, mut seen) = watch::channel(Counts::default());
    let host = Arc::new(GatedHost {
        gate: Semaphore::new(0),
        counts,
    });
    let plan = Plan {
        steps: vec![Step::Create; RUNNERS],
        ..Plan::default()
    };
    let prefix = RunnerPrefix::from_unit("app/0");
    let registry = Arc::new(FakeRegistry::default());
    let run = tokio::spawn({
        let host = host.clone();
        async move { execute(host, registry, &prefix, &plan, BOUND).await }
    });
    // Let creations finish one at a time; before each, the freed permits must have let
    // the next ones in (so "not above the bound" is not merely "nothing started").
    for finished in 0..RUNNERS {
        let expected = RUNNERS.min(finished + BOUND);
        until(&mut seen, &format!("{expected} creations begun"), |c| {
            c.peak > BOUND || (c.arrived >= expected && c.in_flight == expected - finished)
        })
        .await;
        let now = *seen.borrow();
        assert!(now.peak <= BOUND, "above the bound of {BOUND}: {now:?}");
        host.gate.add_permits(1);
    }
    let report = run.await.unwrap();
    assert_eq!(report.created.len(), RUNNERS, "{:?}", report.failed);
    let last = *seen.borrow();
    assert_eq!(last.in_flight, 0);
    assert_eq!(
        last.peak, BOUND,
        "peak creations in flight against a bound of {BOUND}"
    );
}
