//! Table tests of every rule's pass and fail cases against the in-memory fake.

use super::*;
use crate::document::Policy;
use crate::fake::{bypass, collaborator, comment, pull, reviews_required, FakeRepo, FakeRepoApi};
use crate::github::BranchProtection;

const REPO: &str = "canonical/app";
const FORK: &str = "alice/app";
/// The head commit of every pull request here (also the approvals tests').
pub(super) const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn pr(source: &str, target_branch: &str) -> CheckRequest {
    CheckRequest::PullRequest(PullRequestInput {
        repository: repo(REPO),
        source_repository: repo(source),
        target_branch: target_branch.into(),
        source_branch: "feature".into(),
        commit_sha: SHA.into(),
    })
}

fn push() -> CheckRequest {
    CheckRequest::Repository {
        event: RepositoryEvent::Push,
        repository: repo(REPO),
    }
}

/// The fork's pull request into main, open on GitHub.
fn with_fork_pull(mut r: FakeRepo) -> FakeRepo {
    r.pulls.push(pull(7, FORK, "feature", SHA, REPO, "main"));
    r
}

fn approve(by: &str, body: &str) -> impl Fn(FakeRepo) -> FakeRepo {
    let (by, body) = (by.to_string(), body.to_string());
    move |mut r| {
        r = with_fork_pull(r);
        r.comments.entry(7).or_default().push(comment(&by, &body));
        r.permissions.insert("maint".into(), Permission::Write);
        r.permissions.insert("reader".into(), Permission::Read);
        r
    }
}

fn forks_disallowed() -> Policy {
    let mut p = Policy::default();
    p.pull_request.disallow_fork = true;
    p
}

fn only(rule: &str) -> Policy {
    let mut p = Policy::default();
    p.pull_request.target_branch_protection = rule == "target_branch_protection";
    p.pull_request.collaborators = rule == "collaborators";
    p.pull_request.disallow_fork = rule == "disallow_fork";
    p.pull_request.execute_job = rule == "execute_job";
    p
}

