use super::*;
use reconcile::ports::PortErrorKind;
use std::error::Error;

fn repo() -> GithubPath {
    GithubPath::parse("acme/widgets", "default").unwrap()
}
fn org() -> GithubPath {
    GithubPath::parse("acme", "ci").unwrap()
}
fn forbidden() -> GithubError {
    GithubError::Forbidden {
        status: 403,
        message: "Resource not accessible by personal access token".into(),
    }
}
fn rejected() -> GithubError {
    GithubError::Rejected {
        status: 422,
        message: "runner group not found".into(),
    }
}
fn never() -> PortResult<u64> {
    panic!("the group is looked up only for a rejected org registration")
}
fn github_source(e: &PortError) -> &GithubError {
    e.source()
        .and_then(|s| s.downcast_ref::<GithubError>())
        .expect("GitHub's error under it")
}

#[test]
fn a_rejected_token_needs_the_operator_and_names_the_token() {
    let e = port_error(GithubError::TokenRejected);
    assert_eq!(e.kind, PortErrorKind::NeedsOperator);
    assert!(
        e.message().contains("token rejected by GitHub (401)"),
        "{e}"
    );
    assert!(matches!(github_source(&e), GithubError::TokenRejected));
}

#[test]
fn passing_github_failures_are_transient() {
    for e in [
        GithubError::Server {
            status: 502,
            attempts: 3,
        },
        GithubError::Transport {
            message: "timed out".into(),
            attempts: 3,
        },
        GithubError::SecondaryRateLimited {
            retry_after: std::time::Duration::from_secs(90),
        },
        rejected(),
    ] {
        let said = e.to_string();
        let e = port_error(e);
        assert_eq!(e.kind, PortErrorKind::Transient, "{said}");
        assert_eq!(e.message(), said);
    }
}

#[test]
fn a_refused_registration_names_the_missing_permission() {
    for path in [repo(), org()] {
        let e = registration_error(forbidden(), &path, never);
        assert_eq!(e.kind, PortErrorKind::NeedsOperator);
        let m = e.message();
        assert!(
            m.contains("lacks the permission to register runners on")
                && m.contains(&path.to_string())
                && m.contains("Resource not accessible"),
            "{m}"
        );
        assert!(matches!(github_source(&e), GithubError::Forbidden { .. }));
    }
    // A 401 there is the token's, as anywhere else.
    let e = registration_error(GithubError::TokenRejected, &org(), never);
    assert!(
        e.needs_operator_fix() && e.message().contains("token"),
        "{e}"
    );
}

#[test]
fn a_rejected_org_registration_blocks_only_when_the_group_is_gone() {
    let gone = registration_error(rejected(), &org(), || Err(missing_group("acme", "ci")));
    assert_eq!(gone.kind, PortErrorKind::NeedsOperator);
    assert!(
        gone.message()
            .contains("runner group \"ci\" not found in acme"),
        "{gone}"
    );
    // The group is there (made anew, say): the next reconcile tries again.
    let there = registration_error(rejected(), &org(), || Ok(7));
    assert_eq!(there.kind, PortErrorKind::Transient);
    assert!(matches!(
        github_source(&there),
        GithubError::Rejected { .. }
    ));
    // The groups cannot be listed: the registration's own failure stands.
    let unknown = registration_error(rejected(), &org(), || {
        Err(PortError::transient("GitHub server error 502"))
    });
    assert_eq!(unknown.kind, PortErrorKind::Transient);
    assert!(unknown.message().contains("422"), "{unknown}");
    // A repository has no group to lose; a 5xx is not the group's fault.
    assert_eq!(
        registration_error(rejected(), &repo(), never).kind,
        PortErrorKind::Transient
    );
    let server = GithubError::Server {
        status: 500,
        attempts: 3,
    };
    assert_eq!(
        registration_error(server, &org(), never).kind,
        PortErrorKind::Transient
    );
}

#[test]
fn the_application_download_reads_githubs_failures_the_same_way() {
    let e = app_port_error(AppError::Download(GithubError::TokenRejected));
    assert_eq!(e.kind, PortErrorKind::NeedsOperator);
    assert!(
        e.message()
            .starts_with("runner application download: token rejected by GitHub"),
        "{e}"
    );
    let e = app_port_error(AppError::NoMatch("linux/x64".into()));
    assert_eq!(e.kind, PortErrorKind::Transient);
}
