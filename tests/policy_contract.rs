//! Every repository read of the policy checks against GitHub's OpenAPI description:
//! the shared client talks to Prism (`prism proxy --errors`), Prism to the simulator,
//! and Prism must report no violation, for successes, the declared 404s and pages
//! followed through `Link`. Skipped when Prism is missing unless CI=true.

mod policy_support;
mod prism;

use github_runner::policy::checks::{
    check, CheckRequest, Outcome, PullRequestInput, RepositoryEvent,
};
use github_runner::policy::document::Policy;
use github_runner::policy::github::{ApiError, Permission, RepoApi, RepoName};
use policy_support::sim_repo::{self, client, PAT};
use prism::{installed, Prism};
use serde_json::json;

const SHA: &str = "00112233445566778899aabbccddeeff00112233";

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

#[test]
fn policy_reads_pass_prism_without_violations() {
    let Some((bin, spec)) = installed() else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "Prism missing in CI"
        );
        eprintln!("skipping: Prism not installed (run scripts/prism-setup.sh)");
        return;
    };
    let sim = sim_repo::start();
    let app = "canonical/app";
    sim_repo::compliant(&sim, app);
    sim_repo::branch(
        &sim,
        app,
        "release/1.0",
        sim_repo::reviews(&["boss"], &["admins"], &["deploy-bot"]),
    );
    sim_repo::branch(&sim, app, "dev", json!(null));
    let people: Vec<String> = (0..120).map(|i| format!("reader{i:03}")).collect();
    let list: Vec<(&str, &str)> = people.iter().map(|p| (p.as_str(), "read")).collect();
    sim_repo::outside_collaborators(&sim, app, &list);
    sim_repo::roles(&sim, app, &[("maint", "maintain")]);
    let number = sim_repo::pull(&sim, app, "alice/app", "fix", SHA, "main");
    sim_repo::pull(&sim, app, "canonical/app", "topic", SHA, "dev");
    let mut comments: Vec<(&str, String)> =
        (0..110).map(|i| ("reader000", format!("c{i}"))).collect();
    comments.push((
        "maint",
        format!("/canonical/self-hosted-runners/run-workflows {SHA}"),
    ));
    sim_repo::comments(&sim, app, number, &comments);

    let prism = Prism::start(&bin, &spec, &sim.url);
    let gh = client(&prism.url, PAT);
    let r = repo(app);
    assert_eq!(gh.repository(&r).unwrap().default_branch, "main");
    assert!(gh.branch(&r, "main").unwrap().protected);
    assert!(!gh.branch(&r, "dev").unwrap().protected);
    assert!(gh.branch(&r, "release/1.0").unwrap().protected);
    assert!(matches!(gh.branch(&r, "gone"), Err(ApiError::NotFound(_))));
    let bypass = gh
        .branch_protection(&r, "release/1.0")
        .unwrap()
        .unwrap()
        .required_pull_request_reviews
        .unwrap()
        .bypass_pull_request_allowances
        .unwrap();
    assert_eq!(
        (
            bypass.users.len(),
            bypass.teams[0].slug.as_str(),
            bypass.apps[0].slug.as_str()
        ),
        (1, "admins", "deploy-bot")
    );
    assert!(gh.branch_protection(&r, "main").unwrap().is_some());
    assert_eq!(gh.branch_protection(&r, "dev").unwrap(), None);
    assert_eq!(gh.outside_collaborators(&r).unwrap().len(), 120);
    assert_eq!(
        gh.collaborator_permission(&r, "maint").unwrap(),
        Permission::Write
    );
    assert_eq!(
        gh.collaborator_permission(&r, "reader001").unwrap(),
        Permission::Read
    );
    assert_eq!(
        gh.collaborator_permission(&r, "ghost").unwrap(),
        Permission::None
    );
    assert_eq!(gh.open_pull_requests(&r).unwrap().len(), 2);
    assert_eq!(gh.issue_comments(&r, number).unwrap().len(), 111);
    assert!(matches!(
        gh.issue_comments(&r, 999),
        Err(ApiError::NotFound(_))
    ));
    assert!(matches!(
        gh.repository(&repo("canonical/none")),
        Err(ApiError::NotFound(_))
    ));
    gh.check_token().unwrap();

    // The checks' own call sequences, pass and fail.
    let push = CheckRequest::Repository {
        event: RepositoryEvent::Push,
        repository: r.clone(),
    };
    assert_eq!(check(&gh, &Policy::default(), &push), Outcome::Pass);
    let pr = |source: &str, target: &str| {
        CheckRequest::PullRequest(PullRequestInput {
            repository: r.clone(),
            source_repository: repo(source),
            target_branch: target.into(),
            source_branch: "fix".into(),
            commit_sha: SHA.into(),
        })
    };
    assert_eq!(
        check(&gh, &Policy::default(), &pr("alice/app", "main")),
        Outcome::Pass
    );
    assert!(matches!(
        check(&gh, &Policy::default(), &pr("alice/app", "dev")),
        Outcome::Fail(_)
    ));

    let log = prism.log_text();
    let forwarded = log.matches("Forwarding").count() as u64;
    assert!(
        forwarded >= gh.request_count(),
        "Prism saw {forwarded} of {} calls:\n{log}",
        gh.request_count()
    );
    let violations = prism.violations();
    assert!(
        violations.is_empty(),
        "Prism reported violations:\n{}",
        violations.join("\n")
    );
}
