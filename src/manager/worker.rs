//! The manager's worker: one piece of work at a time, in the order asked (hooks'
//! requests), a reconcile whenever the demand changed (on demand) and one when none
//! ran for `reconcile-interval`; and the listener that goes with the settings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::listener::{path_url, Ending, Listener, ListenerSpec};
use super::observatory::Observatory;
use super::protocol::{AppCheck, Done, FlushRunners, Reply, Request};
use super::retired::Retired;
use super::serve::{serve, View};
use super::settings::Settings;
use crate::charm::runners::Summary;
use crate::charm::{Deps, HookEnv};
use crate::config::{CharmConfig, GithubPath, Mode};
use crate::host::site::UnitKey;
use crate::runner::files;

/// Set by the signal thread: the manager is ending, and starts no listener any more.
pub static STOPPING: AtomicBool = AtomicBool::new(false);

/// Until a hook has written settings, the worker looks again this often.
const UNSET_INTERVAL: Duration = Duration::from_secs(60);
/// How long a request waits for a new listener to find its scale set.
const SCALE_SET_WAIT: Duration = Duration::from_secs(20);
/// After a reconcile that left the pool unsettled, the next look (on demand).
const FOLLOW_UP: Duration = Duration::from_secs(3);
/// On a fixed pool, the next look while new runners start: when each came online is
/// its spawn time (the metrics), and no message from GitHub would tell it. Doubled at
/// each look that still finds runners starting, up to the last: a runner that never
/// comes online, or a pool that always has one starting, costs at most one reconcile
/// a minute on top of `reconcile-interval`.
const STARTING_FOLLOW_UP: Duration = Duration::from_secs(5);
const STARTING_FOLLOW_UP_MAX: Duration = Duration::from_secs(60);

pub enum Work {
    Ask(Request, Sender<Reply>),
    /// The listener heard from GitHub (on demand).
    Demand,
    Stop,
}

/// Runs until [`Work::Stop`] (or every sender is gone); `ending` is where the signal
/// thread finds what ends the listener.
pub fn work(
    deps: &Deps,
    rx: Receiver<Work>,
    tx: Sender<Work>,
    ending: &Mutex<Option<Ending>>,
    observatory: Arc<Observatory>,
) {
    let mut worker = Worker {
        deps,
        starting_wait: STARTING_FOLLOW_UP,
        observatory,
        follow_up: None,
        listener: None,
        retired: Retired::load(deps.paths.state_dir().join("retired.json")),
        room: Summary::load(&deps.paths).and_then(|s| s.room),
        tx,
        ending,
    };
    let mut next = Instant::now() + interval(deps);
    loop {
        worker.sync_listener();
        worker.delete_retired();
        let soon = worker.follow_up.unwrap_or(next).min(next);
        let wait = soon.saturating_duration_since(Instant::now());
        let mut demand = false;
        let first = match rx.recv_timeout(wait) {
            Ok(work) => Some(work),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return worker.stop(),
        };
        // Everything already queued: demand changes are taken together.
        for work in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            match work {
                Work::Ask(request, reply) => {
                    let _ = reply.send(worker.serve(&request));
                    if matches!(request, Request::Reconcile { .. }) {
                        next = Instant::now() + interval(deps);
                        demand = false;
                    }
                }
                Work::Demand => demand = true,
                Work::Stop => return worker.stop(),
            }
        }
        let due = Instant::now() >= next;
        // Taken when it fires: a reconcile that fails sets no new one, and the next
        // try waits for demand or the interval instead of spinning.
        let follow = worker
            .follow_up
            .take_if(|at| Instant::now() >= *at)
            .is_some();
        if (demand || due || follow) && Settings::load(&deps.paths).is_ok() {
            let app = if due { AppCheck::IfDue } else { AppCheck::Skip };
            worker.serve(&Request::Reconcile {
                flush: FlushRunners::None,
                app,
            });
            next = Instant::now() + interval(deps);
        }
    }
}

struct Worker<'d> {
    deps: &'d Deps<'d>,
    observatory: Arc<Observatory>,
    /// How long the next look at a fixed pool's starting runners waits.
    starting_wait: Duration,
    /// When to look again at a pool the last reconcile left unsettled (on demand) or
    /// with runners starting (fixed pool).
    follow_up: Option<Instant>,
    listener: Option<Listener>,
    /// Scale sets the unit left (mode or path changed), deleted once none of their
    /// runners is busy: left on GitHub they would keep taking the application's jobs.
    retired: Retired,
    /// How many runners the machine's memory held room for at the last reconcile.
    room: Option<u32>,
    tx: Sender<Work>,
    ending: &'d Mutex<Option<Ending>>,
}

