//! One handler per event. Each starts from the typed config (an invalid one stops it
//! before anything on the host or GitHub is touched) and returns an [`Outcome`].

use std::collections::HashSet;

use serde_json::Value;

use super::deps::Deps;
use super::install::InstallKind;
use super::outcome::Cause;
use super::runners::{Paths, Reconciled, Runners, Summary};
use super::state::CharmState;
use super::summary::Problem;
use super::{timer, Action, CharmError, Event, HookEnv, Outcome};
use crate::config::{CharmConfig, GithubPath};
use crate::host::kernel::{reboot_request, reboot_required, RebootPhase};
use crate::host::lxd_setup::BlockingLxd;
use crate::juju::{HookTools, Status};
use crate::runner::app::AppUpdate;
use github_client::RateLimit;
use reconcile::plan::Flush;

/// Reads and validates the configuration; the only place handlers get it from.
pub fn load_config(juju: &dyn HookTools) -> Result<CharmConfig, CharmError> {
    let raw = juju.config_get()?;
    Ok(CharmConfig::from_json(&raw)?)
}

/// Runs the handler for `event` on the dependencies handed in.
pub fn handle(
    event: &Event,
    juju: &dyn HookTools,
    env: &HookEnv,
    deps: &Deps,
) -> Result<Outcome, CharmError> {
    match event {
        Event::Unknown(name) => {
            log::info!("ignoring event {name:?}: this charm does not handle it");
            return Ok(Outcome::default());
        }
        Event::Action(Action::Unknown(name)) => {
            return Err(CharmError::BadParams(format!("unknown action {name:?}")))
        }
        _ => {}
    }
    let config = load_config(juju)?;
    let result = handle_event(event, juju, config, env, deps);
    match &result {
        // Unregistered, the state directory may be another unit's (a name clash).
        Err(e) if deps.registered() => remember_problem(event, e, &deps.paths),
        _ => {}
    }
    result
}

/// A failure that set the unit's status is kept for `update-status` (see [`Problem`]).
/// A config error is not: update-status finds it again in the config, and an invalid
/// config writes nothing on the host.
fn remember_problem(event: &Event, e: &CharmError, paths: &Paths) {
    if matches!(e, CharmError::Config(_)) {
        return;
    }
    if let Some((status, message)) = e.disposition(event.is_action()).status {
        Problem::new(status, &message).save(paths);
    }
}

fn handle_event(
    event: &Event,
    juju: &dyn HookTools,
    config: CharmConfig,
    env: &HookEnv,
    deps: &Deps,
) -> Result<Outcome, CharmError> {
    let runners = |config| Runners::new(config, env.clone(), deps);
    match event {
        Event::UpdateStatus => Ok(update_status(&config, &deps.paths)),
        Event::Install => install(juju, &config, env, deps, InstallKind::Install),
        Event::ConfigChanged => config_changed(juju, config, env, deps),
        Event::Start => reconciled(runners(config)?.reconcile_current(Flush::None)),
        Event::Stop => stop(config, env, deps).map(|(outcome, _)| outcome),
        // Juju forgets the unit after this hook: what it leaves stays for good.
        Event::Remove => stop(config, env, deps)
            .and_then(|(outcome, runners)| runners.leave_machine().map(|()| outcome))
            .map_err(CharmError::unfinished),
        Event::UpgradeCharm => {
            install(juju, &config, env, deps, InstallKind::Upgrade)?;
            reconciled(runners(config)?.reconcile_current(Flush::Idle))
        }
        Event::ReconcileTimer => timer_reconcile(juju, runners(config)?),
        Event::Action(action) => run_action(action, juju, || runners(config)),
        Event::Unknown(_) => unreachable!("handled above"),
    }
}

fn update_status(config: &CharmConfig, paths: &Paths) -> Outcome {
    if let Some(problem) = Problem::load(paths) {
        return Outcome::status(problem.status(), problem.message);
    }
    match Summary::load(paths) {
        Some(summary) => Outcome::status(Status::Active, summary.message()),
        None if config.virtual_machines == 0 => Outcome::status(Status::Active, "0 runners wanted"),
        None => Outcome::status(Status::Waiting, "waiting for the first reconcile"),
    }
}

