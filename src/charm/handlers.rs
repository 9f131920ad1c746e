//! One handler per event. Each starts from the typed config (an invalid one stops it
//! before anything on the host or GitHub is touched) and returns an [`Outcome`].

use super::cos_agent;
use super::deps::Deps;
use super::install::InstallKind;
use super::manager_link;
use super::outcome::Cause;
use super::runners::{Paths, Runners, Summary};
use super::state::CharmState;
use super::summary::Problem;
use super::{timer, Action, CharmError, Event, HookEnv, Outcome};
use crate::config::{CharmConfig, ConfigError, GithubPath, Mode};
use crate::host::kernel::{reboot_request, reboot_required, RebootPhase};
use crate::host::lxd_setup::BlockingLxd;
use crate::juju::{HookSecrets, HookTools, Status};
use crate::manager::protocol::{AppCheck, FlushRunners, Request};
use crate::manager::settings::{Given, Settings};
use crate::runner::app::AppCache;
use reconcile::plan::Flush;

/// Reads and validates the configuration; the only place handlers get it from.
pub fn load_config(juju: &dyn HookTools) -> Result<CharmConfig, CharmError> {
    Ok(load(juju)?.config)
}

/// The config as `config-get` gave it with the secrets it names (the manager's settings
/// keep them so) and parsed.
pub struct Loaded {
    pub given: Given,
    pub config: CharmConfig,
}

fn load(juju: &dyn HookTools) -> Result<Loaded, CharmError> {
    let raw = juju.config_get()?;
    let secrets = HookSecrets::new(juju);
    let config = CharmConfig::from_json_with(&raw, &secrets)?;
    let given = Given {
        config: raw,
        secrets: secrets.snapshot(),
    };
    Ok(Loaded { given, config })
}

