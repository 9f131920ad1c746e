//! The policy's `RepoApi` on the shared GitHub client against the GitHub simulator
//! (root and `/api/v3` bases): every read, branch names with a slash, `Link`
//! pagination past 100 collaborators and comments, 404, bad token and rate limits.

mod policy_support;

use github_sim::SimServer;
use policy_service::checks::{check, CheckRequest, Outcome, PullRequestInput, RepositoryEvent};
use policy_service::document::Policy;
use policy_service::github::{ApiError, Permission, RepoApi, RepoName};
use policy_support::sim_repo::{self, admin, client, PAT};
use serde_json::json;

const SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn repo() -> RepoName {
    RepoName::parse("canonical/app").unwrap()
}

/// canonical/app: `main` protected (reviews, no bypass), `release/1.0` protected with
/// a bypass, `dev` unprotected; 250 outside readers and one writer on the last page;
/// a fork's pull request #1 whose approval is the 232nd comment.
fn world() -> SimServer {
    let sim = sim_repo::start();
    let app = "canonical/app";
    sim_repo::compliant(&sim, app);
    sim_repo::branch(
        &sim,
        app,
        "release/1.0",
        sim_repo::reviews(&["boss"], &[], &[]),
    );
    sim_repo::branch(&sim, app, "dev", json!(null));
    let mut people: Vec<(String, &str)> = (0..250)
        .map(|i| (format!("reader{i:03}"), "read"))
        .collect();
    people.push(("zz-late-writer".into(), "write"));
    let people: Vec<(&str, &str)> = people.iter().map(|(l, r)| (l.as_str(), *r)).collect();
    sim_repo::outside_collaborators(&sim, app, &people);
    sim_repo::roles(
        &sim,
        app,
        &[("maint", "admin"), ("reader", "read"), ("outsider", "none")],
    );
    let number = sim_repo::pull(&sim, app, "alice/app", "fix", SHA, "main");
    let mut list: Vec<(&str, String)> = (0..230)
        .map(|i| ("reader", format!("comment {i}")))
        .collect();
    list.push((
        "maint",
        format!("> /canonical/self-hosted-runners/run-workflows {SHA}"),
    ));
    list.push((
        "maint",
        format!("/canonical/self-hosted-runners/run-workflows {SHA}"),
    ));
    sim_repo::comments(&sim, app, number, &list);
    sim
}

#[test]
fn reads_and_pages() {
    let sim = world();
    for base in [sim.url.clone(), format!("{}/api/v3", sim.url)] {
        admin(&sim, "DELETE", "/_sim/counters", json!(null));
        let gh = client(&base, PAT);
        assert_eq!(gh.repository(&repo()).unwrap().default_branch, "main");
        assert!(gh.branch(&repo(), "main").unwrap().protected);
        assert!(!gh.branch(&repo(), "dev").unwrap().protected);
        assert!(matches!(
            gh.branch(&repo(), "nope"),
            Err(ApiError::NotFound(_))
        ));
        assert!(
            gh.branch(&repo(), "release/1.0").unwrap().protected,
            "a branch name with a slash is one segment"
        );
        let main = gh.branch_protection(&repo(), "main").unwrap().unwrap();
        let reviews = main.required_pull_request_reviews.unwrap();
        assert!(reviews.bypass_pull_request_allowances.unwrap().is_empty());
        assert_eq!(gh.branch_protection(&repo(), "dev").unwrap(), None);
        assert!(
            matches!(
                gh.branch_protection(&repo(), "nope"),
                Err(ApiError::NotFound(_))
            ),
            "a missing branch is not an unprotected one"
        );

        let outside = gh.outside_collaborators(&repo()).unwrap();
        assert_eq!(outside.len(), 251);
        assert_eq!(outside.last().unwrap().login, "zz-late-writer");
        assert_eq!(outside.last().unwrap().role_name, "write");
        let pulls = gh.open_pull_requests(&repo()).unwrap();
        assert_eq!(pulls.len(), 1);
        assert_eq!(pulls[0].head.repo.as_ref().unwrap().full_name, "alice/app");
        let comments = gh.issue_comments(&repo(), pulls[0].number).unwrap();
        assert_eq!(comments.len(), 232);

        let permission = |user| gh.collaborator_permission(&repo(), user).unwrap();
        assert_eq!(permission("maint"), Permission::Admin);
        assert_eq!(permission("canonical"), Permission::Admin, "the owner");
        assert_eq!(permission("reader"), Permission::Read);
        assert_eq!(permission("reader007"), Permission::Read);
        assert_eq!(permission("zz-late-writer"), Permission::Write);
        assert_eq!(permission("outsider"), Permission::None);
        assert_eq!(permission("ghost"), Permission::None, "unknown user: 404");
        let missing = RepoName::parse("canonical/none").unwrap();
        assert!(matches!(
            gh.repository(&missing),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            gh.collaborator_permission(&missing, "maint"),
            Err(ApiError::NotFound(_))
        ));
        gh.check_token().unwrap();

        let counted = sim_repo::counters(&sim);
        assert_eq!(
            counted["GET /repos/:owner/:repo/collaborators"], 3,
            "{counted}"
        );
        assert_eq!(
            counted["GET /repos/:owner/:repo/issues/:issue_number/comments"], 3,
            "{counted}"
        );
    }
}

