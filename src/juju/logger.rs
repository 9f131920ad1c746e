//! A `log` backend: inside a hook, records go to `juju-log` at the matching level (and
//! stderr, which Juju also keeps); outside one, env_logger handles them.

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::{Cli, HookTools, LogLevel};

struct JujuLogger {
    level: LevelFilter,
}

/// The workspace's crates the charm links: their records go to Juju; third-party
/// crates' (hyper, ureq, ...) do not.
const OWN_CRATES: [&str; 6] = [
    "github_runner",
    "ghr_types",
    "lxd_client",
    "github_client",
    "reconcile",
    "policy_service",
];

fn is_own(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    OWN_CRATES.contains(&krate)
}

impl Log for JujuLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level && is_own(metadata.target())
    }
    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => LogLevel::Error,
            Level::Warn => LogLevel::Warning,
            Level::Info => LogLevel::Info,
            Level::Debug | Level::Trace => LogLevel::Debug,
        };
        let message = record.args().to_string();
        if Cli.juju_log(level, &message).is_err() {
            eprintln!("{} {}", level.as_str(), message);
        }
    }
    fn flush(&self) {}
}

/// Installs the logger: `juju-log` when running in a hook context, env_logger otherwise.
pub fn init_logging(in_hook: bool) {
    if in_hook {
        let level = match std::env::var("GITHUB_RUNNER_LOG").as_deref() {
            Ok("debug") => LevelFilter::Debug,
            _ => LevelFilter::Info,
        };
        if log::set_boxed_logger(Box::new(JujuLogger { level })).is_ok() {
            log::set_max_level(level);
        }
    } else {
        let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_every_own_crate_pass_and_others_do_not() {
        let logger = JujuLogger {
            level: LevelFilter::Info,
        };
        let meta = |target| {
            Metadata::builder()
                .level(Level::Warn)
                .target(target)
                .build()
        };
        for target in ["github_runner::charm", "github_client::retry", "reconcile"] {
            assert!(logger.enabled(&meta(target)), "{target}");
        }
        for target in ["hyper::proto", "github_runnerx", "ureq::unit"] {
            assert!(!logger.enabled(&meta(target)), "{target}");
        }
    }
}