/// What the last hook handed the runner manager: `stop` and `remove` take the unit's
/// runners away with it when the config cannot be read now (a secret revoked first, an
/// option broken), rather than leave them behind.
fn last_handed(deps: &Deps, now: ConfigError) -> Result<Loaded, CharmError> {
    let settings = Settings::load(&deps.paths).map_err(|_| CharmError::Config(now.clone()))?;
    let config = CharmConfig::from_json_with(&settings.config, &settings.secrets)
        .map_err(|_| CharmError::Config(now.clone()))?;
    log::warn!("the config cannot be used now ({now}): leaving with the one last handed to the runner manager");
    let given = Given {
        config: settings.config,
        secrets: settings.secrets,
    };
    Ok(Loaded { given, config })
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
        // Needs no config: the data is the charm's files and the unit's ports.
        Event::CosAgentRelation => {
            cos_agent::refresh(juju, deps);
            return Ok(Outcome::default());
        }
        _ => {}
    }
    let loaded = match load(juju) {
        Err(CharmError::Config(e)) if event.tears_down() => last_handed(deps, e)?,
        other => other?,
    };
    let result = handle_event(event, juju, loaded, env, deps);
    match &result {
        // Unregistered, the state directory may be another unit's (a name clash).
        Err(e) if deps.registered() => remember_problem(event, e, &deps.paths),
        _ => {}
    }
    // After the handler, whatever it returned (a failed reconcile must not hold back
    // the dashboards); a config refused above writes nothing, this data included.
    if event.refreshes_cos_agent() {
        cos_agent::refresh(juju, deps);
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

/// A reconcile the manager does on the settings this hook wrote.
fn reconcile(flush: FlushRunners, app: AppCheck) -> Request {
    Request::Reconcile { flush, app }
}

fn handle_event(
    event: &Event,
    juju: &dyn HookTools,
    loaded: Loaded,
    env: &HookEnv,
    deps: &Deps,
) -> Result<Outcome, CharmError> {
    let Loaded { given, config } = loaded;
    match event {
        Event::UpdateStatus => Ok(update_status(&config, &deps.paths)),
        Event::Install => install(juju, &config, env, deps, InstallKind::Install),
        Event::ConfigChanged | Event::SecretChanged => {
            config_changed(juju, &given, config, env, deps)
        }
        Event::Start => {
            manager_link::ensure(juju, &given, env, deps, false)?;
            reconciled(reconcile(FlushRunners::None, AppCheck::Skip), deps)
        }
        Event::Stop => stop(config, env, deps).map(|(outcome, _)| outcome),
        // Juju forgets the unit after this hook: what it leaves stays for good.
        Event::Remove => stop(config, env, deps)
            .and_then(|(outcome, runners)| runners.leave_machine().map(|()| outcome))
            .map_err(CharmError::unfinished),
        Event::UpgradeCharm => {
            install(juju, &config, env, deps, InstallKind::Upgrade)?;
            // A new binary: the manager restarts on it.
            manager_link::ensure(juju, &given, env, deps, true)?;
            reconciled(reconcile(FlushRunners::Idle, AppCheck::Skip), deps)
        }
        Event::ReconcileTimer => timer_reconcile(juju, &given, env, deps),
        Event::Action(action) => run_action(action, juju, &given, env, deps),
        Event::Unknown(_) | Event::CosAgentRelation => unreachable!("handled above"),
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

/// Asks the manager for `request` and shows its summary.
fn reconciled(request: Request, deps: &Deps) -> Result<Outcome, CharmError> {
    let done = manager_link::ask(deps, &request)?;
    Ok(Outcome::status(Status::Active, done.message))
}

fn config_changed(
    juju: &dyn HookTools,
    given: &Given,
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
    // The policy service holds the credential and the GitHub URL: rendered on every
    // change, it restarts when they differ from what it runs on, also after a failed
    // rotation was put back (the state below was then never saved). Idle runners are
    // flushed only for another account's credential, not for a token or key rotated.
    let lxd = host_lxd(deps)?;
    if super::install::policy_service(env, &config, deps, &runners.site, &lxd, false)? {
        log::info!("the policy service's settings changed: restarted it on them");
    }
    let flush = if state.credential_replaced(&config) {
        log::info!("another GitHub credential: flushing idle runners");
        FlushRunners::Idle
    } else {
        FlushRunners::None
    };
    manager_link::ensure(juju, given, env, deps, false)?;
    let done = manager_link::ask(deps, &reconcile(flush, AppCheck::Skip))?;
    // Only after the reconcile: a failed one leaves the old values, so the next
    // config-changed flushes again instead of forgetting the change.
    state.remember(&config);
    state.save(juju)?;
    Ok(Outcome::status(Status::Active, done.message))
}

fn group_of(config: &CharmConfig) -> &str {
    match &config.path {
        GithubPath::Org { group, .. } => group,
        GithubPath::Repo { .. } => "default",
    }
}

/// Stops the timer and the runner manager, then removes the runners here (every one
/// in a fixed pool; on demand the idle ones) and frees the unit's memory claim;
/// `remove` then takes the rest of the unit's own away with the `Runners` returned,
/// once no runner is left.
fn stop<'d>(
    config: CharmConfig,
    env: &HookEnv,
    deps: &'d Deps<'d>,
) -> Result<(Outcome, Runners<'d>), CharmError> {
    timer::remove(deps.commands, &deps.paths.systemd_dir(), &env.unit_name)
        .map_err(|e| CharmError::transient(Cause::of(e).context("reconcile timer")))?;
    manager_link::stop(deps)?;
    // On demand no job is lost: busy runners finish theirs (remove waits for them);
    // a fixed pool is flushed whole, as it always was.
    let flush = match config.mode() {
        Mode::Static { .. } => Flush::All,
        Mode::OnDemand { .. } => Flush::Idle,
    };
    let runners = Runners::new(config, env.clone(), deps)?;
    let report = runners.reconcile(0, flush)?.report;
    let mut message = format!("stopped: {} runners removed", report.removed_total());
    if report.busy > 0 {
        message += &format!(", {} busy finishing their job", report.busy);
    }
    Ok((Outcome::status(Status::Maintenance, message), runners))
}

/// The timer's event: the manager reconciles (keeping the runner application current),
/// then this hook sets the status and reboots into a new kernel when one waits and no
/// job on the machine would be cut short: both need a hook (status-set, juju-reboot).
fn timer_reconcile(
    juju: &dyn HookTools,
    given: &Given,
    env: &HookEnv,
    deps: &Deps,
) -> Result<Outcome, CharmError> {
    let done = ask_keeping_app(juju, given, env, deps, AppCheck::IfDue)?;
    let required = reboot_required(&deps.paths);
    // The machine is shared: every unit's jobs would be cut short.
    let busy = match required.then_some(done.machine_busy) {
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
    Ok(Outcome::status(Status::Active, done.message))
}

/// Every action asks the manager once its parameters were found good.
fn run_action(
    action: &Action,
    juju: &dyn HookTools,
    given: &Given,
    env: &HookEnv,
    deps: &Deps,
) -> Result<Outcome, CharmError> {
    // Bad parameters change nothing; then, as an action may come before start, the
    // manager starts here.
    let flush = match action {
        Action::FlushRunners => flush_param(juju)?,
        _ => FlushRunners::None,
    };
    manager_link::ensure(juju, given, env, deps, false)?;
    match action {
        Action::CheckRunners => {
            let done = manager_link::ask(deps, &Request::Check)?;
            Ok(Outcome {
                status: None,
                results: done.results,
            })
        }
        Action::ReconcileRunners => report_outcome(deps, FlushRunners::None),
        Action::FlushRunners => report_outcome(deps, flush),
        Action::UpdateDependencies => {
            let done = ask_keeping_app(juju, given, env, deps, AppCheck::Force)?;
            let mut outcome = Outcome::default().with_result("flush", done.app_updated.is_some());
            if done.app_updated.is_some() {
                outcome.status = Some((Status::Active, done.message));
            }
            Ok(outcome)
        }
        Action::Unknown(_) => unreachable!("handled in handle()"),
    }
}

/// A reconcile that may update the runner application; the version on the host is
/// remembered whether or not the reconcile after the download went well.
fn ask_keeping_app(
    juju: &dyn HookTools,
    given: &Given,
    env: &HookEnv,
    deps: &Deps,
    app: AppCheck,
) -> Result<crate::manager::Done, CharmError> {
    manager_link::ensure(juju, given, env, deps, false)?;
    let done = manager_link::ask(deps, &reconcile(FlushRunners::None, app));
    let on_host = AppCache::new(deps.paths.app_dir()).current();
    if let Some(current) = on_host {
        if CharmState::load(juju)?.runner_app_version.as_deref() != Some(&current.filename) {
            CharmState::record_app_version(juju, &current.filename)?;
        }
    }
    done
}

/// `flush-busy` (default true): busy runners go too.
fn flush_param(juju: &dyn HookTools) -> Result<FlushRunners, CharmError> {
    match juju.action_get()?.get("flush-busy") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(true)) => {
            Ok(FlushRunners::All)
        }
        Some(serde_json::Value::Bool(false)) => Ok(FlushRunners::Idle),
        Some(other) => Err(CharmError::BadParams(format!(
            "flush-busy must be true or false, not {other}"
        ))),
    }
}

fn report_outcome(deps: &Deps, flush: FlushRunners) -> Result<Outcome, CharmError> {
    let done = manager_link::ask(deps, &reconcile(flush, AppCheck::Skip))?;
    Ok(Outcome {
        status: Some((Status::Active, done.message)),
        results: done.results,
    })
}

#[cfg(test)]
#[path = "handlers_tests.rs"]
mod tests;