/// The reconcile timer, then host setup (packages, LXD, kernel, policy service).
fn install(
    juju: &dyn HookTools,
    config: &CharmConfig,
    env: &HookEnv,
    deps: &Deps,
    kind: InstallKind,
) -> Result<Outcome, CharmError> {
    // `juju status` shows it; a new charm binary arrives only with these two events.
    juju.application_version_set(crate::VERSION)?;
    // The timer first: install ends with the reboot request when one is due.
    ensure_timer(config, env, deps)?;
    super::install::install(juju, env, config, deps, &host_lxd(deps)?, kind)
}

/// LXD as host setup reaches it: the hook's LXD client, driven synchronously.
fn host_lxd(deps: &Deps) -> Result<BlockingLxd, CharmError> {
    BlockingLxd::new(deps.lxd.clone()).map_err(|e| CharmError::Internal(e.into()))
}

fn ensure_timer(config: &CharmConfig, env: &HookEnv, deps: &Deps) -> Result<(), CharmError> {
    let units = timer::render(&env.unit_name, config.reconcile_interval_minutes);
    timer::apply(deps.commands, &deps.paths.systemd_dir(), &units)
        .map(drop)
        .map_err(|e| CharmError::transient(Cause::of(e).context("reconcile timer")))
}

fn reconciled(result: Result<Reconciled, CharmError>) -> Result<Outcome, CharmError> {
    Ok(Outcome::status(Status::Active, result?.summary.message()))
}

fn config_changed(
    juju: &dyn HookTools,
    config: CharmConfig,
    env: &HookEnv,
    deps: &Deps,
) -> Result<Outcome, CharmError> {
    ensure_timer(&config, env, deps)?;
    let mut state = CharmState::load(juju)?;
    let runners = Runners::new(config.clone(), env.clone(), deps)?;
    runners.apply_firewall()?;
    if let Some(old) = state.path_left(&config) {
        let old_path = GithubPath::parse(old, group_of(&config)).map_err(|e| {
            CharmError::Internal(anyhow::Error::new(e).context(format!("stored path {old:?}")))
        })?;
        log::info!(
            "path changed from {old} to {}: flushing the old path's idle runners",
            config.path
        );
        runners.leave_path(&old_path)?;
    }
    let token_changed = state.token_changed(&config);
    if token_changed {
        log::info!("token changed: flushing idle runners");
        let lxd = host_lxd(deps)?;
        super::install::policy_service(env, &config, deps, &runners.site, &lxd, false)?;
    }
    let flush = if token_changed {
        Flush::Idle
    } else {
        Flush::None
    };
    let done = runners.reconcile_current(flush)?;
    // Only after the reconcile: a failed one leaves the old values, so the next
    // config-changed flushes again instead of forgetting the change.
    state.remember(&config);
    state.save(juju)?;
    Ok(Outcome::status(Status::Active, done.summary.message()))
}

fn group_of(config: &CharmConfig) -> &str {
    match &config.path {
        GithubPath::Org { group, .. } => group,
        GithubPath::Repo { .. } => "default",
    }
}

/// Removes the timer and every runner (and frees the unit's memory claim); `remove`
/// then takes the rest of the unit's own away with the `Runners` returned.
fn stop<'d>(
    config: CharmConfig,
    env: &HookEnv,
    deps: &'d Deps<'d>,
) -> Result<(Outcome, Runners<'d>), CharmError> {
    timer::remove(deps.commands, &deps.paths.systemd_dir(), &env.unit_name)
        .map_err(|e| CharmError::transient(Cause::of(e).context("reconcile timer")))?;
    let runners = Runners::new(config, env.clone(), deps)?;
    let report = runners.reconcile(0, Flush::All)?.report;
    let outcome = Outcome::status(
        Status::Maintenance,
        format!("stopped: {} runners removed", report.removed_total()),
    );
    Ok((outcome, runners))
}

