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
use super::observatory::Observatory;
use crate::config::CharmConfig;
use crate::runner::registry::ScaleSetLink;
use ghr_types::GithubPath;
use github_client::scaleset::{ActionsService, JobEvent, Message, ScaleSetSpec, Session};
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
    /// Which scale set it is (URL, group, name): another one is another set.
    pub identity: String,
    /// What changes the listener: another value starts another one.
    pub key: String,
    /// Where each message's statistics and job timestamps go (metrics).
    pub observatory: Option<Arc<Observatory>>,
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

/// The open session, where whoever ends the listener (the worker, the signal thread)
/// finds it to close it.
pub type OpenSession = Arc<Mutex<Option<(ActionsService, Session)>>>;

/// A running listener; [`Listener::stop`] closes its session. Each has its own
/// [`Shared`], so a stopped one's last words reach no one.
pub struct Listener {
    pub key: String,
    pub identity: String,
    pub shared: Shared,
    pub ending: Ending,
    /// The scale set once found, for deleting it when the unit leaves it.
    found: Arc<Mutex<Option<ScaleSetLink>>>,
}

impl Listener {
    /// Starts listening; `notify` tells the worker the demand changed.
    pub fn start(spec: ListenerSpec, capacity: u32, notify: impl Fn() + Send + 'static) -> Self {
        let listener = Listener {
            key: spec.key.clone(),
            identity: spec.identity.clone(),
            shared: Shared::default(),
            ending: Ending {
                stop: Arc::new(AtomicBool::new(false)),
                open: Arc::new(Mutex::new(None)),
            },
            found: Arc::new(Mutex::new(None)),
        };
        listener.shared.capacity.store(capacity, Ordering::SeqCst);
        let (shared, found) = (listener.shared.clone(), listener.found.clone());
        let (stop, open) = (listener.ending.stop.clone(), listener.ending.open.clone());
        std::thread::spawn(move || {
            let ends = Ends {
                stop: &stop,
                open: &open,
                found: &found,
            };
            run(&spec, &shared, &notify, &ends)
        });
        listener
    }

