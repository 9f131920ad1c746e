//! Each rule's pass and fail cases through the real service, the shared GitHub client
//! and the GitHub simulator on loopback (issue 5, "Tests"), including pagination past
//! 100 outside collaborators and comments.

mod policy_support;

use std::sync::Arc;

use github_sim::SimServer;
use policy_support::sim_repo::{self, client, PAT};
use policy_support::{json, request, Reply, Service, CHARM_TOKEN};
use serde_json::json;

const APP: &str = "canonical/app";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const RUN: &str = "/canonical/self-hosted-runners/run-workflows";

/// The service over a fresh simulator holding a compliant canonical/app.
fn setup() -> (SimServer, Service) {
    let sim = sim_repo::start();
    sim_repo::compliant(&sim, APP);
    let service = Service::over(Arc::new(client(&sim.url, PAT)), None);
    (sim, service)
}

fn pr(s: &Service, source: &str, target: &str) -> Reply {
    let body = format!(
        r#"{{"repository_name": "{APP}", "source_repository_name": "{source}",
            "target_branch_name": "{target}", "source_branch_name": "fix", "commit_sha": "{SHA}"}}"#
    );
    request(
        s.url(),
        "POST",
        "/pull_request/check-run",
        Some(&s.one_time_token()),
        json(&body),
    )
}