#[test]
fn checks_through_the_real_client() {
    let sim = world();
    let gh = client(&sim.url, PAT);
    let push = CheckRequest::Repository {
        event: RepositoryEvent::Push,
        repository: repo(),
    };
    match check(&gh, &Policy::default(), &push) {
        Outcome::Fail(t) => assert!(t.contains("zz-late-writer (write)"), "{t}"),
        other => panic!("{other:?}"),
    }
    let mut policy = Policy::default();
    policy.pull_request.collaborators = false;
    let pr = |branch: &str| {
        CheckRequest::PullRequest(PullRequestInput {
            repository: repo(),
            source_repository: RepoName::parse("alice/app").unwrap(),
            target_branch: branch.into(),
            source_branch: "fix".into(),
            commit_sha: SHA.into(),
        })
    };
    // The approval is the 232nd comment, on the third page; the quoted one before it is ignored.
    assert_eq!(check(&gh, &policy, &pr("main")), Outcome::Pass);
    match check(&gh, &policy, &pr("release/1.0")) {
        Outcome::Fail(t) => assert!(t.contains("users boss can bypass"), "{t}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_map_to_kinds() {
    let sim = world();
    let bad = client(&sim.url, "wrong-token-value");
    match bad.check_token() {
        Err(ApiError::Other(t)) => assert!(
            t.contains("token rejected") && !t.contains("wrong-token"),
            "{t}"
        ),
        other => panic!("{other:?}"),
    }
    let gh = client(&sim.url, PAT);
    // A secondary limit with a retry-after longer than the client may wait.
    admin(
        &sim,
        "POST",
        "/_sim/faults",
        json!({"route": "GET /repos/:owner/:repo", "count": 1, "status": 403,
               "retry_after": 120, "message": "You have exceeded a secondary rate limit"}),
    );
    match gh.repository(&repo()) {
        Err(ApiError::RateLimited(t)) => assert!(t.contains("120"), "{t}"),
        other => panic!("{other:?}"),
    }
    // The primary limit, exhausted for an hour.
    admin(
        &sim,
        "POST",
        "/_sim/rate-limit",
        json!({"remaining": 0, "reset_in_secs": 3600}),
    );
    assert!(matches!(
        gh.repository(&repo()),
        Err(ApiError::RateLimited(_))
    ));
    assert!(matches!(
        gh.outside_collaborators(&repo()),
        Err(ApiError::RateLimited(_))
    ));
    admin(&sim, "POST", "/_sim/rate-limit", json!({"remaining": 5000}));
    // A server error that outlasts the retries.
    admin(
        &sim,
        "POST",
        "/_sim/faults",
        json!({"route": "GET /repos/:owner/:repo/pulls", "count": 10, "status": 502}),
    );
    assert!(matches!(
        gh.open_pull_requests(&repo()),
        Err(ApiError::Other(_))
    ));
    admin(&sim, "DELETE", "/_sim/faults", json!(null));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    match client(&format!("http://{closed}"), PAT).repository(&repo()) {
        Err(ApiError::Other(t)) => assert!(!t.contains(PAT), "{t}"),
        other => panic!("{other:?}"),
    }
}
