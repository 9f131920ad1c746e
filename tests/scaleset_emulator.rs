//! Our blocking scale-set client (`github_client::scaleset`) against the `scaleset`
//! crate's emulator of GitHub and the Actions service, code nobody here wrote: the
//! emulator checks every credential, header and status, so each call below passing
//! means our wire form is the one that crate speaks. The emulator serves from a tokio
//! runtime in the background; the client runs on the test thread.

mod client_options;

use std::time::Duration;

use base64::Engine;
use ghr_types::proxy::ProxyConfig;
use ghr_types::{GithubPath, Token};
use github_client::{
    is_unsupported, ActionsService, ClientOptions, GithubClient, GithubError, JobEvent, Message,
    ScaleSetSpec, Session, Statistics,
};
use scaleset::testing::{Emulator, EmulatorBuilder, Endpoint, Fault, DEFAULT_PAT};
use scaleset::{JobRequestId, ScaleSetId};

/// An emulator that holds an idle poll 300 ms instead of the service's 50 s.
fn quick() -> EmulatorBuilder {
    Emulator::builder().long_poll(Duration::from_millis(300))
}

/// The emulator and the runtime serving it; the emulator goes first when dropped.
struct Lab {
    emu: Emulator,
    _runtime: tokio::runtime::Runtime,
}

fn lab(builder: EmulatorBuilder) -> Lab {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = runtime.block_on(builder.start());
    Lab {
        emu,
        _runtime: runtime,
    }
}

/// Quick retries, and a long poll the client gives up on after 5 s.
fn options(request_timeout: Duration) -> ClientOptions {
    ClientOptions {
        poll_timeout: Duration::from_secs(5),
        ..client_options::quick(request_timeout)
    }
}

fn github(emu: &Emulator, pat: &str, options: ClientOptions) -> GithubClient {
    let api = format!("{}/api/v3", emu.uri());
    GithubClient::with_options(&api, Token::new(pat), &ProxyConfig::default(), options).unwrap()
}

fn org() -> GithubPath {
    GithubPath::Org {
        org: scaleset::testing::ORG.into(),
        group: String::new(),
    }
}

fn connect(emu: &Emulator) -> ActionsService {
    let github = github(emu, DEFAULT_PAT, options(Duration::from_secs(2)));
    ActionsService::connect(&github, &org(), &emu.config_url()).unwrap()
}

fn spec(group: u64, labels: &[&str]) -> ScaleSetSpec {
    ScaleSetSpec {
        name: "ghr-unit".into(),
        runner_group_id: group,
        labels: labels.iter().map(|l| l.to_string()).collect(),
    }
}

/// The emulator's own count of the scale set, in our type.
fn emulated(emu: &Emulator, id: u64) -> Statistics {
    let s = emu
        .statistics(ScaleSetId(id as i64))
        .expect("scale set exists");
    Statistics {
        available: s.total_available_jobs.into(),
        acquired: s.total_acquired_jobs.into(),
        assigned: s.total_assigned_jobs.into(),
        running: s.total_running_jobs.into(),
        registered_runners: s.total_registered_runners.into(),
        busy_runners: s.total_busy_runners.into(),
        idle_runners: s.total_idle_runners.into(),
    }
}

fn count(emu: &Emulator, endpoint: Endpoint, method: &str, status: u16) -> usize {
    emu.requests_to(endpoint)
        .iter()
        .filter(|r| r.method == method && r.status == status)
        .count()
}

fn poll(svc: &ActionsService, session: &mut Session, last: u64) -> Message {
    svc.next_message(session, last, 5)
        .unwrap()
        .expect("a message, not an empty poll")
}

