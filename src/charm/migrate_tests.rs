use std::fs;
use std::sync::Arc;

use super::*;
use crate::charm::deps::HttpGithub;
use crate::host::fakes::{FakeClock, FakeCommands};
use crate::host::site::UnitSite;

/// The single-unit layout as the earlier version left it for unit `github-runner/0`.
fn old_layout(root: &Path) {
    let old = HostPaths::new(root);
    let state = old.state_dir();
    fs::create_dir_all(state.join("runner-app")).unwrap();
    fs::write(state.join("runner-app/actions-runner.tgz"), "app").unwrap();
    fs::write(state.join("charm-token"), "a".repeat(64)).unwrap();
    fs::write(state.join("draining-path"), "acme/old").unwrap();
    fs::write(state.join("firewall.nft"), "table inet github-runner {}").unwrap();
    fs::write(state.join("policy-server.env"), "GITHUB_TOKEN=x\n").unwrap();
    let systemd = old.systemd_dir();
    fs::create_dir_all(&systemd).unwrap();
    for unit in [
        POLICY_UNIT,
        boot::BOOT_UNIT,
        "ghr-reconcile-github-runner-0.timer",
    ] {
        fs::write(systemd.join(unit), "[Unit]\n").unwrap();
    }
    let tokens = old.policy_private_state_dir();
    fs::create_dir_all(&tokens).unwrap();
    fs::write(tokens.join("one-time-tokens"), "digest\n").unwrap();
}

fn deps<'a>(commands: &'a FakeCommands, github: &'a HttpGithub, root: &Path) -> Deps<'a> {
    let mut deps = Deps::stand_in(commands, Arc::new(FakeClock::at(0)), github, root);
    deps.paths = HostPaths::for_unit(root, "github-runner/0");
    deps
}

fn site(legacy: bool) -> UnitSite {
    UnitSite::new("github-runner/0", 0, legacy)
}

#[test]
fn the_owner_takes_the_old_layout_over_keeping_tokens_and_state() {
    let dir = tempfile::tempdir().unwrap();
    old_layout(dir.path());
    let paths = HostPaths::for_unit(dir.path(), "github-runner/0");
    assert!(paths.legacy_layout_present());
    let (c, github) = (FakeCommands::new(), HttpGithub::default());
    let (deps, site) = (deps(&c, &github, dir.path()), site(true));

    take_over(&deps, &site).unwrap();
    assert_eq!(
        c.lines(),
        [
            "systemctl disable --now github-runner-policy.service",
            "systemctl daemon-reload"
        ],
        "the old service stops before its tokens move"
    );
    let unit_state = paths.state_dir();
    assert_eq!(
        fs::read_to_string(unit_state.join("draining-path")).unwrap(),
        "acme/old"
    );
    assert_eq!(
        fs::read_to_string(unit_state.join("charm-token")).unwrap(),
        "a".repeat(64)
    );
    assert!(unit_state.join("runner-app/actions-runner.tgz").exists());
    assert_eq!(
        fs::read_to_string(paths.policy_private_state_dir().join("one-time-tokens")).unwrap(),
        "digest\n",
        "idle runners' one-time tokens reach the unit's service"
    );
    let old = paths.legacy();
    assert!(
        !old.policy_env_file().exists(),
        "the old file with the GitHub token is gone"
    );
    assert!(!paths.legacy_layout_present());

    c.clear();
    retire_old_firewall(&deps, &site).unwrap();
    assert_eq!(
        c.lines(),
        [
            "nft -f -",
            "systemctl disable github-runner-firewall.service"
        ]
    );
    assert!(!old.firewall_record().exists());
    assert!(!old.systemd_dir().join(boot::BOOT_UNIT).exists());
    c.clear();
    take_over(&deps, &site).unwrap();
    retire_old_firewall(&deps, &site).unwrap();
    assert!(
        c.lines().is_empty(),
        "a second run does nothing: {:?}",
        c.lines()
    );
}

#[test]
fn another_unit_leaves_the_old_layout_alone() {
    let dir = tempfile::tempdir().unwrap();
    old_layout(dir.path());
    let (c, github) = (FakeCommands::new(), HttpGithub::default());
    let (deps, site) = (deps(&c, &github, dir.path()), site(false));
    take_over(&deps, &site).unwrap();
    retire_old_firewall(&deps, &site).unwrap();
    assert!(c.lines().is_empty());
    assert!(deps.paths.legacy_layout_present());
}
