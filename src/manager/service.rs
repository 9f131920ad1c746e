//! The manager's process: a socket only root reaches (hooks' requests), a worker that
//! does one piece of work at a time in the order asked, its own reconcile every
//! `reconcile-interval` minutes since the last one, and a clean end on SIGTERM.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::demand::Demand;
use super::listener::{Listener, ListenerSpec, Shared};
use super::protocol::{read_line, write_line, AppCheck, Done, FlushRunners, Reply, Request};
use super::serve::{serve, View};
use super::settings::Settings;
use crate::charm::deps::{HttpGithub, Knobs};
use crate::charm::{Deps, HookEnv};
use crate::config::{CharmConfig, GithubPath, Mode};
use crate::host::site::UnitKey;
use crate::runner::files;

/// Until a hook has written settings, the worker looks again this often.
const UNSET_INTERVAL: Duration = Duration::from_secs(60);
/// How long a request waits for a new listener to find its scale set.
const SCALE_SET_WAIT: Duration = Duration::from_secs(20);

enum Work {
    Ask(Request, Sender<Reply>),
    /// The listener heard from GitHub (on demand).
    Demand,
    Stop,
}

/// Runs the manager of `unit` until SIGTERM or SIGINT.
pub fn run(unit: &str) -> ExitCode {
    let knobs = Knobs::from_env();
    let github = HttpGithub {
        request_timeout: knobs.github_timeout,
    };
    let deps = Deps::on_this_host(&knobs, &github, unit);
    let socket = match deps.site() {
        Ok(site) => deps.paths.manager_socket(site.slot),
        Err(e) => {
            log::error!("the unit has no place on this machine: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match bind(&socket) {
        Ok(listener) => listener,
        Err(e) => {
            log::error!("cannot listen on {}: {e}", socket.display());
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = mpsc::channel();
    if let Err(e) = spawn_signal_thread(tx.clone()) {
        log::error!("cannot watch for SIGTERM: {e}");
        return ExitCode::FAILURE;
    }
    let accepting = tx.clone();
    std::thread::spawn(move || accept(listener, accepting));
    log::info!("runner manager of {unit} listening on {}", socket.display());
    work(&deps, rx, tx);
    let _ = std::fs::remove_file(&socket);
    log::info!("runner manager of {unit} stopped");
    ExitCode::SUCCESS
}

/// SIGTERM or SIGINT ends the worker. Handled (not blocked), so the programs the
/// manager runs start with the default signal mask.
fn spawn_signal_thread(tx: Sender<Work>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => log::info!("SIGTERM: stopping"),
                _ = int.recv() => log::info!("SIGINT: stopping"),
            }
        });
        let _ = tx.send(Work::Stop);
    });
    Ok(())
}

/// A fresh socket in a folder only root enters (a crash leaves the old file behind).
fn bind(socket: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        fs_state::ensure_private_dir(dir).map_err(std::io::Error::other)?;
    }
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    UnixListener::bind(socket)
}

fn accept(listener: UnixListener, tx: Sender<Work>) {
    for stream in listener.incoming().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || answer(stream, tx));
    }
}

