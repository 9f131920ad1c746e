//! What the end-to-end policy test drives: a repository with two pull requests from a
//! fork (one approved in a maintainer's comment, one not), and jobs whose one step
//! leaves a mark outside the instance, so a test can tell whether any step ran.

use serde_json::{json, Value};

use super::{Sim, PAT};

pub const FORK: &str = "mallory/widgets";
pub const UNAPPROVED_SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";
pub const APPROVED_SHA: &str = "0123456789abcdef0123456789abcdef89abcdef";

/// A step that leaves a mark outside the instance: it creates an org in the simulator.
pub fn marker_step(sim: &Sim, marker: &str) -> String {
    format!("curl -fsS --noproxy '*' -X POST -H 'Content-Type: application/json' -d '{{\"name\":\"{marker}\"}}' {}/_sim/orgs", sim.url)
}

pub fn marker_exists(sim: &Sim, marker: &str) -> bool {
    ureq::get(&format!("{}/orgs/{marker}/actions/runner-groups", sim.url))
        .set("Authorization", &format!("Bearer {PAT}"))
        .call()
        .is_ok()
}

/// `repo` as the policy wants it (main protected with required reviews, no outside
/// collaborators) with a maintainer, and the fork's pull requests: branch `approved`
/// at [`APPROVED_SHA`], approved by the maintainer in a comment, and branch `feature`
/// at [`UNAPPROVED_SHA`], which nobody approved.
pub fn fork_pull_requests(sim: &Sim, repo: &str) {
    sim.post(
        &format!("/_sim/repos/{repo}/branches"),
        json!({"name": "main", "protection": {"required_reviews": {}}}),
    );
    ureq::put(&format!("{}/_sim/repos/{repo}/roles", sim.url))
        .send_json(json!([{"login": "maint", "role": "write"}]))
        .unwrap();
    let numbers = [("feature", UNAPPROVED_SHA), ("approved", APPROVED_SHA)].map(|(head, sha)| {
        let pull = sim.post(
            &format!("/_sim/repos/{repo}/pulls"),
            json!({"head_ref": head, "head_sha": sha, "head_repo": FORK, "base_ref": "main", "user": "mallory"}),
        );
        pull["number"].as_u64().unwrap()
    });
    let approval =
        format!("Read it through: `/canonical/self-hosted-runners/run-workflows {APPROVED_SHA}`.");
    sim.post(
        &format!("/_sim/repos/{repo}/issues/{}/comments", numbers[1]),
        json!([{"user": "maint", "body": approval}]),
    );
}

/// Queues a pull_request job into `repo` from the fork's `head` branch at `sha`, whose
/// one step would leave `marker`; the job's id.
pub fn queue_fork_job(
    sim: &Sim,
    repo: &str,
    labels: &[&str],
    head: &str,
    sha: &str,
    marker: &str,
) -> u64 {
    let event = json!({"pull_request": {
        "head": {"ref": head, "sha": sha, "repo": {"full_name": FORK}},
        "base": {"ref": "main", "repo": {"full_name": repo}}}});
    let job: Value = sim.post(
        "/_sim/jobs",
        json!({"repository": repo, "labels": labels, "event_name": "pull_request",
               "event": event, "steps": [marker_step(sim, marker)]}),
    );
    job["id"].as_u64().unwrap()
}
