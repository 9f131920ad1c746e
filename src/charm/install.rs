//! The install and upgrade-charm handler: brings the host to the state the runners need
//! (a private state directory, packages, the LXD snap, `br_netfilter` and its sysctls,
//! LXD initialised and hardened, LXD's proxy, the policy service, the firewall and its
//! boot unit), step by step with a status message for each, and asks Juju for a reboot
//! at the end when a package asked for one. Every step reads before it writes, so a
//! second run changes nothing.

use super::deps::Deps;
use super::neighbours::Neighbours;
use super::outcome::Cause;
use super::{CharmError, HookEnv, Outcome};
use crate::config::{CharmConfig, TestMode};
use crate::firewall::{boot, FirewallError, FirewallSpec, InterfaceName, LoadRecord, Nft};
use crate::host::kernel::{self, RebootPhase};
use crate::host::lxd_setup::{self, LxdSetup};
use crate::host::packages::{self, Apt};
use crate::host::runner_env::proxy_vars;
use crate::host::site::UnitSite;
use crate::host::units::{self, PolicySecrets, PolicyUnit};
use crate::host::{HostError, OsFamily};
use crate::juju::{HookTools, Status};
use fs_state::ensure_private_dir;

/// Which hook runs: upgrade-charm also refreshes the LXD snap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallKind {
    Install,
    Upgrade,
}

/// The name of the charm's binary inside the charm directory.
pub const BINARY: &str = "github-runner";

/// The name of aproxy's binary inside the charm directory: what runners receive.
pub const APROXY_FILE: &str = "aproxy";

