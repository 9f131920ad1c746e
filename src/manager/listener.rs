//! The scale-set listener (on demand): a thread that opens the unit's runner scale set
//! and its message session, long-polls the queue, takes the jobs that fit, acknowledges
//! each message and hands the statistics to the worker, which scales on them. It
//! blocks (one long poll at a time), so it has its own thread; the worker never waits
//! for it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::demand::{Demand, DemandProblem, ListenerState};
use crate::runner::registry::{port_error, ScaleSetLink};
use ghr_types::GithubPath;
use github_client::scaleset::{is_unsupported, ActionsService, JobEvent, ScaleSetSpec, Session};
use github_client::{GithubClient, GithubError};

/// Between attempts after a failure, and while a crashed session is still held.
const RETRY: Duration = Duration::from_secs(5);

/// What the listener serves: the unit's scale set on its path.
#[derive(Clone)]
pub struct ListenerSpec {
    pub github: GithubClient,
    pub path: GithubPath,
    /// The path's web URL (`https://github.com/acme`).
    pub github_url: String,
    pub group: String,
    /// The scale set's name: the unit's key.
    pub name: String,
    pub labels: Vec<String>,
    /// The session's owner: the unit.
    pub owner: String,
    pub state_file: PathBuf,
    /// What changes the listener: another value starts another one.
    pub key: String,
}

/// What the listener and the worker share.
#[derive(Clone, Default)]
pub struct Shared {
    pub demand: Arc<Mutex<Demand>>,
    /// Runners the unit may hold now (the config's maximum, or fewer when the machine's
    /// memory holds fewer): the `X-ScaleSetMaxCapacity` of each poll.
    pub capacity: Arc<AtomicU32>,
}