/// The timer's event: keep the runner application current, reconcile, and reboot
/// into a new kernel when one waits and no job would be cut short.
fn timer_reconcile(juju: &dyn HookTools, runners: Runners) -> Result<Outcome, CharmError> {
    let flush = match runners.update_app(false) {
        Ok(AppUpdate::Updated { new, .. }) => {
            log::info!("runner application updated to {new}: flushing idle runners");
            CharmState::record_app_version(juju, &new)?;
            Flush::Idle
        }
        Ok(AppUpdate::Unchanged) => Flush::None,
        Err(e) => {
            log::warn!("runner application check failed, keeping the current one: {e}");
            Flush::None
        }
    };
    let done = runners.reconcile_current(flush)?;
    let required = reboot_required(runners.paths());
    // The machine is shared: every unit's jobs would be cut short.
    let busy = match required.then(|| runners.machine_busy(done.report.busy)) {
        Some(None) => {
            log::info!("a new kernel waits; another unit's busy runners are not known yet");
            usize::MAX
        }
        Some(Some(busy)) => busy as usize,
        None => 0,
    };
    let phase = RebootPhase::Reconcile { busy_runners: busy };
    if let Some(now) = reboot_request(required, phase) {
        log::info!("a new kernel is installed and no runner on the machine is busy: rebooting");
        juju.reboot(now)?;
    }
    Ok(Outcome::status(Status::Active, done.summary.message()))
}

/// `runners` is called once the action's parameters were found good.
fn run_action<'d>(
    action: &Action,
    juju: &dyn HookTools,
    runners: impl FnOnce() -> Result<Runners<'d>, CharmError>,
) -> Result<Outcome, CharmError> {
    match action {
        Action::CheckRunners => check_runners(runners()?),
        Action::ReconcileRunners => {
            let done = runners()?.reconcile_current(Flush::None)?;
            Ok(report_outcome(&done))
        }
        Action::FlushRunners => {
            let params = juju.action_get()?;
            let flush = match params.get("flush-busy") {
                None | Some(Value::Null) | Some(Value::Bool(true)) => Flush::All,
                Some(Value::Bool(false)) => Flush::Idle,
                Some(other) => {
                    return Err(CharmError::BadParams(format!(
                        "flush-busy must be true or false, not {other}"
                    )))
                }
            };
            let done = runners()?.reconcile_current(flush)?;
            Ok(report_outcome(&done))
        }
        Action::UpdateDependencies => {
            let runners = runners()?;
            let updated = match runners.update_app(true)? {
                AppUpdate::Updated { new, .. } => {
                    CharmState::record_app_version(juju, &new)?;
                    true
                }
                AppUpdate::Unchanged => false,
            };
            let mut outcome = Outcome::default().with_result("flush", updated);
            if updated {
                let done = runners.reconcile_current(Flush::Idle)?;
                outcome.status = Some((Status::Active, done.summary.message()));
            }
            Ok(outcome)
        }
        Action::Unknown(_) => unreachable!("handled in handle()"),
    }
}

fn report_outcome(done: &Reconciled) -> Outcome {
    let report = &done.report;
    let delta = report.created.len() as i64 - i64::from(report.removed_total());
    let mut outcome =
        Outcome::status(Status::Active, done.summary.message()).with_result("delta", delta);
    outcome.results.extend(report.as_results());
    outcome
}

/// The GitHub rate-limit figures of the last response, where operators look for them
/// (check-runners); none when no response carried them.
fn rate_limit_results(limit: Option<&RateLimit>) -> Vec<(String, String)> {
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

fn check_runners(runners: Runners) -> Result<Outcome, CharmError> {
    let observed = runners.check()?;
    let rate_limit = runners.github.last_rate_limit();
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
    let online = names(&|r| r.online);
    let offline = names(&|r| !r.online);
    let busy = names(&|r| r.busy);
    let mut unknown: Vec<String> = with_instance
        .difference(&registered)
        .map(|n| n.to_string())
        .collect();
    unknown.sort();
    let mut outcome = Outcome::default();
    for (key, list) in [
        ("online", &online),
        ("offline", &offline),
        ("busy", &busy),
        ("unknown", &unknown),
    ] {
        outcome = outcome
            .with_result(key, list.len())
            .with_result(format!("{key}-runners"), list.join(","));
    }
    outcome
        .results
        .extend(rate_limit_results(rate_limit.as_ref()));
    Ok(outcome)
}

#[cfg(test)]
#[path = "handlers_tests.rs"]
mod tests;