    /// Ends the session (GitHub gives its assigned, unstarted jobs to other scale sets)
    /// and lets the thread end after its current poll; the scale set, if it was found.
    pub fn stop(&self) -> Option<ScaleSetLink> {
        self.ending.end();
        self.found.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Ends a listener from any thread (the worker, the signal thread): no session opens
/// after this, and the open one is closed.
#[derive(Clone)]
pub struct Ending {
    stop: Arc<AtomicBool>,
    open: OpenSession,
}

impl Ending {
    pub fn end(&self) {
        self.stop.store(true, Ordering::SeqCst);
        close(&self.open);
    }
}

/// Closes the session in `open`, if any: its unstarted jobs go back to GitHub.
fn close(open: &OpenSession) {
    let taken = open.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((service, session)) = taken {
        match service.close_session(&session) {
            Ok(()) => log::info!("closed scale-set session {}", session.id),
            Err(e) => log::warn!("closing scale-set session {}: {e}", session.id),
        }
    }
}

/// What the thread shares with its [`Listener`].
struct Ends<'a> {
    stop: &'a AtomicBool,
    open: &'a OpenSession,
    found: &'a Mutex<Option<ScaleSetLink>>,
}

impl Ends<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

fn run(spec: &ListenerSpec, shared: &Shared, notify: &dyn Fn(), ends: &Ends) {
    while !ends.stopped() {
        let Err(problem) = serve(spec, shared, notify, ends) else {
            return;
        };
        if ends.stopped() {
            return;
        }
        log::warn!("scale set {}: {problem:?}", spec.name);
        shared.update(|d| {
            d.problem = Some(problem);
            d.listening = false;
        });
        notify();
        pause(ends.stop, RETRY);
    }
}

/// Sleeps `wait` unless asked to stop sooner: a pause between attempts.
fn pause(stop: &AtomicBool, wait: Duration) {
    let deadline = Instant::now() + wait;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The web URL of the configured path, which GitHub's runner registration names.
pub fn path_url(config: &CharmConfig) -> String {
    let web = config.github_url.web().trim_end_matches('/');
    format!("{web}/{}", config.path)
}

/// One connection's life: the scale set, a session, then polls until stopped or lost.
fn serve(
    spec: &ListenerSpec,
    shared: &Shared,
    notify: &dyn Fn(),
    ends: &Ends,
) -> Result<(), DemandProblem> {
    let service = ActionsService::connect(&spec.github, &spec.path, &spec.github_url)
        .map_err(DemandProblem::from_github)?;
    let group = service
        .runner_group_id(&spec.group)
        .map_err(DemandProblem::unsupported_if_missing)?
        .ok_or_else(|| {
            DemandProblem::Blocked(format!("group: no runner group {:?} on GitHub", spec.group))
        })?;
    let wanted = ScaleSetSpec {
        name: spec.name.clone(),
        runner_group_id: group,
        labels: spec.labels.clone(),
    };
    let set = service
        .ensure_scale_set(&wanted)
        .map_err(DemandProblem::unsupported_if_missing)?;
    let link = ScaleSetLink {
        service: Arc::new(service.clone()),
        id: set.id,
    };
    *ends.found.lock().unwrap_or_else(|e| e.into_inner()) = Some(link.clone());
    shared.update(|d| d.link = Some(link));
    let mut state = ListenerState::load(&spec.state_file, set.id);
    let Some(mut session) = take_back(&service, &mut state, spec)
        .map(Ok)
        .or_else(|| open_session(&service, spec, set.id, shared, ends.stop).transpose())
        .transpose()?
    else {
        return Ok(());
    };
    {
        // Stopped meanwhile: the session is closed here, or it would wait for GitHub
        // to time it out.
        let mut open = ends.open.lock().unwrap_or_else(|e| e.into_inner());
        *open = Some((service.clone(), session.clone()));
        if ends.stopped() {
            drop(open);
            close(ends.open);
            return Ok(());
        }
    }
    if state.session_id.as_deref() != Some(&session.id) {
        // Message ids are the session's: a new one starts from the beginning.
        state.session_id = Some(session.id.clone());
        state.last_message_id = 0;
    }
    state.save(&spec.state_file);
    log::info!(
        "scale set {} (id {}): session {} open",
        spec.name,
        set.id,
        session.id
    );
    shared.update(|d| {
        d.statistics = session.statistics.unwrap_or(d.statistics);
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
        ends,
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
            Err(e) => return Err(DemandProblem::from_github(e)),
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
    ends: &Ends,
) -> Result<(), DemandProblem> {
    while !ends.stopped() {
        let capacity = shared.capacity.load(Ordering::SeqCst);
        let message = match service.next_message(session, state.last_message_id, capacity) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(e @ GithubError::SessionGone { .. }) => return Err(DemandProblem::from_github(e)),
            Err(e) => {
                log::warn!("scale set {}: polling: {e}", spec.name);
                pause(ends.stop, RETRY);
                continue;
            }
        };
        if let Err(e) = take_jobs(service, session, &message) {
            // Not acknowledged: the message comes again.
            log::warn!("scale set {}: acquiring jobs: {e}", spec.name);
            pause(ends.stop, RETRY);
            continue;
        }
        if let Err(e) = service.ack(session, message.id) {
            let id = message.id;
            log::warn!("scale set {}: acknowledging message {id}: {e}", spec.name);
        }
        // A stopped listener's successor owns the state file.
        if ends.stopped() {
            break;
        }
        // A message that comes again (not acknowledged in time) is counted once.
        let fresh = message.id > state.last_message_id;
        state.last_message_id = message.id;
        state.save(&spec.state_file);
        if let Some(observatory) = spec.observatory.as_ref().filter(|_| fresh) {
            observatory.message(&message);
        }
        if let Some(statistics) = message.statistics {
            shared.update(|d| d.statistics = statistics);
        }
        notify();
    }
    Ok(())
}

/// Acquires the jobs a message offers. GitHub offers no more than the capacity each
/// poll sends allows, so all are taken (another scale set may take one first: it is
/// then left out of the answer).
fn take_jobs(
    service: &ActionsService,
    session: &Session,
    message: &Message,
) -> Result<(), GithubError> {
    let offered: Vec<u64> = message
        .jobs
        .iter()
        .filter_map(|job| match job {
            JobEvent::Available { request_id } => Some(*request_id),
            _ => None,
        })
        .collect();
    if offered.is_empty() {
        return Ok(());
    }
    service
        .acquire_jobs(session.scale_set_id, session, &offered)
        .map(drop)
}