impl Shared {
    pub fn demand(&self) -> Demand {
        self.demand
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    fn update(&self, f: impl FnOnce(&mut Demand)) {
        f(&mut self.demand.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// A running listener; [`Listener::stop`] closes its session.
pub struct Listener {
    pub key: String,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Option<(ActionsService, Session)>>>,
}

impl Listener {
    /// Starts listening; `notify` tells the worker the demand changed.
    pub fn start(spec: ListenerSpec, shared: Shared, notify: impl Fn() + Send + 'static) -> Self {
        let listener = Listener {
            key: spec.key.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(None)),
        };
        let (stop, open) = (listener.stop.clone(), listener.open.clone());
        std::thread::spawn(move || run(&spec, &shared, &notify, &stop, &open));
        listener
    }

    /// Ends the session (GitHub gives its assigned, unstarted jobs to other scale sets)
    /// and lets the thread end after its current poll.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((service, session)) = open {
            match service.close_session(&session) {
                Ok(()) => log::info!("closed scale-set session {}", session.id),
                Err(e) => log::warn!("closing scale-set session {}: {e}", session.id),
            }
        }
    }
}

fn run(
    spec: &ListenerSpec,
    shared: &Shared,
    notify: &dyn Fn(),
    stop: &AtomicBool,
    open: &Mutex<Option<(ActionsService, Session)>>,
) {
    while !stop.load(Ordering::SeqCst) {
        let Err(problem) = serve(spec, shared, notify, stop, open) else {
            return;
        };
        log::warn!("scale set {}: {problem:?}", spec.name);
        shared.update(|d| {
            d.problem = Some(problem);
            d.listening = false;
        });
        notify();
        pause(stop, RETRY);
    }
}

/// Sleeps `wait` unless asked to stop sooner: a pause between attempts.
fn pause(stop: &AtomicBool, wait: Duration) {
    let deadline = Instant::now() + wait;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Why GitHub's answer stops the listener: an older GitHub Enterprise Server has no
/// scale-set API, which only the operator can change.
fn problem(e: GithubError) -> DemandProblem {
    if is_unsupported(&e) {
        return DemandProblem::Blocked(
            "max-total-virtual-machines: this GitHub has no runner scale-set API \
             (GitHub Enterprise Server before 3.10?); set it to 0 for a static pool"
                .into(),
        );
    }
    let port = port_error(e);
    let message = format!("runner scale set: {port}");
    if port.needs_operator_fix() {
        DemandProblem::Blocked(message)
    } else {
        DemandProblem::Waiting(message)
    }
}

/// One connection's life: the scale set, a session, then polls until stopped or lost.
fn serve(
    spec: &ListenerSpec,
    shared: &Shared,
    notify: &dyn Fn(),
    stop: &AtomicBool,
    open: &Mutex<Option<(ActionsService, Session)>>,
) -> Result<(), DemandProblem> {
    let service =
        ActionsService::connect(&spec.github, &spec.path, &spec.github_url).map_err(problem)?;
    let group = service
        .runner_group_id(&spec.group)
        .map_err(problem)?
        .ok_or_else(|| {
            DemandProblem::Blocked(format!("group: no runner group {:?} on GitHub", spec.group))
        })?;
    let wanted = ScaleSetSpec {
        name: spec.name.clone(),
        runner_group_id: group,
        labels: spec.labels.clone(),
    };
    let set = service.ensure_scale_set(&wanted).map_err(problem)?;
    let link = ScaleSetLink {
        service: Arc::new(service.clone()),
        id: set.id,
    };
    shared.update(|d| d.link = Some(link));
    let mut state = ListenerState::load(&spec.state_file, set.id);
    let Some(mut session) = take_back(&service, &mut state, spec)
        .map(Ok)
        .or_else(|| open_session(&service, spec, set.id, shared, stop).transpose())
        .transpose()?
    else {
        return Ok(());
    };
    if state.session_id.as_deref() != Some(&session.id) {
        // Message ids are the session's: a new one starts from the beginning.
        state.session_id = Some(session.id.clone());
        state.last_message_id = 0;
    }
    state.save(&spec.state_file);
    *open.lock().unwrap_or_else(|e| e.into_inner()) = Some((service.clone(), session.clone()));
    log::info!(
        "scale set {} (id {}): session {} open",
        spec.name,
        set.id,
        session.id
    );
    shared.update(|d| {
        d.statistics = session.statistics;
        d.problem = None;
        d.listening = true;
    });
    notify();
    poll(
        &service,
        &mut session,
        &mut state,
        spec,
        shared,
        notify,
        stop,
    )
}

/// The session this unit's listener had before a restart (a crash, a kill), if GitHub
/// still has it: its unacknowledged messages and the jobs assigned to it stay ours.
fn take_back(
    service: &ActionsService,
    state: &mut ListenerState,
    spec: &ListenerSpec,
) -> Option<Session> {
    let id = state.session_id.clone()?;
    match service.resume_session(state.scale_set_id, &id) {
        Ok(Some(session)) => {
            log::info!("scale set {}: took session {id} back", spec.name);
            Some(session)
        }
        Ok(None) => None,
        Err(e) => {
            log::warn!("scale set {}: taking session {id} back: {e}", spec.name);
            None
        }
    }
}

/// A new session; while another is still held (409), waits for it to time out.
fn open_session(
    service: &ActionsService,
    spec: &ListenerSpec,
    set: u64,
    shared: &Shared,
    stop: &AtomicBool,
) -> Result<Option<Session>, DemandProblem> {
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match service.open_session(set, &spec.owner) {
            Ok(session) => return Ok(Some(session)),
            Err(GithubError::SessionConflict { .. }) => {
                let why = "another session of the scale set is still open (a restart \
                           waits for it to time out)";
                log::info!("scale set {}: {why}", spec.name);
                shared.update(|d| d.problem = Some(DemandProblem::Waiting(why.into())));
                pause(stop, RETRY);
            }
            Err(e) => return Err(problem(e)),
        }
    }
}

fn poll(
    service: &ActionsService,
    session: &mut Session,
    state: &mut ListenerState,
    spec: &ListenerSpec,
    shared: &Shared,
    notify: &dyn Fn(),
    stop: &AtomicBool,
) -> Result<(), DemandProblem> {
    while !stop.load(Ordering::SeqCst) {
        let capacity = shared.capacity.load(Ordering::SeqCst);
        let message = match service.next_message(session, state.last_message_id, capacity) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(e @ GithubError::SessionGone { .. }) => return Err(problem(e)),
            Err(e) => {
                log::warn!("scale set {}: polling: {e}", spec.name);
                pause(stop, RETRY);
                continue;
            }
        };
        let offered: Vec<u64> = message
            .jobs
            .iter()
            .filter_map(|job| match job {
                JobEvent::Available { request_id } => Some(*request_id),
                _ => None,
            })
            .collect();
        // GitHub offers no more than the capacity each poll sends allows: all are taken
        // (another scale set may take one first: it is then left out of the answer).
        if !offered.is_empty() {
            // Not acknowledged when this fails: the message comes again.
            if let Err(e) = service.acquire_jobs(session.scale_set_id, session, &offered) {
                log::warn!("scale set {}: acquiring jobs: {e}", spec.name);
                pause(stop, RETRY);
                continue;
            }
        }
        if let Err(e) = service.ack(session, message.id) {
            log::warn!(
                "scale set {}: acknowledging message {}: {e}",
                spec.name,
                message.id
            );
        }
        state.last_message_id = message.id;
        state.save(&spec.state_file);
        shared.update(|d| d.statistics = message.statistics);
        notify();
    }
    Ok(())
}
