//! The reconcile timer: a systemd service + timer pair, rendered by pure functions,
//! that sends the custom `reconcile-runners` event through `juju-exec` every
//! `reconcile-interval` minutes.

use crate::host::commands::Commands;
use crate::host::systemd::{install_units, systemctl, OnChange};
use crate::host::HostError;
use ghr_types::template;

const SERVICE_TEMPLATE: &str = include_str!("../../templates/reconcile.service");
const TIMER_TEMPLATE: &str = include_str!("../../templates/reconcile.timer");

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerUnits {
    /// e.g. `ghr-reconcile-github-runner-0`
    pub name: String,
    pub service: String,
    pub timer: String,
}

/// Seconds a timer-driven reconcile may run: shorter than the interval, so runs never
/// pile up.
pub fn hook_timeout_secs(interval_minutes: u32) -> u64 {
    (u64::from(interval_minutes) * 60 * 9 / 10).max(30)
}

pub fn render(unit: &str, interval_minutes: u32) -> TimerUnits {
    let name = format!("ghr-reconcile-{}", unit.replace('/', "-"));
    let service_name = format!("{name}.service");
    let delay = u64::from(interval_minutes) * 60 / 4;
    let service = template::fill(
        SERVICE_TEMPLATE,
        &[
            ("UNIT", unit),
            ("TIMEOUT", &hook_timeout_secs(interval_minutes).to_string()),
        ],
    );
    let timer = template::fill(
        TIMER_TEMPLATE,
        &[
            ("UNIT", unit),
            ("INTERVAL", &interval_minutes.to_string()),
            ("DELAY", &delay.to_string()),
            ("SERVICE", &service_name),
        ],
    );
    TimerUnits {
        name,
        service,
        timer,
    }
}

/// Writes the units where they differ and (re)starts the timer; nothing changes (no
/// systemctl call) when they are already as rendered.
pub fn apply(
    commands: &dyn Commands,
    systemd_dir: &std::path::Path,
    units: &TimerUnits,
) -> Result<bool, HostError> {
    let service = format!("{}.service", units.name);
    let timer = format!("{}.timer", units.name);
    let files = [
        (service.as_str(), units.service.as_str()),
        (&timer, &units.timer),
    ];
    install_units(
        commands,
        systemd_dir,
        &files,
        &timer,
        OnChange::EnableAndRestart,
    )
}

/// Stops the timer and removes its units.
pub fn remove(
    commands: &dyn Commands,
    systemd_dir: &std::path::Path,
    unit: &str,
) -> Result<(), HostError> {
    let name = render(unit, 1).name;
    let timer_path = systemd_dir.join(format!("{name}.timer"));
    if timer_path.exists() {
        systemctl(commands, &["disable", "--now", &format!("{name}.timer")])?;
    }
    for suffix in ["service", "timer"] {
        let _ = std::fs::remove_file(systemd_dir.join(format!("{name}.{suffix}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_interval_delay_and_timeout() {
        let t = render("github-runner/0", 10);
        assert_eq!(t.name, "ghr-reconcile-github-runner-0");
        assert!(t.timer.contains("OnUnitInactiveSec=10min"));
        assert!(t.timer.contains("RandomizedDelaySec=150s"));
        assert!(t
            .timer
            .contains("Unit=ghr-reconcile-github-runner-0.service"));
        assert!(t.service.contains(
            "github-runner/0 \"JUJU_DISPATCH_PATH=reconcile-runners timeout 540 ./dispatch\""
        ));
        assert!(
            t.service.contains("juju-run"),
            "falls back to Juju 2's juju-run"
        );
    }

    #[test]
    fn the_hook_always_ends_before_the_next_run() {
        for minutes in [1, 2, 10, 60, 1440] {
            assert!(
                hook_timeout_secs(minutes) < u64::from(minutes) * 60 + 1,
                "{minutes}"
            );
        }
        assert_eq!(hook_timeout_secs(1), 54);
    }
}
