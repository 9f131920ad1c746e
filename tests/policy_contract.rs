//! Every repository read of the policy checks against GitHub's OpenAPI description:
//! the shared client talks to Prism (`prism proxy --errors`), Prism to the simulator,
//! and Prism must report no violation, for successes, the declared 404s and pages
//! followed through `Link`. Skipped when Prism is missing unless CI=true (the 404s the
//! description does not declare are checked against the simulator alone).

mod policy_support;
mod prism;

use policy_service::checks::{check, CheckRequest, Outcome, PullRequestInput, RepositoryEvent};
use policy_service::document::Policy;
use policy_service::github::{ApiError, Permission, RepoApi, RepoName};
use policy_support::sim_repo::{self, client, PAT};
use prism::{installed, Prism};
use serde_json::json;

const SHA: &str = "00112233445566778899aabbccddeeff00112233";

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

/// GET .../protection/required_pull_request_reviews, read raw (the client reads the
/// whole protection): the rule's required reviews with their bypass list.
fn assert_required_reviews(prism: &str, app: &str) {
    let (status, release) = required_reviews(prism, app, "release/1.0");
    assert_eq!(status, 200, "{release}");
    let bypass = &release["bypass_pull_request_allowances"];
    assert_eq!(bypass["users"][0]["login"], json!("boss"), "{release}");
    assert_eq!(bypass["teams"][0]["slug"], json!("admins"), "{release}");
    assert_eq!(bypass["apps"][0]["slug"], json!("deploy-bot"), "{release}");
    assert_eq!(release["required_approving_review_count"], json!(1));
    let (status, main) = required_reviews(prism, app, "main");
    assert_eq!(status, 200, "{main}");
    assert_eq!(main["bypass_pull_request_allowances"]["users"], json!([]));
}

fn required_reviews(base: &str, app: &str, branch: &str) -> (u16, serde_json::Value) {
    let url = format!(
        "{base}/repos/{app}/branches/{}/protection/required_pull_request_reviews",
        branch.replace('/', "%2F")
    );
    let answer = ureq::get(&url)
        .set("Authorization", &format!("Bearer {PAT}"))
        .call();
    match answer {
        Ok(r) => (200, r.into_json().unwrap()),
        Err(ureq::Error::Status(status, r)) => (status, r.into_json().unwrap()),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// GitHub answers 404 when a branch has no rule or its rule requires no reviews, but
/// its description declares only 200 for this read, so Prism would call any 404 a
/// violation: these go to the simulator directly.
#[test]
fn required_reviews_are_not_found_without_a_rule_requiring_them() {
    let sim = sim_repo::start();
    let app = "canonical/app";
    sim_repo::compliant(&sim, app);
    sim_repo::branch(&sim, app, "dev", json!(null));
    sim_repo::branch(&sim, app, "guarded", json!({}));
    for base in [sim.url.clone(), format!("{}/api/v3", sim.url)] {
        assert_eq!(required_reviews(&base, app, "main").0, 200);
        for branch in ["dev", "guarded", "gone"] {
            let (status, body) = required_reviews(&base, app, branch);
            assert_eq!(status, 404, "{branch}: {body}");
        }
        assert_eq!(required_reviews(&base, "canonical/none", "main").0, 404);
    }
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
    assert_required_reviews(&prism.url, app);
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
