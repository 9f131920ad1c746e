//! Juju events to handlers: [`run_hook`] reads the environment once (the hook's
//! [`HookEnv`], the [`deps::Knobs`]), builds the dependencies every handler acts through
//! ([`deps::Deps`]), runs the handler for the event, and applies the outcome (status,
//! action results) through the hook tools, with one error policy
//! ([`outcome::CharmError::disposition`]).

pub mod cos_agent;
pub mod deps;
mod drain;
pub mod event;
pub mod handlers;
pub mod install;
mod leave;
pub mod manager_link;
mod migrate;
pub mod neighbours;
pub mod outcome;
pub mod policy_health;
mod reconcile_steps;
mod runner_host;
mod runner_layout;
pub mod runners;
pub mod state;
pub mod summary;
pub mod test_mode;
pub mod timer;

use std::process::ExitCode;

use crate::juju::{HookTools, Status};
pub use deps::Deps;
pub use event::{Action, Event};
pub use outcome::{CharmError, Outcome};

/// What a hook sees of its environment, read once at the edge.
#[derive(Clone, Debug, Default)]
pub struct HookEnv {
    pub dispatch_path: String,
    /// `github-runner/0`
    pub unit_name: String,
    pub charm_dir: std::path::PathBuf,
    pub proxy: ghr_types::proxy::ProxyConfig,
}

impl HookEnv {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        HookEnv {
            dispatch_path: var("JUJU_DISPATCH_PATH"),
            unit_name: var("JUJU_UNIT_NAME"),
            charm_dir: std::env::var_os("JUJU_CHARM_DIR")
                .map(Into::into)
                .or_else(|| {
                    std::env::current_exe()
                        .ok()
                        .and_then(|p| p.parent().map(Into::into))
                })
                .unwrap_or_default(),
            proxy: ghr_types::proxy::ProxyConfig::from_env(),
        }
    }
}

/// Entry point for a Juju hook, action or custom event: the one place the environment
/// is read and the real dependencies are built.
pub fn run_hook() -> ExitCode {
    let env = HookEnv::from_env();
    let knobs = deps::Knobs::from_env();
    let github = deps::HttpGithub {
        request_timeout: knobs.github_timeout,
    };
    let deps = Deps::on_this_host(&knobs, &github, &env.unit_name);
    dispatch(&crate::juju::Cli, &env, &deps)
}

/// Runs the handler for `env.dispatch_path` and applies its result. Never panics on a
/// handler error; exits non-zero only where the error policy says Juju should retry.
pub fn dispatch(juju: &dyn HookTools, env: &HookEnv, deps: &Deps) -> ExitCode {
    let marking = test_mode::MarkInsecure::new(juju);
    let juju: &dyn HookTools = &marking;
    let event = Event::from_dispatch_path(&env.dispatch_path);
    log::debug!("dispatching {event:?}");
    let result = handlers::handle(&event, juju, env, deps);
    match result {
        Ok(outcome) => apply_outcome(juju, &outcome),
        Err(err) => apply_error(juju, &event, &err),
    }
}

fn apply_outcome(juju: &dyn HookTools, outcome: &Outcome) -> ExitCode {
    let mut ok = true;
    if !outcome.results.is_empty() {
        ok &= report(juju.action_set(&outcome.results), "action-set");
    }
    if let Some((status, message)) = &outcome.status {
        ok &= report(juju.status_set(*status, message), "status-set");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn apply_error(juju: &dyn HookTools, event: &Event, err: &CharmError) -> ExitCode {
    let in_action = event.is_action();
    let disposition = err.disposition(in_action);
    log::error!("{event:?} failed: {err}");
    let mut ok = true;
    if in_action {
        ok &= report(juju.action_fail(&err.to_string()), "action-fail");
    }
    if let Some((status, message)) = &disposition.status {
        ok &= report(juju.status_set(*status, message), "status-set");
    }
    if disposition.retry || !ok {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(result: crate::juju::ToolResult<()>, what: &str) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            eprintln!("{what}: {e}");
            false
        }
    }
}

/// Convenience for handlers: a status value.
pub fn active(message: impl Into<String>) -> Outcome {
    Outcome::status(Status::Active, message)
}