/// One connection: one request, its reply once the worker has done it.
fn answer(mut stream: UnixStream, tx: Sender<Work>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request: Request = match read_line(&mut stream) {
        Ok(request) => request,
        Err(e) => {
            log::warn!("a request that is not one: {e}");
            return;
        }
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    if tx.send(Work::Ask(request, reply_tx)).is_err() {
        return;
    }
    if let Ok(reply) = reply_rx.recv() {
        if let Err(e) = write_line(&mut stream, &reply) {
            log::warn!("the asker left before the answer: {e}");
        }
    }
}

/// The worker: requests in order, a reconcile whenever the demand changed (on
/// demand), and one when none ran for an interval.
fn work(deps: &Deps, rx: Receiver<Work>, tx: Sender<Work>) {
    let mut worker = Worker {
        deps,
        shared: Shared::default(),
        listener: None,
        room: None,
        tx,
    };
    let mut next = Instant::now() + interval(deps);
    loop {
        worker.sync_listener();
        let wait = next.saturating_duration_since(Instant::now());
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
        if (demand || due) && Settings::load(&deps.paths).is_ok() {
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
    shared: Shared,
    listener: Option<Listener>,
    /// How many runners the machine's memory held room for at the last reconcile.
    room: Option<u32>,
    tx: Sender<Work>,
}

impl Worker<'_> {
    fn serve(&mut self, request: &Request) -> Reply {
        if self.listener.is_some() {
            self.await_scale_set();
        }
        let view = View {
            demand: self.shared.demand(),
            room: self.room,
        };
        let reply = serve(request, self.deps, &view);
        if let Reply::Done(Done {
            room: Some(room), ..
        }) = &reply
        {
            self.room = Some(*room);
        }
        reply
    }

    /// A listener for the settings' scale set on demand (another one when they changed
    /// what it serves), none in static mode; and its capacity.
    fn sync_listener(&mut self) {
        let settings = Settings::load(&self.deps.paths)
            .and_then(|s| s.parts())
            .ok();
        let spec = settings
            .as_ref()
            .and_then(|(config, env)| listener_spec(self.deps, config, env));
        let same = matches!((&spec, &self.listener), (Some(s), Some(l)) if s.key == l.key);
        if !same {
            if let Some(old) = self.listener.take() {
                old.stop();
                *self.shared.demand.lock().unwrap_or_else(|e| e.into_inner()) = Demand::default();
            }
            if let Some(spec) = spec {
                let tx = self.tx.clone();
                let notify = move || drop(tx.send(Work::Demand));
                self.listener = Some(Listener::start(spec, self.shared.clone(), notify));
            }
        }
        if let Some((config, _)) = &settings {
            let max = config.max_total_virtual_machines;
            let capacity = self.room.map_or(max, |room| room.min(max));
            self.shared.capacity.store(capacity, Ordering::SeqCst);
        }
    }

    /// A new listener needs a moment to find its scale set: a hook's request waits for
    /// it (or for the reason it cannot) rather than fail at once.
    fn await_scale_set(&self) {
        let deadline = Instant::now() + SCALE_SET_WAIT;
        loop {
            let demand = self.shared.demand();
            if demand.link.is_some() || demand.problem.is_some() || Instant::now() > deadline {
                return;
            }
            // A poll under a deadline: the listener's thread fills it in.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Closes the session, so its jobs go to other units' scale sets.
    fn stop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.stop();
        }
    }
}

/// What the listener serves on demand: the unit's scale set (named after the unit,
/// labelled as its runners are), on the configured path; none in static mode.
fn listener_spec(deps: &Deps, config: &CharmConfig, env: &HookEnv) -> Option<ListenerSpec> {
    let Mode::OnDemand { .. } = config.mode() else {
        return None;
    };
    let github = match deps.github.client(config, &env.proxy) {
        Ok(github) => github,
        Err(e) => {
            log::warn!("no GitHub client for the scale set: {e}");
            return None;
        }
    };
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
    let github_url = format!(
        "{}/{}",
        config.github_url.web().trim_end_matches('/'),
        config.path
    );
    let name = UnitKey::from_unit(&env.unit_name).as_str().to_string();
    let key = format!(
        "{github_url}|{group}|{name}|{labels:?}|{}",
        config.token.fingerprint()
    );
    Some(ListenerSpec {
        github,
        path: config.path.clone(),
        github_url,
        group,
        name,
        labels,
        owner: env.unit_name.clone(),
        state_file: deps.paths.state_dir().join("listener.json"),
        key,
    })
}

/// `reconcile-interval` of the settings, or a minute until there are some.
fn interval(deps: &Deps) -> Duration {
    Settings::load(&deps.paths)
        .and_then(|s| s.parts())
        .map(|(config, _)| Duration::from_secs(u64::from(config.reconcile_interval_minutes) * 60))
        .unwrap_or(UNSET_INTERVAL)
}
