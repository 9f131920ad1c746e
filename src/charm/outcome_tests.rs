use super::*;

#[test]
fn config_errors_block_and_do_not_retry() {
    let d = CharmError::Config(ConfigError::Missing(vec!["token"])).disposition(false);
    assert_eq!(
        d.status,
        Some((
            Status::Blocked,
            "Missing required charm configuration: token".into()
        ))
    );
    assert!(!d.retry);
}

#[test]
fn hook_tool_failures_retry_hooks_but_not_actions() {
    let err = || {
        CharmError::HookTool(HookToolError::Failed {
            tool: "status-set".into(),
            status: "exit status: 1".into(),
            stderr: "boom".into(),
        })
    };
    assert!(err().disposition(false).retry);
    assert!(!err().disposition(true).retry);
}

#[test]
fn transient_failures_wait() {
    let d = CharmError::Transient("GitHub unreachable".into()).disposition(false);
    assert_eq!(
        d.status,
        Some((Status::Waiting, "GitHub unreachable".into()))
    );
    assert_eq!(
        CharmError::Transient("x".into()).disposition(true).status,
        None
    );
}

/// Each cause a runner operation can fail with, to the status it sets.
#[test]
fn runner_failures_block_only_when_the_operator_must_act() {
    use crate::runner::lxd_host::missing_image;
    use crate::runner::registry::port_error;
    use github_client::GithubError;
    let blocked = [
        port_error(GithubError::TokenRejected),
        port_error(GithubError::Forbidden {
            status: 403,
            message: "Resource not accessible by personal access token".into(),
        }),
        missing_image("jammy-ci"),
        PortError::needs_operator("runner group \"ci\" not found in acme"),
    ];
    for e in blocked {
        let said = e.to_string();
        for in_action in [false, true] {
            let d = CharmError::Runner(e.clone()).disposition(in_action);
            assert_eq!(d.status, Some((Status::Blocked, said.clone())));
            assert!(!d.retry);
        }
    }
    let passing = [
        port_error(GithubError::Server {
            status: 502,
            attempts: 3,
        }),
        port_error(GithubError::Transport {
            message: "timed out".into(),
            attempts: 3,
        }),
        PortError::transient("instance ghr-0-x not ready after 180s: LXD: timed out"),
    ];
    for e in passing {
        let d = CharmError::Runner(e.clone()).disposition(false);
        assert_eq!(d.status, Some((Status::Waiting, e.to_string())));
        assert!(!d.retry);
        assert_eq!(CharmError::Runner(e).disposition(true).status, None);
    }
}

#[test]
fn the_lock_and_host_steps_by_their_typed_errors() {
    let busy = CharmError::Lock(LockError::Busy(std::time::Duration::from_secs(60)));
    assert_eq!(busy.disposition(false).status.unwrap().0, Status::Waiting);
    let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
    let broken = CharmError::Lock(LockError::Io {
        path: "/var/lib/github-runner/reconcile.lock".into(),
        source: io(),
    });
    let d = broken.disposition(false);
    assert_eq!(d.status.unwrap().0, Status::Maintenance);
    assert!(d.retry);
    let host = CharmError::Host {
        step: "installing packages",
        source: HostError::LockTimeout(std::time::Duration::from_secs(300)),
    };
    let d = host.disposition(false);
    assert_eq!(d.status.as_ref().unwrap().0, Status::Maintenance);
    assert!(d
        .status
        .unwrap()
        .1
        .starts_with("installing packages failed: the apt lock"));
    assert!(d.retry);
    let source = std::error::Error::source(&host).expect("the host error under it");
    assert!(matches!(
        source.downcast_ref::<HostError>(),
        Some(HostError::LockTimeout(_))
    ));
}