/// Prepares the host. Failures name the step; they leave the unit in `maintenance` and
/// exit non-zero so that Juju retries the hook (the steps already done are skipped).
pub fn install(
    juju: &dyn HookTools,
    env: &HookEnv,
    config: &CharmConfig,
    deps: &Deps,
    lxd: &dyn LxdSetup,
    kind: InstallKind,
) -> Result<Outcome, CharmError> {
    let (commands, paths) = (deps.commands, &deps.paths);
    // Without its site the layout takeover would be skipped for good: Juju retries.
    let site = deps.site().map_err(|e| match e {
        CharmError::Transient(_) => e.unfinished(),
        e => e,
    })?;
    let os = OsFamily::detect(paths);
    // Secrets and the firewall's record live there: private even if it already existed.
    ensure_private_dir(&paths.state_dir()).map_err(failed("preparing the state directory"))?;
    let proxy_env = proxy_vars(&env.proxy, &[]);
    let step = |message: &str| -> Result<(), CharmError> {
        log::info!("{message}");
        juju.status_set(Status::Maintenance, message)?;
        Ok(())
    };

    step("installing packages")?;
    let apt = Apt {
        commands,
        clock: deps.clock.as_ref(),
        env: [("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())]
            .into_iter()
            .chain(proxy_env.iter().cloned())
            .collect(),
        lock_wait: deps.limits.apt_lock,
    };
    let (wanted, unwanted) = package_sets(os);
    let all: Vec<&str> = wanted.iter().chain(&unwanted).copied().collect();
    let installed = apt.installed(&all).map_err(failed("installing packages"))?;
    let plan = packages::plan(&installed, &wanted, &unwanted);
    apt.apply(&plan).map_err(failed("installing packages"))?;

    if os == OsFamily::Ubuntu {
        step("installing the lxd snap")?;
        packages::ensure_lxd_snap(commands, &proxy_env, kind == InstallKind::Upgrade)
            .map_err(failed("installing the lxd snap"))?;
    }

    step("loading br_netfilter")?;
    kernel::ensure_br_netfilter(commands, paths).map_err(failed("loading br_netfilter"))?;
    kernel::ensure_bridge_sysctls(commands, paths).map_err(failed("loading br_netfilter"))?;

    step("initialising LXD")?;
    lxd_setup::wait_ready(commands).map_err(failed("waiting for LXD"))?;
    lxd_setup::ensure_initialised(lxd).map_err(failed("initialising LXD"))?;
    if config.test_mode == TestMode::Insecure {
        log::warn!("test-mode insecure: the default profile's NIC is not hardened");
    } else {
        step("hardening the LXD default profile")?;
        lxd_setup::ensure_nic_hardening(lxd).map_err(failed("hardening the LXD profile"))?;
    }
    step("configuring LXD's proxy")?;
    lxd_setup::ensure_core_proxy(lxd, &env.proxy).map_err(failed("configuring LXD's proxy"))?;

    super::migrate::take_over(deps, site).map_err(failed("taking over the single-unit layout"))?;
    step("installing the policy service")?;
    policy_service(env, config, deps, site, lxd, kind == InstallKind::Upgrade)?;

    step("applying the firewall")?;
    apply_firewall(config, deps, site, lxd)?;
    boot::install_boot_unit(commands, paths, site)
        .map_err(failed("installing the firewall's boot unit"))?;
    super::migrate::retire_old_firewall(deps, site)
        .map_err(failed("retiring the single-unit layout's firewall"))?;

    let required = kernel::reboot_required(paths) && alone_on_machine(deps, site);
    match kernel::reboot_request(required, RebootPhase::Install) {
        Some(now) => {
            log::info!("a package asked for a reboot; asking Juju for one");
            juju.reboot(now)?;
            Ok(Outcome::status(
                Status::Maintenance,
                "rebooting to activate the new kernel",
            ))
        }
        None => Ok(Outcome::status(Status::Active, "host ready")),
    }
}

/// Whether no other unit of the charm is on the machine: otherwise an install must not
/// reboot it under the others' jobs, and the timer reboots once no runner is busy. An
/// application of an earlier version is in no registry: its layout tells.
fn alone_on_machine(deps: &Deps, site: &UnitSite) -> bool {
    if !site.legacy && deps.paths.legacy_layout_present() {
        log::info!("a new kernel waits: an earlier version's runners share this machine");
        return false;
    }
    let alone = Neighbours::none_registered(deps)
        .and_then(|none| Ok(none || !Neighbours::look(deps)?.any_runners()));
    match alone {
        Ok(true) => true,
        Ok(_) => {
            log::info!("a new kernel waits: other units' runners share this machine");
            false
        }
        Err(e) => {
            log::warn!("{e}");
            false
        }
    }
}

/// The charm's nftables table for the runners' bridge, loaded unless the kernel already
/// holds it exactly; every reconcile that wants runners checks it again.
fn apply_firewall(
    config: &CharmConfig,
    deps: &Deps,
    site: &UnitSite,
    lxd: &dyn LxdSetup,
) -> Result<(), CharmError> {
    let (bridge, address) =
        lxd_setup::runner_bridge(lxd).map_err(failed("applying the firewall"))?;
    let bridge = InterfaceName::new(&bridge).map_err(|e| CharmError::Internal(e.into()))?;
    let spec = FirewallSpec::for_site(site, bridge, address, config.denylist.clone())
        .map_err(|e| CharmError::Internal(e.into()))?;
    crate::firewall::ensure(
        &Nft::new(deps.commands),
        &spec,
        &LoadRecord::at(&deps.paths),
    )
    .map(drop)
    .map_err(firewall_failed)
}

/// The error policy for the firewall: without it no runner may start, so the status
/// names it. A ruleset nft refuses, or no nft at all, needs the operator (`blocked`);
/// a failed listing or record is retried by the next reconcile (`waiting`).
pub(super) fn firewall_failed(e: FirewallError) -> CharmError {
    let passing = matches!(e, FirewallError::List { .. } | FirewallError::Record(_));
    let cause = Cause::of(e).context("firewall");
    if passing {
        CharmError::Transient(cause)
    } else {
        CharmError::Blocked(cause)
    }
}

/// Packages to have and to be rid of: on Ubuntu the kernel meta-package is ours and LXD
/// comes as a snap, so the deb LXD goes; elsewhere the distribution's LXD is used.
fn package_sets(os: OsFamily) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut wanted = packages::BASE_PACKAGES.to_vec();
    wanted.extend(kernel::kernel_package(os));
    match os {
        OsFamily::Ubuntu => (wanted, packages::DEB_LXD.to_vec()),
        OsFamily::Other => {
            wanted.extend(packages::DEB_LXD);
            (wanted, Vec::new())
        }
    }
}

/// Writes the policy service's binary, unit and env file from `config` and restarts it
/// when they changed (or when `upgraded`: a new charm). For config-changed too: a new
/// token reaches the service this way. Returns whether the service restarted.
pub fn policy_service(
    env: &HookEnv,
    config: &CharmConfig,
    deps: &Deps,
    site: &UnitSite,
    lxd: &dyn LxdSetup,
    upgraded: bool,
) -> Result<bool, CharmError> {
    let (commands, paths) = (deps.commands, &deps.paths);
    let install = || -> Result<bool, HostError> {
        let (_, bridge_address) = lxd_setup::runner_bridge(lxd)?;
        let charm_token = units::ensure_charm_token(paths)?;
        // The service runs its own root-owned copy, which its dynamic user may execute.
        let binary_changed = units::install_policy_binary(paths, &env.charm_dir.join(BINARY))?;
        let unit = PolicyUnit {
            name: site.policy_unit(),
            port: site.policy_port(),
            state_directory: paths.policy_state_name(),
            // Named as the state directory: `HostPaths::policy_events_log` is inside.
            logs_directory: paths.policy_state_name(),
            charm_unit: env.unit_name.clone(),
            binary: paths.host_view(&paths.policy_binary()),
            bridge_address,
            env_file: paths.host_view(&paths.policy_env_file()),
        };
        let secrets = PolicySecrets {
            github: &config.auth,
            charm_token: &charm_token,
            github_url: config.github_url.web(),
        };
        let restart = upgraded || binary_changed;
        units::install_policy_service(commands, paths, &unit, &secrets, restart)
    };
    install().map_err(failed("installing the policy service"))
}

/// The error policy for host steps: a value that cannot be written is the operator's
/// to fix (`blocked`); anything else is retried with the hook.
fn failed<E: Into<HostError>>(step: &'static str) -> impl Fn(E) -> CharmError {
    move |err| match err.into() {
        HostError::Render(e) => CharmError::Blocked(Cause::of(e).context(step)),
        source => CharmError::Host { step, source },
    }
}

#[cfg(test)]
#[path = "install_tests.rs"]
mod tests;