fn event(s: &Service, name: &str) -> Reply {
    // The default check is for events without rules of their own, named in the body.
    let event_name = if name == "default" { "release" } else { name };
    let body = format!(r#"{{"repository_name": "{APP}", "event_name": "{event_name}"}}"#);
    request(
        s.url(),
        "POST",
        &format!("/{name}/check-run"),
        Some(&s.one_time_token()),
        json(&body),
    )
}

fn set_policy(s: &Service, document: &str) {
    let r = request(
        s.charm_url(),
        "POST",
        "/policy",
        Some(CHARM_TOKEN),
        json(document),
    );
    assert_eq!(r.status, 204, "{}", r.body);
}

fn assert_fails(reply: &Reply, rule: &str, needle: &str) {
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(
        reply.body.starts_with(&format!("{rule}:")),
        "{}",
        reply.body
    );
    assert!(reply.body.contains(needle), "{}", reply.body);
    assert!(
        reply.body.contains("fix:"),
        "a failure says how to fix it: {}",
        reply.body
    );
}

#[test]
fn target_branch_protection() {
    let (sim, s) = setup();
    // Only this rule: the others are covered below.
    set_policy(
        &s,
        r#"{"pull_request": {"collaborators": {"enabled": false}, "execute_job": {"enabled": false}}}"#,
    );
    assert_eq!(pr(&s, APP, "main").status, 204, "protected default branch");
    assert_fails(
        &pr(&s, APP, "nope"),
        "target_branch_protection",
        "not found",
    );
    sim_repo::branch(&sim, APP, "dev", json!(null));
    assert_fails(
        &pr(&s, APP, "dev"),
        "target_branch_protection",
        "is not protected",
    );
    // A protected non-default branch needs no reviews for a PR from the repository itself,
    sim_repo::branch(&sim, APP, "stable", json!({}));
    assert_eq!(pr(&s, APP, "stable").status, 204);
    // but does for a fork's.
    assert_fails(
        &pr(&s, "alice/app", "stable"),
        "target_branch_protection",
        "does not require pull request reviews",
    );
    // The default branch always does.
    sim_repo::branch(&sim, APP, "main", json!({}));
    assert_fails(
        &pr(&s, APP, "main"),
        "target_branch_protection",
        "does not require pull request reviews",
    );
    sim_repo::branch(
        &sim,
        APP,
        "main",
        sim_repo::reviews(&["boss"], &["admins"], &["bot"]),
    );
    assert_fails(
        &pr(&s, APP, "main"),
        "target_branch_protection",
        "users boss; teams admins; apps bot can bypass",
    );
    sim_repo::branch(&sim, APP, "main", sim_repo::reviews(&[], &[], &["bot"]));
    assert_fails(
        &pr(&s, APP, "main"),
        "target_branch_protection",
        "apps bot can bypass",
    );
    // A different default branch moves the requirement with it.
    sim_repo::admin(
        &sim,
        "PATCH",
        &format!("/_sim/repos/{APP}"),
        json!({"default_branch": "stable"}),
    );
    assert_fails(
        &pr(&s, APP, "stable"),
        "target_branch_protection",
        "does not require",
    );
    assert_eq!(
        pr(&s, APP, "main").status,
        204,
        "main is no longer the default"
    );
}

#[test]
fn collaborators_over_every_event_and_page() {
    let (sim, s) = setup();
    let mut people: Vec<String> = (0..230).map(|i| format!("reader{i:03}")).collect();
    people.push("zz-writer".into());
    let readers: Vec<(&str, &str)> = people[..230].iter().map(|p| (p.as_str(), "read")).collect();
    sim_repo::outside_collaborators(&sim, APP, &readers);
    for name in ["push", "default", "schedule", "workflow_dispatch"] {
        assert_eq!(event(&s, name).status, 204, "{name}: 230 readers pass");
    }
    assert_eq!(pr(&s, APP, "main").status, 204);
    // One writer, on the third page of 100.
    let mut all = readers.clone();
    all.push(("zz-writer", "write"));
    sim_repo::outside_collaborators(&sim, APP, &all);
    for name in ["push", "default", "schedule", "workflow_dispatch"] {
        assert_fails(&event(&s, name), "collaborators", "zz-writer (write)");
    }
    assert_fails(&pr(&s, APP, "main"), "collaborators", "zz-writer (write)");
    for role in ["triage", "maintain", "admin", "custom-role"] {
        sim_repo::outside_collaborators(&sim, APP, &[("x", role)]);
        assert_fails(&event(&s, "push"), "collaborators", &format!("x ({role})"));
    }
    // The rule switched off per event.
    set_policy(&s, r#"{"push": {"collaborators": {"enabled": false}}}"#);
    assert_eq!(event(&s, "push").status, 204);
    assert_eq!(event(&s, "default").status, 204, "default behaves as push");
    assert_eq!(event(&s, "schedule").status, 403);
}

#[test]
fn disallow_fork() {
    let (sim, s) = setup();
    set_policy(
        &s,
        r#"{"pull_request": {"disallow_fork": {"enabled": true}, "execute_job": {"enabled": false}}}"#,
    );
    assert_eq!(pr(&s, APP, "main").status, 204, "not a fork");
    assert_fails(
        &pr(&s, "alice/app", "main"),
        "disallow_fork",
        "alice has no write permission",
    );
    sim_repo::roles(&sim, APP, &[("alice", "read")]);
    assert_fails(&pr(&s, "alice/app", "main"), "disallow_fork", "alice");
    for role in ["write", "maintain", "admin"] {
        sim_repo::roles(&sim, APP, &[("alice", role)]);
        assert_eq!(pr(&s, "alice/app", "main").status, 204, "owner with {role}");
    }
}

#[test]
fn execute_job() {
    let (sim, s) = setup();
    assert_eq!(
        pr(&s, APP, "main").status,
        204,
        "not a fork: nothing to approve"
    );
    assert_fails(
        &pr(&s, "alice/app", "main"),
        "execute_job",
        "no open pull request",
    );
    let number = sim_repo::pull(&sim, APP, "alice/app", "fix", SHA, "main");
    assert_fails(
        &pr(&s, "alice/app", "main"),
        "execute_job",
        "is not approved",
    );
    sim_repo::roles(&sim, APP, &[("maint", "write"), ("reader", "read")]);
    // 230 comments first: the approval lands on the third page.
    let mut comments: Vec<(&str, String)> = (0..230)
        .map(|i| ("reader", format!("looks fine {i}")))
        .collect();
    comments.push(("reader", format!("{RUN} {SHA}")));
    comments.push(("maint", format!("> {RUN} {SHA}")));
    comments.push(("maint", format!("{RUN} {}", "f".repeat(40))));
    sim_repo::comments(&sim, APP, number, &comments);
    assert_fails(
        &pr(&s, "alice/app", "main"),
        "execute_job",
        "is not approved",
    );
    sim_repo::comments(
        &sim,
        APP,
        number,
        &[("maint", format!("Reviewed.\n{RUN} {SHA}"))],
    );
    assert_eq!(
        pr(&s, "alice/app", "main").status,
        204,
        "approved by a writer"
    );
    // A fork whose owner may push needs no approval.
    sim_repo::pull(&sim, APP, "bob/app", "fix", SHA, "main");
    assert_fails(&pr(&s, "bob/app", "main"), "execute_job", "is not approved");
    sim_repo::roles(&sim, APP, &[("bob", "maintain")]);
    assert_eq!(pr(&s, "bob/app", "main").status, 204);
    // Switched off, a fork's PR passes the remaining rules (a rule absent from a
    // document is enabled: disallow_fork is named to keep it off).
    set_policy(
        &s,
        r#"{"pull_request": {"execute_job": {"enabled": false}, "disallow_fork": {"enabled": false}}}"#,
    );
    let carol = pr(&s, "carol/app", "main");
    assert_eq!(carol.status, 204, "{}", carol.body);
}
