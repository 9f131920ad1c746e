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
/// Returns the pull requests' numbers: `[feature, approved]`.
pub fn fork_pull_requests(sim: &Sim, repo: &str) -> [u64; 2] {
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
    numbers
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
    queue_fork_event_job(sim, repo, labels, "pull_request", head, sha, marker)
}

/// The event payload GitHub sends with `event_name` about the fork's pull request
/// `number` (from `head` at `sha`): the pull request itself for the `pull_request*`
/// events (with the review or comment they add), only the issue's `pull_request` link
/// for `issue_comment`.
pub fn fork_event(event_name: &str, repo: &str, number: u64, head: &str, sha: &str) -> Value {
    let pull_request = json!({
        "number": number,
        "head": {"ref": head, "sha": sha, "repo": {"full_name": FORK}},
        "base": {"ref": "main", "repo": {"full_name": repo}}});
    let url = format!("https://api.github.com/repos/{repo}/pulls/{number}");
    match event_name {
        "issue_comment" => json!({"action": "created",
            "issue": {"number": number, "pull_request": {"url": url}},
            "comment": {"body": "looks good", "user": {"login": "mallory"}}}),
        "pull_request_review" => json!({"action": "submitted", "number": number,
            "pull_request": pull_request,
            "review": {"state": "commented", "user": {"login": "mallory"}}}),
        "pull_request_review_comment" => json!({"action": "created", "number": number,
            "pull_request": pull_request,
            "comment": {"body": "nit", "user": {"login": "mallory"}}}),
        _ => json!({"action": "synchronize", "number": number, "pull_request": pull_request}),
    }
}

/// Queues a job of `event_name` about the fork's pull request from `head` at `sha`.
pub fn queue_fork_event_job(
    sim: &Sim,
    repo: &str,
    labels: &[&str],
    event_name: &str,
    head: &str,
    sha: &str,
    marker: &str,
) -> u64 {
    let number = fork_pull_number(sim, repo, head);
    let event = fork_event(event_name, repo, number, head, sha);
    let job: Value = sim.post(
        "/_sim/jobs",
        json!({"repository": repo, "labels": labels, "event_name": event_name,
               "event": event, "steps": [marker_step(sim, marker)]}),
    );
    job["id"].as_u64().unwrap()
}

/// The number of the fork's open pull request from `head` (1 when there is none).
fn fork_pull_number(sim: &Sim, repo: &str, head: &str) -> u64 {
    let pulls = ureq::get(&format!("{}/repos/{repo}/pulls?state=open", sim.url))
        .set("Authorization", &format!("Bearer {PAT}"))
        .call()
        .ok()
        .and_then(|r| r.into_json::<Value>().ok())
        .unwrap_or_default();
    pulls
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["head"]["ref"] == json!(head))
        .and_then(|p| p["number"].as_u64())
        .unwrap_or(1)
}
