//! One piece of the manager's work: a request, done on the settings the last hook
//! wrote, with the same `Runners` a hook used to drive, and its result as a [`Reply`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::demand::Demand;
use super::observatory::Observatory;
use super::protocol::{AppCheck, Done, Failure, FailureKind, FlushRunners, Reply, Request};
use super::settings::Settings;
use crate::charm::runners::{OnDemand, Reconciled, Runners};
use crate::charm::{CharmError, Deps};
use crate::config::Mode;
use crate::juju::Status;
use crate::runner::app::AppUpdate;
use github_client::RateLimit;
use reconcile::plan::Flush;

/// What the manager knows beyond the settings: the demand (on demand) and how many
/// runners the machine's memory held room for at the last reconcile.
#[derive(Clone, Default)]
pub struct View {
    pub demand: Demand,
    pub room: Option<u32>,
    /// Where a reconcile's report goes (the manager's metrics and lifecycle log).
    pub observatory: Option<Arc<Observatory>>,
}

/// Does `request` and says how it went.
pub fn serve(request: &Request, deps: &Deps, view: &View) -> Reply {
    match run(request, deps, view) {
        Ok(done) => Reply::Done(done),
        Err(e) => {
            log::warn!("{request:?} failed: {e}");
            Reply::Failed(failure(&e))
        }
    }
}

fn run(request: &Request, deps: &Deps, view: &View) -> Result<Done, CharmError> {
    let (config, env) = Settings::load(&deps.paths)?.parts()?;
    let mut runners = Runners::new(config, env, deps)?;
    match *request {
        Request::Check => check(&runners, view),
        Request::Reconcile { flush, app } => {
            let started = Instant::now();
            let done = wanted(&mut runners, view, flush)
                .and_then(|wanted| reconcile(&runners, wanted, flush, app, view));
            if let (Err(_), Some(observatory)) = (&done, &view.observatory) {
                // What the engine did before the failure still happened.
                match runners.engine_report.take() {
                    Some(report) => {
                        let max = mode_max(&runners);
                        observatory.reconciled(&report, false, max, max);
                    }
                    None => observatory.reconcile_failed(started.elapsed().as_secs_f64()),
                }
            }
            done
        }
    }
}

/// The runners to hold: the config's pool, or on demand the warm ones and one per
/// assigned job (new ones registered in the scale set). Without the scale set no
/// runner can be made; a flush still removes what it would.
fn wanted(runners: &mut Runners, view: &View, flush: FlushRunners) -> Result<u32, CharmError> {
    let (warm, max) = match runners.config.mode() {
        Mode::Static { runners } => return Ok(runners),
        Mode::OnDemand { warm, max } => (warm, max),
    };
    let demand = &view.demand;
    let link = match (&demand.problem, &demand.link) {
        (None, Some(link)) => link.clone(),
        _ if flush != FlushRunners::None => return Ok(0),
        (Some(problem), _) => return Err(problem.to_error()),
        (None, None) => {
            return Err(CharmError::transient(
                "waiting for the runner scale set's session",
            ))
        }
    };
    runners.scale_set = Some(link);
    runners.on_demand = Some(OnDemand {
        assigned: demand.statistics.assigned,
        max,
        host_limited: false,
    });
    Ok(super::demand::wanted(warm, max, &demand.statistics))
}

/// The class of the failure as `CharmError::disposition` would set it, and its message.
pub fn failure(e: &CharmError) -> Failure {
    let disposition = e.disposition(false);
    let kind = match disposition.status {
        Some((Status::Blocked, _)) => FailureKind::Blocked,
        _ if disposition.retry => FailureKind::Retry,
        _ => FailureKind::Waiting,
    };
    Failure {
        kind,
        message: e.to_string(),
    }
}

/// A new runner application (when asked and there is one) replaces the idle runners.
fn reconcile(
    runners: &Runners,
    wanted: u32,
    flush: FlushRunners,
    app: AppCheck,
    view: &View,
) -> Result<Done, CharmError> {
    let updated = match app {
        AppCheck::Skip => None,
        AppCheck::IfDue => match runners.update_app(false) {
            Ok(update) => new_version(update),
            Err(e) => {
                log::warn!("runner application check failed, keeping the current one: {e}");
                None
            }
        },
        AppCheck::Force => new_version(runners.update_app(true)?),
    };
    if app == AppCheck::Force && updated.is_none() {
        return Ok(Done::default());
    }
    let mut flush = Flush::from(flush);
    if updated.is_some() && flush == Flush::None {
        log::info!("runner application updated: flushing idle runners");
        flush = Flush::Idle;
    }
    let done = runners.reconcile(wanted, flush)?;
    if let Some(observatory) = &view.observatory {
        let max = mode_max(runners);
        observatory.reconciled(&done.report, true, max, done.admission.room.min(max));
        if matches!(runners.config.mode(), Mode::Static { .. }) {
            observatory.no_scale_set();
        }
    }
    Ok(Done {
        app_updated: updated,
        machine_busy: runners.machine_busy(done.report.busy),
        room: Some(done.admission.room),
        ..reconciled(&done)
    })
}