#[test]
fn a_job_goes_round_the_whole_protocol() {
    let lab = lab(quick().runner_group("ci"));
    let emu = &lab.emu;
    let svc = connect(emu);
    assert_eq!(count(emu, Endpoint::AdminConnection, "POST", 200), 1);

    assert_eq!(svc.runner_group_id("Default").unwrap(), Some(1));
    assert_eq!(svc.runner_group_id("ci").unwrap(), Some(2));
    assert_eq!(svc.runner_group_id("nope").unwrap(), None);

    let set = svc.ensure_scale_set(&spec(2, &["linux"])).unwrap();
    let id = set.id;
    let mut session = svc.open_session(id, "unit-0").unwrap();
    assert_eq!(session.owner, "unit-0");
    assert!(matches!(
        svc.open_session(id, "unit-1"),
        Err(GithubError::SessionConflict { scale_set }) if scale_set == id
    ));

    // Available, redelivered until acknowledged, then Assigned once acquired.
    let job = emu.queue_job(ScaleSetId(id as i64), ["linux"]).get() as u64;
    let first = poll(&svc, &mut session, 0);
    assert_eq!(first.jobs, [JobEvent::Available { request_id: job }]);
    assert_eq!(first.statistics.unwrap(), emulated(emu, id));
    assert_eq!(first.statistics.unwrap().available, 1);
    assert_eq!(session.statistics, first.statistics);
    let recorded = emu.requests_to(Endpoint::GetMessage);
    assert_eq!(recorded.last().unwrap().max_capacity, Some(5));
    assert_eq!(poll(&svc, &mut session, 0).id, first.id, "redelivered");
    assert!(svc
        .next_message(&mut session, first.id, 5)
        .unwrap()
        .is_none());

    assert_eq!(svc.acquire_jobs(id, &session, &[job]).unwrap(), [job]);
    svc.ack(&session, first.id).unwrap();
    let assigned = poll(&svc, &mut session, 0);
    assert_ne!(
        assigned.id, first.id,
        "an acknowledged message never comes back"
    );
    assert_eq!(assigned.jobs, [JobEvent::Assigned { request_id: job }]);
    assert_eq!(assigned.statistics.unwrap(), emulated(emu, id));
    assert_eq!(
        (
            assigned.statistics.unwrap().assigned,
            assigned.statistics.unwrap().acquired
        ),
        (1, 1)
    );
    svc.ack(&session, assigned.id).unwrap();

    // A JIT runner takes the job, runs it and is gone.
    let jit = svc.jit_config(id, "runner-1", "_work").unwrap();
    let config = base64::engine::general_purpose::STANDARD
        .decode(jit.encoded.expose())
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["runnerId"], jit.runner_id);
    assert_eq!(config["runnerName"], "runner-1");
    let started_on = emu.start_job(JobRequestId(job as i64), Some("runner-1"));
    assert_eq!(started_on.get() as u64, jit.runner_id);
    let started = poll(&svc, &mut session, assigned.id);
    let expected = JobEvent::Started {
        request_id: job,
        runner_name: "runner-1".into(),
        runner_id: jit.runner_id,
    };
    assert_eq!(started.jobs, [expected]);
    assert_eq!(started.statistics.unwrap(), emulated(emu, id));
    assert_eq!(
        (
            started.statistics.unwrap().running,
            started.statistics.unwrap().busy_runners
        ),
        (1, 1)
    );
    svc.ack(&session, started.id).unwrap();

    emu.complete_job(JobRequestId(job as i64), Some("succeeded"));
    let completed = poll(&svc, &mut session, started.id);
    let expected = JobEvent::Completed {
        request_id: job,
        runner_name: "runner-1".into(),
        result: "succeeded".into(),
    };
    assert_eq!(completed.jobs, [expected]);
    assert_eq!(completed.statistics.unwrap(), emulated(emu, id));
    assert_eq!(completed.statistics.unwrap(), Statistics::default());
    svc.ack(&session, completed.id).unwrap();
    assert!(emu.state().queues_drained());

    svc.close_session(&session).unwrap();
    assert!(emu.state().sessions.is_empty());
    let again = svc.open_session(id, "unit-1").unwrap();
    svc.close_session(&again).unwrap();
    svc.delete_scale_set(id).unwrap();
    assert!(emu.state().scale_sets.is_empty());
    assert_eq!(svc.scale_set(2, "ghr-unit").unwrap(), None);
    svc.delete_scale_set(id).unwrap();
}