enum Want {
    Pass,
    Fail(&'static str),
}

type Setup = Box<dyn Fn(FakeRepo) -> FakeRepo>;

fn run_table(cases: Vec<(&str, Setup, Policy, CheckRequest, Want)>) {
    for (name, setup, policy, request, want) in cases {
        let api = FakeRepoApi::new().with_repo(REPO, setup(FakeRepo::compliant("main")));
        let got = check(&api, &policy, &request);
        match (&want, &got) {
            (Want::Pass, Outcome::Pass) => {}
            (Want::Fail(needle), Outcome::Fail(text)) if text.contains(needle) => {}
            _ => panic!("case {name:?}: got {got:?}"),
        }
    }
}

fn protect(branch: &'static str, protection: Option<BranchProtection>) -> Setup {
    Box::new(move |mut r: FakeRepo| {
        r.branches.insert(branch.into(), protection.clone());
        r
    })
}

fn same() -> Setup {
    Box::new(|r| r)
}

#[test]
fn target_branch_protection() {
    let no_reviews = Some(BranchProtection {
        required_pull_request_reviews: None,
    });
    let rule = only("target_branch_protection");
    run_table(vec![
        ("compliant default branch", same(), rule, pr(REPO, "main"), Want::Pass),
        ("default branch unprotected", protect("main", None), rule, pr(REPO, "main"), Want::Fail("target_branch_protection: target branch \"main\" of canonical/app is not protected")),
        ("missing branch", same(), rule, pr(REPO, "nope"), Want::Fail("target branch \"nope\" not found")),
        ("other branch unprotected", protect("dev", None), rule, pr(REPO, "dev"), Want::Fail("is not protected")),
        ("other branch protected without reviews, same repo", protect("dev", no_reviews.clone()), rule, pr(REPO, "dev"), Want::Pass),
        ("other branch protected without reviews, fork", protect("dev", no_reviews.clone()), rule, pr(FORK, "dev"), Want::Fail("does not require pull request reviews")),
        ("default branch without reviews", protect("main", no_reviews), rule, pr(REPO, "main"), Want::Fail("does not require pull request reviews")),
        ("bypass by user", protect("main", Some(reviews_required(bypass(&["bob"], &[], &[])))), rule, pr(REPO, "main"), Want::Fail("users bob can bypass")),
        ("bypass by team", protect("main", Some(reviews_required(bypass(&[], &["core"], &[])))), rule, pr(REPO, "main"), Want::Fail("teams core can bypass")),
        ("bypass by app", protect("main", Some(reviews_required(bypass(&[], &[], &["bot"])))), rule, pr(REPO, "main"), Want::Fail("apps bot can bypass")),
        ("bypass on fork target", protect("dev", Some(reviews_required(bypass(&["x", "y"], &["t"], &[])))), rule, pr(FORK, "dev"), Want::Fail("users x, y; teams t can bypass")),
        ("bypass on other branch, same repo", protect("dev", Some(reviews_required(bypass(&["x"], &[], &[])))), rule, pr(REPO, "dev"), Want::Pass),
        ("disabled", protect("main", None), Policy { pull_request: crate::document::PullRequestPolicy { target_branch_protection: false, ..rule.pull_request }, ..rule }, pr(REPO, "main"), Want::Pass),
    ]);
}

fn outside(list: &'static [(&'static str, &'static str)]) -> Setup {
    Box::new(move |mut r: FakeRepo| {
        r.outside_collaborators = list.iter().map(|(l, role)| collaborator(l, role)).collect();
        r
    })
}

#[test]
fn collaborators() {
    let rule = only("collaborators");
    let push_off = Policy {
        push_collaborators: false,
        ..Policy::default()
    };
    let event = |event| CheckRequest::Repository {
        event,
        repository: repo(REPO),
    };
    run_table(vec![
        ("none", same(), rule, pr(REPO, "main"), Want::Pass),
        ("read only", outside(&[("r1", "read"), ("r2", "read")]), rule, pr(REPO, "main"), Want::Pass),
        ("write", outside(&[("r1", "read"), ("carol", "write")]), rule, pr(REPO, "main"), Want::Fail("collaborators: outside collaborators with more than read permission on canonical/app: carol (write)")),
        ("triage", outside(&[("t", "triage")]), rule, pr(REPO, "main"), Want::Fail("t (triage)")),
        ("custom role", outside(&[("c", "deployer")]), rule, pr(REPO, "main"), Want::Fail("c (deployer)")),
        ("admin and maintain", outside(&[("a", "admin"), ("m", "maintain")]), rule, pr(REPO, "main"), Want::Fail("a (admin), m (maintain)")),
        ("push pass", outside(&[("r", "read")]), Policy::default(), push(), Want::Pass),
        ("push fail", outside(&[("w", "write")]), Policy::default(), push(), Want::Fail("w (write)")),
        ("schedule fail", outside(&[("w", "write")]), Policy::default(), event(RepositoryEvent::Schedule), Want::Fail("w (write)")),
        ("workflow_dispatch fail", outside(&[("w", "write")]), Policy::default(), event(RepositoryEvent::WorkflowDispatch), Want::Fail("w (write)")),
        ("push disabled", outside(&[("w", "write")]), push_off, push(), Want::Pass),
        ("schedule still on", outside(&[("w", "write")]), push_off, event(RepositoryEvent::Schedule), Want::Fail("w (write)")),
    ]);
}

fn owner_permission(p: Permission) -> Setup {
    Box::new(move |mut r: FakeRepo| {
        r.permissions.insert("alice".into(), p);
        r
    })
}

#[test]
fn disallow_fork() {
    let rule = only("disallow_fork");
    run_table(vec![
        ("same repository", same(), rule, pr(REPO, "main"), Want::Pass),
        ("same repository, other case", same(), rule, pr("Canonical/App", "main"), Want::Pass),
        ("fork, owner without permission", same(), rule, pr(FORK, "main"), Want::Fail("disallow_fork: the pull request comes from fork alice/app whose owner alice has no write permission")),
        ("fork, owner read", owner_permission(Permission::Read), rule, pr(FORK, "main"), Want::Fail("disallow_fork")),
        ("fork, owner write", owner_permission(Permission::Write), rule, pr(FORK, "main"), Want::Pass),
        ("fork, owner admin", owner_permission(Permission::Admin), rule, pr(FORK, "main"), Want::Pass),
        ("off by default: stopped by execute_job instead", same(), Policy::default(), pr(FORK, "main"), Want::Fail("execute_job")),
        ("enabled: stops before execute_job", same(), forks_disallowed(), pr(FORK, "main"), Want::Fail("disallow_fork")),
    ]);
}

#[test]
fn execute_job() {
    let rule = only("execute_job");
    let approval = format!("LGTM\n{RUN_WORKFLOWS_COMMAND} {SHA}\n");
    let a = |by: &str, body: &str| -> Setup { Box::new(approve(by, body)) };
    let mut off = Policy::default();
    off.pull_request.execute_job = false;
    run_table(vec![
        ("same repository", same(), rule, pr(REPO, "main"), Want::Pass),
        ("owner write", owner_permission(Permission::Write), rule, pr(FORK, "main"), Want::Pass),
        ("owner admin", owner_permission(Permission::Admin), rule, pr(FORK, "main"), Want::Pass),
        ("no open pull request", same(), rule, pr(FORK, "main"), Want::Fail("execute_job: no open pull request from alice/app:feature to main")),
        ("pull request into another branch", same(), rule, pr(FORK, "dev"), Want::Fail("no open pull request")),
        ("no comment", Box::new(with_fork_pull), rule, pr(FORK, "main"), Want::Fail("execute_job: pull request #7 comes from fork alice/app and commit 0123456789abcdef0123456789abcdef01234567 is not approved")),
        ("approved by maintainer", a("maint", &approval), rule, pr(FORK, "main"), Want::Pass),
        ("approved, upper-case sha mid text", a("maint", &format!("ok\r\n  {RUN_WORKFLOWS_COMMAND} {} thanks", SHA.to_uppercase())), rule, pr(FORK, "main"), Want::Pass),
        ("approved by reader", a("reader", &approval), rule, pr(FORK, "main"), Want::Fail("is not approved")),
        ("approved by stranger", a("nobody", &approval), rule, pr(FORK, "main"), Want::Fail("is not approved")),
        ("quoted approval", a("maint", &format!("> {RUN_WORKFLOWS_COMMAND} {SHA}\nhm")), rule, pr(FORK, "main"), Want::Fail("is not approved")),
        ("indented quote", a("maint", &format!("   >{RUN_WORKFLOWS_COMMAND} {SHA}")), rule, pr(FORK, "main"), Want::Fail("is not approved")),
        ("other commit", a("maint", &format!("{RUN_WORKFLOWS_COMMAND} {}", "f".repeat(40))), rule, pr(FORK, "main"), Want::Fail("is not approved")),
        ("sha prefix only", a("maint", &format!("{RUN_WORKFLOWS_COMMAND} {}", &SHA[..12])), rule, pr(FORK, "main"), Want::Fail("is not approved")),
        ("command without sha", a("maint", RUN_WORKFLOWS_COMMAND), rule, pr(FORK, "main"), Want::Fail("is not approved")),
        ("disabled", same(), off, pr(FORK, "main"), Want::Pass),
    ]);
}

#[test]
fn approval_comment_needs_push_permission_and_finds_later_comments() {
    // Many comments, the approval last, from a maintainer: the scan reaches it.
    let mut r = with_fork_pull(FakeRepo::compliant("main"));
    let list = r.comments.entry(7).or_default();
    for i in 0..250 {
        list.push(comment("someone", &format!("comment {i}")));
    }
    list.push(comment("maint", &format!("{RUN_WORKFLOWS_COMMAND} {SHA}")));
    r.permissions.insert("maint".into(), Permission::Admin);
    let api = FakeRepoApi::new().with_repo(REPO, r);
    assert_eq!(
        check(&api, &only("execute_job"), &pr(FORK, "main")),
        Outcome::Pass
    );
}

#[test]
fn github_errors_map_to_outcomes() {
    let cases = [
        (
            ApiError::RateLimited("resets at 12:00".into()),
            "rate limit exceeded (resets at 12:00)",
            true,
        ),
        (
            ApiError::Other("502 Bad Gateway".into()),
            "GitHub API error: 502 Bad Gateway",
            true,
        ),
        (
            ApiError::NotFound("x".into()),
            "not set up correctly",
            false,
        ),
    ];
    for (error, needle, is_error) in cases {
        let api = FakeRepoApi::new().with_repo(REPO, FakeRepo::compliant("main"));
        api.fail_with(Some(error));
        for request in [pr(REPO, "main"), push()] {
            match check(&api, &Policy::default(), &request) {
                Outcome::Error(t) if is_error && t.contains(needle) => {}
                Outcome::Fail(t) if !is_error && t.contains(needle) => {}
                other => panic!("{needle}: {other:?}"),
            }
        }
    }
    // A repository the token cannot see: 403 naming the rule and the repository.
    let api = FakeRepoApi::new();
    match check(&api, &Policy::default(), &push()) {
        Outcome::Fail(t) => assert!(
            t.starts_with("collaborators: repository canonical/app not found"),
            "{t}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn permission_is_fetched_once_per_request() {
    let api = FakeRepoApi::new().with_repo(REPO, {
        let mut r = FakeRepo::compliant("main");
        r.permissions.insert("alice".into(), Permission::Write);
        r
    });
    let mut p = Policy::default();
    p.pull_request.disallow_fork = true;
    p.pull_request.target_branch_protection = false;
    p.pull_request.collaborators = false;
    assert_eq!(check(&api, &p, &pr(FORK, "main")), Outcome::Pass);
    assert_eq!(api.calls(), 1);
}

fn by_number(number: u64) -> CheckRequest {
    CheckRequest::PullRequestNumber {
        repository: repo(REPO),
        number,
    }
}

/// A comment on a pull request names it by number: the open pull request is looked up
/// and its head checked as for its own events.
#[test]
fn pull_request_by_number() {
    let deleted_fork: Setup = Box::new(|mut r: FakeRepo| {
        let mut p = pull(7, FORK, "feature", SHA, REPO, "main");
        p.head.repo = None;
        r.pulls.push(p);
        r
    });
    let approved =
        "/canonical/self-hosted-runners/run-workflows 0123456789abcdef0123456789abcdef01234567";
    run_table(vec![
        (
            "fork, unapproved",
            Box::new(with_fork_pull),
            Policy::default(),
            by_number(7),
            Want::Fail("execute_job: pull request #7 comes from fork alice/app"),
        ),
        (
            "fork, approved",
            Box::new(approve("maint", approved)),
            Policy::default(),
            by_number(7),
            Want::Pass,
        ),
        (
            "fork, disallowed",
            Box::new(with_fork_pull),
            forks_disallowed(),
            by_number(7),
            Want::Fail("disallow_fork"),
        ),
        (
            "not open",
            Box::new(with_fork_pull),
            Policy::default(),
            by_number(8),
            Want::Fail("pull request #8 of canonical/app is not open"),
        ),
        (
            "deleted fork",
            deleted_fork,
            Policy::default(),
            by_number(7),
            Want::Fail("is gone (a deleted fork)"),
        ),
    ]);
}

#[test]
fn default_refuses_events_that_carry_a_pull_request() {
    for event in [
        "pull_request",
        "pull_request_target",
        "pull_request_review",
        "pull_request_review_comment",
    ] {
        let refusal = default_refusal(event, false).unwrap_or_else(|| panic!("{event} passed"));
        assert!(
            refusal.starts_with("default: the ") && refusal.contains(event),
            "{refusal}"
        );
    }
    assert!(default_refusal("issue_comment", true).is_some());
    assert!(default_refusal("merge_group", true).is_some());
    for event in ["issue_comment", "release", "merge_group", "workflow_run"] {
        assert_eq!(default_refusal(event, false), None, "{event}");
    }
}