fn new_version(update: AppUpdate) -> Option<String> {
    match update {
        AppUpdate::Updated { new, .. } => Some(new),
        AppUpdate::Unchanged => None,
    }
}

fn reconciled(done: &Reconciled) -> Done {
    let report = &done.report;
    let delta = report.created.len() as i64 - i64::from(report.removed_total());
    let mut results = vec![("delta".to_string(), delta.to_string())];
    results.extend(report.as_results());
    Done {
        message: done.summary.message(),
        results,
        busy: report.busy,
        settled: report.starting == 0 && report.idle + report.busy >= done.admission.admitted,
        starting: report.starting,
        created: report.created.len() as u32,
        ..Done::default()
    }
}

/// The GitHub rate-limit figures of the last response, where operators look for them
/// (check-runners); none when no response carried them.
pub fn rate_limit_results(limit: Option<&RateLimit>) -> Vec<(String, String)> {
    let Some(limit) = limit else {
        return Vec::new();
    };
    [
        ("limit", limit.limit.to_string()),
        ("remaining", limit.remaining.to_string()),
        ("reset", limit.reset_utc()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("github-rate-limit-{key}"), value))
    .collect()
}

/// The mode, the most runners the config allows and the machine's memory held room
/// for at the last reconcile, and on demand the scale set's statistics.
fn mode_results(runners: &Runners, view: &View) -> Vec<(String, String)> {
    let mode = match runners.config.mode() {
        Mode::Static { .. } => "static",
        Mode::OnDemand { .. } => "on-demand",
    };
    let max = mode_max(runners);
    let effective = view.room.map_or(max, |room| room.min(max));
    let mut results = vec![
        ("mode".to_string(), mode.to_string()),
        ("max-runners".to_string(), max.to_string()),
        ("effective-max-runners".to_string(), effective.to_string()),
        (
            "limited-by".to_string(),
            if effective < max {
                "host-capacity"
            } else {
                "config"
            }
            .to_string(),
        ),
    ];
    if mode == "on-demand" {
        let s = &view.demand.statistics;
        for (key, value) in [
            ("available-jobs", s.available),
            ("acquired-jobs", s.acquired),
            ("assigned-jobs", s.assigned),
            ("running-jobs", s.running),
            ("registered-runners", s.registered_runners),
            ("busy-runners", s.busy_runners),
            ("idle-runners", s.idle_runners),
        ] {
            results.push((format!("scale-set-{key}"), value.to_string()));
        }
        let listening = if view.demand.listening {
            "listening"
        } else {
            "not listening"
        };
        results.push(("scale-set-session".to_string(), listening.to_string()));
    }
    results
}

/// The most runners the config asks for: the fixed pool, or on demand the maximum.
fn mode_max(runners: &Runners) -> u32 {
    match runners.config.mode() {
        Mode::Static { runners } => runners,
        Mode::OnDemand { max, .. } => max,
    }
}

fn check(runners: &Runners, view: &View) -> Result<Done, CharmError> {
    let observed = runners.check()?;
    let with_instance: HashSet<_> = observed.instances.iter().map(|i| i.name.clone()).collect();
    let registered: HashSet<_> = observed
        .registrations
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let names = |pred: &dyn Fn(&reconcile::plan::ObservedRegistration) -> bool| {
        let mut v: Vec<String> = observed
            .registrations
            .iter()
            .filter(|r| pred(r))
            .map(|r| r.name.to_string())
            .collect();
        v.sort();
        v
    };
    let mut unknown: Vec<String> = with_instance
        .difference(&registered)
        .map(|n| n.to_string())
        .collect();
    unknown.sort();
    let lists = [
        ("online", names(&|r| r.online)),
        ("offline", names(&|r| !r.online)),
        ("busy", names(&|r| r.busy)),
        ("unknown", unknown),
    ];
    let mut results = Vec::new();
    for (key, list) in lists {
        results.push((key.to_string(), list.len().to_string()));
        results.push((format!("{key}-runners"), list.join(",")));
    }
    results.extend(rate_limit_results(
        runners.github.last_rate_limit().as_ref(),
    ));
    results.extend(mode_results(runners, view));
    if let Some(observatory) = &view.observatory {
        results.extend(observatory.figures());
    }
    Ok(Done {
        results,
        ..Done::default()
    })
}
