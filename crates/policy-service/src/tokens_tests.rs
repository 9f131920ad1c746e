//! Tests of one-time tokens: single use, runner binding, revocation, expiry, the cap
//! and the file across restarts.

use super::*;

const A: &str = "app-0-0000000a";
const B: &str = "app-0-0000000b";

#[test]
fn one_time_tokens_are_64_hex_and_single_use() {
    let tokens = OneTimeTokens::new();
    let a = tokens.issue(A).unwrap();
    let b = tokens.issue(B).unwrap();
    assert_eq!(a.len(), 64);
    assert!(a
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_ne!(a, b);
    assert_eq!(tokens.consume("nope", Some(A)), Err(Refusal::Unknown));
    assert_eq!(tokens.consume(&b, Some(B)), Ok(()));
    assert_eq!(
        tokens.consume(&b, Some(B)),
        Err(Refusal::Unknown),
        "second use of a token is refused"
    );
    assert_eq!(tokens.consume(&a, Some(A)), Ok(()));
    assert_eq!(tokens.outstanding(), 0);
}

#[test]
fn a_token_is_only_accepted_from_its_runner_and_used_up_by_another() {
    let tokens = OneTimeTokens::new();
    let a = tokens.issue(A).unwrap();
    assert_eq!(
        tokens.consume(&a, Some(B)),
        Err(Refusal::OtherRunner {
            issued_for: A.into(),
            presented_as: Some(B.into())
        })
    );
    assert_eq!(
        tokens.consume(&a, Some(A)),
        Err(Refusal::Unknown),
        "used up"
    );
    let a = tokens.issue(A).unwrap();
    assert!(matches!(
        tokens.consume(&a, None),
        Err(Refusal::OtherRunner {
            presented_as: None,
            ..
        })
    ));
    assert!(matches!(
        tokens.issue("a b"),
        Err(IssueError::BadRunnerName)
    ));
    assert!(matches!(tokens.issue(""), Err(IssueError::BadRunnerName)));
}

#[test]
fn revoked_tokens_are_refused() {
    let tokens = OneTimeTokens::new();
    let a = tokens.issue(A).unwrap();
    let again = tokens.issue(A).unwrap();
    let b = tokens.issue(B).unwrap();
    assert!(tokens.revoke(A).unwrap());
    assert!(!tokens.revoke(A).unwrap(), "nothing left to revoke");
    assert_eq!(tokens.consume(&a, Some(A)), Err(Refusal::Unknown));
    assert_eq!(tokens.consume(&again, Some(A)), Err(Refusal::Unknown));
    assert_eq!(
        tokens.consume(&b, Some(B)),
        Ok(()),
        "other runners keep theirs"
    );
}

#[test]
fn tokens_expire_after_their_ttl() {
    let tokens = OneTimeTokens::new().with_ttl(Duration::from_secs(60));
    let a = tokens.issue_at(A, 1_000).unwrap();
    let b = tokens.issue_at(B, 1_000).unwrap();
    assert_eq!(tokens.consume_at(&a, Some(A), 1_059), Ok(()));
    assert_eq!(
        tokens.consume_at(&b, Some(B), 1_060),
        Err(Refusal::Expired { runner: B.into() })
    );
    // Expired tokens are dropped when a token is issued or used.
    tokens.issue_at(A, 1_000).unwrap();
    tokens.issue_at(B, 2_000).unwrap();
    assert_eq!(tokens.outstanding(), 1);
}

#[test]
fn oldest_tokens_are_dropped_beyond_the_cap() {
    let tokens = OneTimeTokens::new();
    let first = tokens.issue("first").unwrap();
    for i in 0..MAX_OUTSTANDING {
        tokens.issue(&format!("r{i}")).unwrap();
    }
    assert_eq!(tokens.outstanding(), MAX_OUTSTANDING);
    assert_eq!(tokens.consume(&first, Some("first")), Err(Refusal::Unknown));
}

#[test]
fn persistent_tokens_survive_a_restart_with_runner_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("one-time-tokens"));
    let first = OneTimeTokens::persistent(file.clone())
        .unwrap()
        .with_ttl(Duration::from_secs(60));
    let idle = first.issue_at(A, 1_000).unwrap();
    let used = first.issue_at(B, 1_000).unwrap();
    assert_eq!(first.consume_at(&used, Some(B), 1_001), Ok(()));
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(!text.contains(&idle), "only digests are stored");
    drop(first);
    let restarted = OneTimeTokens::persistent(file.clone()).unwrap();
    assert_eq!(restarted.outstanding(), 1);
    assert_eq!(
        restarted.consume_at(&used, Some(B), 1_002),
        Err(Refusal::Unknown)
    );
    assert!(
        matches!(
            restarted.consume_at(&idle, Some(B), 1_002),
            Err(Refusal::OtherRunner { .. })
        ),
        "the runner name is kept"
    );
    let restarted = OneTimeTokens::persistent(file.clone())
        .unwrap()
        .with_ttl(Duration::from_secs(60));
    assert_eq!(restarted.outstanding(), 0, "the misuse was stored");
    let idle = restarted.issue_at(A, 1_000).unwrap();
    let again = OneTimeTokens::persistent(file).unwrap();
    assert_eq!(
        again.consume_at(&idle, Some(A), 1_060),
        Err(Refusal::Expired { runner: A.into() }),
        "the expiry is kept"
    );
}

#[test]
fn an_unwritable_file_refuses_instead_of_forgetting() {
    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("sub/one-time-tokens"));
    let tokens = OneTimeTokens::persistent(file).unwrap();
    // Its directory becomes a plain file: nothing can be written there any more.
    std::fs::write(dir.path().join("sub"), "").unwrap();
    assert!(
        tokens.issue(A).is_err(),
        "no token handed out unless stored"
    );
    assert_eq!(tokens.outstanding(), 0);
}

#[test]
fn charm_token_matches_only_itself() {
    let t = CharmToken::new("s3cret");
    assert!(t.matches("s3cret"));
    assert!(!t.matches("s3cre"));
    assert!(!t.matches(""));
}