impl Worker<'_> {
    /// Does `request` on the settings as they are now (a hook may just have changed
    /// them, and the listener with them).
    fn serve(&mut self, request: &Request) -> Reply {
        self.sync_listener();
        if let Some(listener) = &self.listener {
            await_scale_set(listener);
        }
        let view = View {
            demand: self
                .listener
                .as_ref()
                .map(|l| l.shared.demand())
                .unwrap_or_default(),
            room: self.room,
            observatory: Some(self.observatory.clone()),
        };
        let reply = serve(request, self.deps, &view);
        if let Reply::Done(done) = &reply {
            self.room = done.room.or(self.room);
            let reconciled = matches!(request, Request::Reconcile { .. });
            // A check leaves a due look as it was.
            if reconciled {
                self.follow_up = self.next_look(done);
            }
        } else if matches!(request, Request::Reconcile { .. }) {
            self.follow_up = None;
        }
        reply
    }

    fn next_look(&mut self, done: &Done) -> Option<Instant> {
        if self.listener.is_none() && done.starting > 0 {
            // New runners: their spawn times want looks from the start again.
            if done.created > 0 {
                self.starting_wait = STARTING_FOLLOW_UP;
            }
            let wait = self.starting_wait;
            self.starting_wait = (wait * 2).min(STARTING_FOLLOW_UP_MAX);
            return Some(Instant::now() + wait);
        }
        self.starting_wait = STARTING_FOLLOW_UP;
        (self.listener.is_some() && !done.settled).then(|| Instant::now() + FOLLOW_UP)
    }

    /// A listener for the settings' scale set on demand (another one when they changed
    /// what it serves), none in static mode; and its capacity. Settings it cannot read,
    /// or a client it cannot make, change nothing: the set is left only when the
    /// settings say so, and no listener starts once the manager is stopping.
    fn sync_listener(&mut self) {
        if STOPPING.load(Ordering::SeqCst) {
            return;
        }
        let Ok((config, env)) = Settings::load(&self.deps.paths).and_then(|s| s.parts()) else {
            return;
        };
        let spec = match listener_spec(self.deps, &config, &env) {
            Ok(spec) => spec.map(|spec| ListenerSpec {
                observatory: Some(self.observatory.clone()),
                ..spec
            }),
            Err(e) => {
                log::warn!("no GitHub client for the scale set: {e}");
                return;
            }
        };
        let max = config.max_total_virtual_machines;
        let capacity = self.room.map_or(max, |room| room.min(max));
        let same = matches!((&spec, &self.listener), (Some(s), Some(l)) if s.key == l.key);
        if !same {
            if let Some(old) = self.listener.take() {
                log::info!("the scale set's settings changed: its listener stops");
                let left = old.stop();
                // Another path, group or name (or none: a fixed pool) leaves the set.
                if let Some(left) =
                    left.filter(|_| spec.as_ref().is_none_or(|s| s.identity != old.identity))
                {
                    self.retired.add(left, &old.identity);
                }
            }
            if let Some(spec) = spec {
                self.retired.take_back(&spec.identity);
                let tx = self.tx.clone();
                let notify = move || drop(tx.send(Work::Demand));
                let listener = Listener::start(spec, capacity, notify);
                *self.ending.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(listener.ending.clone());
                // SIGTERM may have come since the check above: the signal thread then
                // ended the old listener, not this one.
                if STOPPING.load(Ordering::SeqCst) {
                    listener.ending.end();
                }
                self.listener = Some(listener);
            }
        }
        if let Some(listener) = &self.listener {
            listener.shared.capacity.store(capacity, Ordering::SeqCst);
        }
    }

    /// Deletes the scale sets the unit left whose runners are all idle (their idle
    /// runners go with them; the next reconcile replaces their instances).
    fn delete_retired(&mut self) {
        let deps = self.deps;
        let demand = self.listener.as_ref().map(|l| l.shared.demand());
        // A listener still looking for its set may be about to serve a retired one.
        if demand
            .as_ref()
            .is_some_and(|d| d.link.is_none() && d.problem.is_none())
        {
            return;
        }
        let live = demand.and_then(|d| d.link).map(|l| l.id);
        self.retired.delete_idle(live, || {
            let (config, env) = Settings::load(&deps.paths).and_then(|s| s.parts()).ok()?;
            deps.github_client(&config, &env.proxy).ok()
        });
    }

    /// Closes the session, so its jobs go to other units' scale sets.
    fn stop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.stop();
        }
    }
}

/// A new listener needs a moment to find its scale set: a hook's request waits for it
/// (or for the reason it cannot) rather than fail at once.
fn await_scale_set(listener: &Listener) {
    let deadline = Instant::now() + SCALE_SET_WAIT;
    loop {
        let demand = listener.shared.demand();
        if demand.link.is_some() || demand.problem.is_some() || Instant::now() > deadline {
            return;
        }
        // A poll under a deadline: the listener's thread fills it in.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the listener serves on demand: the unit's scale set (named after the unit,
/// labelled as its runners are), on the configured path; none in static mode.
fn listener_spec(
    deps: &Deps,
    config: &CharmConfig,
    env: &HookEnv,
) -> Result<Option<ListenerSpec>, String> {
    let Mode::OnDemand { .. } = config.mode() else {
        return Ok(None);
    };
    let github = deps
        .github_client(config, &env.proxy)
        .map_err(|e| e.to_string())?;
    let app = env.unit_name.split('/').next().unwrap_or("github-runner");
    let image = config
        .runner_image
        .clone()
        .unwrap_or_else(|| "jammy".into());
    let labels = files::runner_labels(app, &image, &config.labels);
    let group = match &config.path {
        GithubPath::Org { group, .. } => group.clone(),
        GithubPath::Repo { .. } => "default".into(),
    };
    let github_url = path_url(config);
    let name = UnitKey::from_unit(&env.unit_name).as_str().to_string();
    let identity = format!("{github_url}|{group}|{name}");
    let key = format!("{identity}|{labels:?}|{}", config.auth.fingerprint());
    Ok(Some(ListenerSpec {
        identity,
        github,
        path: config.path.clone(),
        github_url,
        group,
        name,
        labels,
        owner: env.unit_name.clone(),
        state_file: deps.paths.state_dir().join("listener.json"),
        key,
        observatory: None,
    }))
}

/// `reconcile-interval` of the settings, or a minute until there are some.
fn interval(deps: &Deps) -> Duration {
    Settings::load(&deps.paths)
        .and_then(|s| s.parts())
        .map(|(config, _)| Duration::from_secs(u64::from(config.reconcile_interval_minutes) * 60))
        .unwrap_or(UNSET_INTERVAL)
}
