use std::cell::Cell;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::charm::deps::{GithubClients, HttpGithub};
use crate::charm::summary::Problem;
use crate::host::fakes::{FakeClock, FakeCommands};
use crate::juju::fakes::FakeJuju;
use crate::manager::serve::rate_limit_results;
use crate::proxy::ProxyConfig;
use github_client::RateLimit;
use github_client::{GithubClient, GithubError};
use reconcile::lock::ReconcileLock;

#[test]
fn rate_limit_results_name_the_figures_and_reset_in_utc() {
    assert!(rate_limit_results(None).is_empty());
    let limit = RateLimit {
        limit: 5000,
        remaining: 12,
        used: 4988,
        reset: chrono::DateTime::from_timestamp(1_714_564_800, 0).unwrap(),
        resource: "core".into(),
    };
    let results = rate_limit_results(Some(&limit));
    let pairs: Vec<(&str, &str)> = results
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("github-rate-limit-limit", "5000"),
            ("github-rate-limit-remaining", "12"),
            ("github-rate-limit-reset", "2024-05-01T12:00:00Z"),
        ]
    );
}

/// The real factory, counting the clients handlers ask it for.
#[derive(Default)]
struct CountingGithub {
    made: Cell<u32>,
}

impl GithubClients for CountingGithub {
    fn client(
        &self,
        config: &CharmConfig,
        proxy: &ProxyConfig,
        app_tokens: &std::path::Path,
    ) -> Result<GithubClient, GithubError> {
        self.made.set(self.made.get() + 1);
        HttpGithub::default().client(config, proxy, app_tokens)
    }
}

/// A unit whose every dependency is a stand-in: recorded commands, a fixed clock, host
/// paths in a temporary directory, an LXD socket nothing serves. No environment variable.
struct Unit {
    dir: tempfile::TempDir,
    commands: FakeCommands,
    clock: std::sync::Arc<FakeClock>,
    github: CountingGithub,
    juju: FakeJuju,
    env: HookEnv,
}

const UNIT: &str = "github-runner/0";
const TIMER: &str = "ghr-reconcile-github-runner-0";

impl Unit {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The machine's memory, which a reconcile's host-capacity rule reads.
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/meminfo"), "MemTotal: 16777216 kB\n").unwrap();
        let juju = FakeJuju::default();
        *juju.config.borrow_mut() =
            Some(json!({"path": "acme/widgets", "token": "ghp_seamTestToken0123456789"}));
        Unit {
            env: HookEnv {
                unit_name: UNIT.into(),
                charm_dir: dir.path().join("charm"),
                ..HookEnv::default()
            },
            dir,
            commands: FakeCommands::new(),
            clock: std::sync::Arc::new(FakeClock::at(1_714_564_800)),
            github: CountingGithub::default(),
            juju,
        }
    }

    fn deps(&self) -> Deps<'_> {
        Deps::stand_in(
            &self.commands,
            self.clock.clone(),
            &self.github,
            self.dir.path(),
        )
    }

    fn timer_files(&self, deps: &Deps) -> Vec<std::path::PathBuf> {
        ["service", "timer"]
            .map(|suffix| deps.paths.systemd_dir().join(format!("{TIMER}.{suffix}")))
            .into_iter()
            .filter(|p| p.exists())
            .collect()
    }
}

#[test]
fn stop_runs_on_the_stand_ins_it_is_handed_and_touches_nothing_else() {
    let unit = Unit::new();
    let deps = unit.deps();
    // The reconcile timer a config-changed left, written through the same stand-ins.
    let config = load_config(&unit.juju).unwrap();
    ensure_timer(&config, &unit.env, &deps).unwrap();
    assert_eq!(unit.timer_files(&deps).len(), 2);
    unit.commands.clear();

    let err = handle(&Event::Stop, &unit.juju, &unit.env, &deps).unwrap_err();

    // The timer went through the fake systemctl; the storage pool's tmpfs through the
    // fake mount, under the temporary root; LXD was asked at the socket handed in.
    let pool = deps.paths.pool_dir();
    // Sized for the runners wanted: none once stopped.
    let size = crate::runner::pool::pool_size(config.vm_disk, 0);
    assert_eq!(
        unit.commands.lines(),
        [
            format!("systemctl disable --now {TIMER}.timer"),
            format!(
                "mount -t tmpfs -o size={}k,mode=0711 tmpfs {}",
                size.0 >> 10,
                pool.display()
            ),
        ]
    );
    assert!(
        unit.timer_files(&deps).is_empty(),
        "the timer's units removed"
    );
    let CharmError::Transient(why) = &err else {
        panic!("LXD not there is transient: {err:?}")
    };
    let why = why.to_string();
    let socket = deps.lxd.socket().display().to_string();
    assert!(
        why.contains("storage pool") && why.contains(&socket),
        "{why}"
    );
    assert_eq!(
        unit.github.made.get(),
        1,
        "the client came from the factory"
    );

    // The failure is kept under the temporary root, where update-status finds it.
    let problem = Problem::load(&deps.paths).expect("last-problem.json under the root");
    assert_eq!(problem.status(), Status::Waiting);
    let status = handle(&Event::UpdateStatus, &unit.juju, &unit.env, &deps).unwrap();
    assert_eq!(status, Outcome::status(Status::Waiting, why.as_str()));
}

#[test]
fn a_held_lock_is_waited_for_as_long_as_the_limits_handed_in_say() {
    let unit = Unit::new();
    let mut deps = unit.deps();
    deps.limits.lock_wait = Duration::ZERO;
    // The settings a config-changed hands the manager (here: done in this process).
    let given = crate::manager::settings::Given {
        config: unit.juju.config_get().unwrap(),
        secrets: Default::default(),
    };
    crate::charm::manager_link::ensure(
        &crate::juju::fakes::FakeJuju::default(),
        &given,
        &unit.env,
        &deps,
        false,
    )
    .unwrap();
    unit.commands.clear();
    let _held = ReconcileLock::acquire(&deps.paths.lock_file(), Duration::ZERO).unwrap();

    let event = Event::Action(Action::ReconcileRunners);
    let err = handle(&event, &unit.juju, &unit.env, &deps).unwrap_err();

    let CharmError::Transient(_) = &err else {
        panic!("a held lock is transient: {err:?}")
    };
    let why = err.to_string();
    assert!(why.contains("another reconcile is still running"), "{why}");
    assert!(
        why.contains("after waiting 0ns"),
        "the wait handed in: {why}"
    );
    assert_eq!(
        err.disposition(true).status,
        None,
        "an action's passing trouble"
    );
    assert!(
        unit.commands.lines().is_empty(),
        "nothing ran past the lock"
    );
}

#[test]
fn a_remove_that_cannot_finish_is_retried_by_juju() {
    let unit = Unit::new();
    let deps = unit.deps();
    let token = deps.paths.charm_token();
    std::fs::create_dir_all(token.parent().unwrap()).unwrap();
    std::fs::write(&token, "a".repeat(64)).unwrap();
    // LXD does not answer at the socket handed in: the runners cannot be seen gone.
    let err = handle(&Event::Remove, &unit.juju, &unit.env, &deps).unwrap_err();
    let disposition = err.disposition(false);
    assert!(disposition.retry, "{err}");
    assert_eq!(disposition.status.unwrap().0, Status::Maintenance);
    // Its own files stay for the retry: nothing was taken away first.
    assert!(token.exists());
}