/// A reconcile's report: its first failure only the operator can fix fails the hook
/// (blocked, naming it, GitHub's typed error still under it); others are counted.
#[test]
fn a_report_settles_into_its_operators_cause() {
    use crate::runner::registry::port_error;
    use github_client::GithubError;
    use reconcile::execute::Failure;
    let failure = |error: PortError| Failure {
        what: "create ghr-0-abc".into(),
        error,
    };
    let mut report = Report::default();
    report
        .failed
        .push(failure(PortError::transient("LXD: timed out")));
    let report = settle(report).expect("a passing failure is only counted");
    assert_eq!(report.failed.len(), 1);

    let mut report = Report::default();
    report
        .failed
        .push(failure(PortError::transient("LXD: timed out")));
    report
        .failed
        .push(failure(port_error(GithubError::TokenRejected)));
    let err = settle(report).unwrap_err();
    let d = err.disposition(false);
    assert_eq!(d.status.as_ref().unwrap().0, Status::Blocked);
    assert!(d.status.unwrap().1.contains("token rejected by GitHub"));
    let source = std::error::Error::source(&err).expect("GitHub's error under it");
    assert!(matches!(
        source.downcast_ref::<GithubError>(),
        Some(GithubError::TokenRejected)
    ));
}

#[test]
fn context_keeps_the_kind_and_the_source() {
    let e = CharmError::Runner(missing_image_error()).context("firewall");
    assert_eq!(e.to_string(), "firewall: image gone");
    assert_eq!(e.disposition(false).status.unwrap().0, Status::Blocked);
    assert!(std::error::Error::source(&e).is_some());
    let e = CharmError::transient(Cause::of(std::io::Error::from(
        std::io::ErrorKind::NotFound,
    )))
    .context("policy service charm token not there yet");
    assert!(e
        .to_string()
        .starts_with("policy service charm token not there yet: "));
    assert_eq!(e.disposition(false).status.unwrap().0, Status::Waiting);
    let source = std::error::Error::source(&e).unwrap();
    assert!(source.downcast_ref::<std::io::Error>().is_some());
}

fn missing_image_error() -> PortError {
    PortError::needs_operator("image gone")
        .with_source(std::io::Error::from(std::io::ErrorKind::NotFound))
}

/// The first error of type `T` down `e`'s source chain.
fn in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    std::iter::successors(Some(e), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

#[test]
fn an_internal_failure_keeps_its_chain_as_the_source() {
    let e = CharmError::Internal(
        anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound))
            .context("reading the runner app"),
    )
    .context("reconcile");
    assert_eq!(
        e.to_string(),
        "reconcile: reading the runner app: entity not found"
    );
    assert!(std::error::Error::source(&e).is_some());
    assert!(in_chain::<std::io::Error>(&e).is_some());
}

/// A firewall loaded but not recorded waits, with the file error (its path) under it.
#[test]
fn a_firewall_record_failure_keeps_the_file_error() {
    use crate::firewall::FirewallError;
    let path = std::path::PathBuf::from("/var/lib/github-runner/firewall.nft");
    let err = FirewallError::Record(fs_state::FileError {
        action: "writing",
        path: path.clone(),
        source: std::io::Error::from(std::io::ErrorKind::StorageFull),
    });
    let e = crate::charm::install::firewall_failed(err);
    assert_eq!(e.disposition(false).status.unwrap().0, Status::Waiting);
    let file = in_chain::<fs_state::FileError>(&e).expect("the file error under it");
    assert_eq!(file.path, path);
}

/// A storage pool whose mount could not run: the command's error is under it.
#[test]
fn a_pool_failure_keeps_the_command_error() {
    use crate::host::CommandError;
    use crate::runner::pool::PoolError;
    let err = PoolError::Mount {
        dir: "/var/lib/github-runner/pool".into(),
        source: CommandError {
            program: "mount".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        },
    };
    let e = CharmError::transient(Cause::of(err));
    let command = in_chain::<CommandError>(&e).expect("the command error under it");
    assert_eq!(command.program, "mount");
}
