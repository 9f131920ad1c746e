//! The check latency with the real GitHub client against the GitHub simulator on
//! loopback (for BENCHMARKS.md): the heaviest paths, with lists long enough to page.
//! Run in a release build: `cargo test --release --test policy_bench -- --nocapture`.

use std::sync::Arc;

use crate::policy_bench::{measure_check_latency, BenchError, LatencyReport};
use ghr_types::Token;
use github_client::GithubClient;
use github_sim::repo_state::{BranchData, CommentData, Protection, PullData, RequiredReviews};
use github_sim::{SimConfig, SimServer};

const PAT: &str = "ghp_benchmarkToken0000000000001";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// One measured scenario.
pub struct Scenario {
    pub name: &'static str,
    pub report: LatencyReport,
}

/// canonical/app: `main` protected with reviews; `outside` read-only outside
/// collaborators; a fork's pull request from alice/app approved by `maint` in the last
/// of `comments` comments.
fn world(server: &SimServer, outside: usize, comments: usize) {
    let mut world = server.sim.lock();
    let data = world.repo_data("canonical/app", true).expect("created");
    let mut main = BranchData::new("main");
    main.protection = Some(Protection {
        required_reviews: Some(RequiredReviews {
            required_approving_review_count: 1,
            bypass: Default::default(),
        }),
    });
    data.branches.insert("main".into(), main);
    data.outside_collaborators = (0..outside)
        .map(|i| (format!("reader{i:04}"), "read".to_string()))
        .collect();
    data.roles.insert("maint".into(), "write".into());
    data.pulls.push(PullData {
        number: 1,
        state: "open".into(),
        head_ref: "fix".into(),
        head_sha: SHA.into(),
        head_repo: Some("alice/app".into()),
        base_ref: "main".into(),
        user: None,
    });
    let mut list: Vec<CommentData> = (0..comments.saturating_sub(1))
        .map(|i| CommentData {
            id: i as u64 + 1,
            user: "reader0000".into(),
            body: format!("comment {i}"),
        })
        .collect();
    list.push(CommentData {
        id: comments as u64,
        user: "maint".into(),
        body: format!("/canonical/self-hosted-runners/run-workflows {SHA}"),
    });
    data.comments.insert(1, list);
}

/// Measures `samples` checks per scenario: a push (collaborators, `outside` entries),
/// and a fork's pull request approved by comment (every rule; `comments` comments).
pub fn measure_with_simulator(
    samples: usize,
    outside: usize,
    comments: usize,
) -> Result<Vec<Scenario>, BenchError> {
    let server = SimServer::start(SimConfig::new(PAT), "127.0.0.1:0".parse().expect("addr"))?;
    world(&server, outside, comments);
    let client = GithubClient::with_options(
        &server.url,
        Token::new(PAT),
        &ghr_types::proxy::ProxyConfig::default(),
        policy_service::client_options(),
    )?;
    let api = Arc::new(client);
    let push = r#"{"repository_name": "canonical/app"}"#;
    let pr = format!(
        r#"{{"repository_name": "canonical/app", "source_repository_name": "alice/app",
            "target_branch_name": "main", "source_branch_name": "fix", "commit_sha": "{SHA}"}}"#
    );
    Ok(vec![
        Scenario {
            name: "push",
            report: measure_check_latency(api.clone(), "/push/check-run", push, 204, samples)?,
        },
        Scenario {
            name: "fork pull_request approved by comment",
            report: measure_check_latency(api, "/pull_request/check-run", &pr, 204, samples)?,
        },
    ])
}