#[test]
fn ensure_creates_once_and_updates_changed_labels() {
    let lab = lab(quick());
    let emu = &lab.emu;
    let svc = connect(emu);
    assert_eq!(svc.scale_set(1, "ghr-unit").unwrap(), None);

    let created = svc.ensure_scale_set(&spec(1, &["linux", "x64"])).unwrap();
    assert_eq!(created.labels, ["linux", "x64"]);
    assert_eq!(created.runner_group_id, 1);
    let same = svc.ensure_scale_set(&spec(1, &["x64", "linux"])).unwrap();
    assert_eq!(same.id, created.id);
    assert_eq!(count(emu, Endpoint::ScaleSets, "POST", 200), 1);
    assert_eq!(count(emu, Endpoint::ScaleSets, "PATCH", 200), 0);

    let updated = svc.ensure_scale_set(&spec(1, &["linux", "arm64"])).unwrap();
    assert_eq!(updated.id, created.id);
    assert_eq!(count(emu, Endpoint::ScaleSets, "PATCH", 200), 1);
    let stored = emu.state().scale_sets[0].clone();
    let names: Vec<_> = stored.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["linux", "arm64"]);
    assert_eq!(svc.scale_set(1, "ghr-unit").unwrap().unwrap().labels, names);
}

#[test]
fn expired_tokens_are_renewed_transparently() {
    let lab = lab(quick());
    let emu = &lab.emu;
    let svc = connect(emu);
    let id = svc.ensure_scale_set(&spec(1, &[])).unwrap().id;
    let emu_id = ScaleSetId(id as i64);
    let mut session = svc.open_session(id, "unit-0").unwrap();

    // The queue token, on a poll, an acquire and an acknowledgement.
    emu.expire_queue_token(emu_id);
    let job = emu.queue_job(emu_id, Vec::<String>::new()).get() as u64;
    let message = poll(&svc, &mut session, 0);
    assert_eq!(message.jobs, [JobEvent::Available { request_id: job }]);
    assert_eq!(count(emu, Endpoint::GetMessage, "GET", 401), 1);
    assert_eq!(count(emu, Endpoint::Sessions, "PATCH", 200), 1);
    emu.expire_queue_token(emu_id);
    assert_eq!(svc.acquire_jobs(id, &session, &[job]).unwrap(), [job]);
    assert_eq!(count(emu, Endpoint::AcquireJobs, "POST", 401), 1);
    emu.expire_queue_token(emu_id);
    svc.ack(&session, message.id).unwrap();
    assert_eq!(count(emu, Endpoint::DeleteMessage, "DELETE", 401), 1);
    assert_eq!(count(emu, Endpoint::Sessions, "PATCH", 200), 3);
    assert!(!emu.state().unacknowledged.contains_key(&emu_id));
    svc.refresh_session(&mut session).unwrap();
    assert_eq!(session.statistics, Some(emulated(emu, id)));

    // The admin token: one new registration token and connection, then the call.
    emu.expire_admin_tokens();
    assert_eq!(svc.runner_group_id("Default").unwrap(), Some(1));
    assert_eq!(count(emu, Endpoint::RunnerGroups, "GET", 401), 1);
    assert_eq!(count(emu, Endpoint::AdminConnection, "POST", 200), 2);
    assert_eq!(count(emu, Endpoint::RegistrationToken, "POST", 201), 2);

    // A session the service dropped is its own error; a new one can be opened.
    emu.expire_session(emu_id);
    let gone = svc.next_message(&mut session, message.id, 5).unwrap_err();
    assert!(matches!(gone, GithubError::SessionGone { ref session } if !session.is_empty()));
    let renewed = svc.open_session(id, "unit-0").unwrap();
    assert_ne!(renewed.id, session.id);
    svc.close_session(&renewed).unwrap();
}

/// A restarted listener takes its session back by id (the emulator's refresh of it),
/// and then hears a job queued meanwhile; a closed session cannot be taken back.
#[test]
fn a_session_is_taken_back_by_id_until_it_is_closed() {
    let lab = lab(quick());
    let emu = &lab.emu;
    let svc = connect(emu);
    let id = svc.ensure_scale_set(&spec(1, &[])).unwrap().id;
    let first = svc.open_session(id, "unit/0").unwrap();
    let job = emu.queue_job(ScaleSetId(id as i64), ["ghr-unit"]);
    // The listener died holding `first`; another process knows only its id.
    let mut back = svc
        .resume_session(id, &first.id)
        .unwrap()
        .expect("still open");
    assert_eq!(back.id, first.id);
    let message = poll(&svc, &mut back, 0);
    assert!(
        message.jobs.contains(&JobEvent::Available {
            request_id: job.0 as u64
        }),
        "{message:?}"
    );
    svc.close_session(&back).unwrap();
    assert!(svc.resume_session(id, &first.id).unwrap().is_none());
}

#[test]
fn runners_are_found_by_name_and_removed() {
    let lab = lab(quick());
    let emu = &lab.emu;
    let svc = connect(emu);
    let id = svc.ensure_scale_set(&spec(1, &[])).unwrap().id;
    let jit = svc.jit_config(id, "runner-2", "").unwrap();
    assert!(!format!("{jit:?}").contains(jit.encoded.expose()));
    let found = svc.runner_by_name("runner-2").unwrap().unwrap();
    assert_eq!((found.id, found.scale_set_id), (jit.runner_id, Some(id)));
    assert_eq!(svc.runner_by_name("runner-3").unwrap(), None);
    let taken = svc.jit_config(id, "runner-2", "").unwrap_err();
    assert!(
        matches!(taken, GithubError::Rejected { status: 409, .. }),
        "{taken}"
    );

    svc.remove_runner(jit.runner_id).unwrap();
    assert!(emu.state().runners.is_empty());
    assert_eq!(svc.runner_by_name("runner-2").unwrap(), None);
    svc.remove_runner(jit.runner_id).unwrap();
}

#[test]
fn a_github_without_scale_sets_is_told_apart() {
    let lab = lab(quick());
    let emu = &lab.emu;
    emu.inject(Fault::status(Endpoint::AdminConnection, 404).times(1));
    let github = github(emu, DEFAULT_PAT, options(Duration::from_secs(2)));
    let error = ActionsService::connect(&github, &org(), &emu.config_url()).unwrap_err();
    assert!(is_unsupported(&error), "{error}");
    // The same client connects once the endpoint exists.
    let svc = ActionsService::connect(&github, &org(), &emu.config_url()).unwrap();
    assert_eq!(svc.runner_group_id("Default").unwrap(), Some(1));

    let wrong = github_for(emu, "ghp_wrongCanary5e1d0b");
    let error = ActionsService::connect(&wrong, &org(), &emu.config_url()).unwrap_err();
    assert!(matches!(error, GithubError::TokenRejected), "{error}");
    assert!(!is_unsupported(&error));
    assert!(!format!("{error} {error:?}").contains("Canary"));
}

fn github_for(emu: &Emulator, pat: &str) -> GithubClient {
    github(emu, pat, options(Duration::from_secs(2)))
}

#[test]
fn server_errors_are_retried_and_the_long_poll_has_its_own_timeout() {
    let lab = lab(Emulator::builder().long_poll(Duration::from_millis(900)));
    let emu = &lab.emu;
    let github = github(emu, DEFAULT_PAT, options(Duration::from_millis(500)));
    let svc = ActionsService::connect(&github, &org(), &emu.config_url()).unwrap();
    let id = svc.ensure_scale_set(&spec(1, &[])).unwrap().id;

    emu.inject(Fault::status(Endpoint::ScaleSets, 503).times(1));
    assert_eq!(svc.scale_set(1, "ghr-unit").unwrap().unwrap().id, id);
    assert_eq!(count(emu, Endpoint::ScaleSets, "GET", 503), 1);

    // Held 900 ms, beyond the 500 ms of ordinary calls: the poll waits it out.
    let mut session = svc.open_session(id, "unit-0").unwrap();
    assert!(svc.next_message(&mut session, 0, 1).unwrap().is_none());
    assert_eq!(count(emu, Endpoint::GetMessage, "GET", 202), 1);
    // An ordinary call held as long times out.
    emu.inject(Fault::delay(
        Endpoint::RunnerGroups,
        Duration::from_millis(900),
    ));
    let slow = svc.runner_group_id("Default").unwrap_err();
    assert!(matches!(slow, GithubError::Transport { .. }), "{slow}");
    emu.clear_faults();
    svc.close_session(&session).unwrap();
}
