//! Which check the real pre-job script asks for, by what the event's payload carries:
//! every event carrying a pull request (review, review comment, pull_request_target,
//! a comment on a pull request, events GitHub may add) gets the pull-request check, run
//! by bash as the runner runs hooks, against the real policy service on loopback.

mod policy_support;
mod pre_job_support;

use policy_support::Service;
use pre_job_support::*;

/// Every event whose payload carries a pull request (its own name or not) goes to the
/// pull-request check with that pull request: a fork's unapproved commit is refused
/// by the approval rule, the approved fork and a branch of the repository pass.
#[test]
fn every_event_carrying_a_pull_request_gets_the_pull_request_check() {
    if !tools_present() {
        return;
    }
    let s = Service::start(github(), None);
    let events = [
        "pull_request",
        "pull_request_target",
        "pull_request_review",
        "pull_request_review_comment",
        "issue_comment",
        // An event GitHub may add later: what it carries counts, not its name.
        "pull_request_something_new",
    ];
    for event in events {
        for (head, passes) in [
            ("alice/app", false),
            ("bob/app", true),
            ("canonical/app", true),
        ] {
            // A comment names the pull request by number: only the open ones count.
            if event == "issue_comment" && head == "canonical/app" {
                continue;
            }
            let i = Instance::new();
            let event_path = i.write_event(&pull_request_event(event, head));
            let script = fresh_script(&s);
            let env = [
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_REPOSITORY", "canonical/app"),
                ("GITHUB_EVENT_PATH", path_str(&event_path)),
            ];
            let (code, stderr) = i.run(&script, &env);
            assert_eq!(code == 0, passes, "{event} from {head}: {stderr}");
            assert_eq!(refused(&i), !passes, "{event} from {head}: {:?}", i.calls());
            if passes {
                assert!(
                    stderr.contains("pull_request check passed"),
                    "{event}: {stderr}"
                );
            } else {
                assert!(stderr.contains("execute_job"), "{event}: {stderr}");
            }
        }
    }
}

/// A pull-request event whose payload has no pull request is refused, never checked
/// as a repository event; so is an issue comment naming a pull request that is not open.
#[test]
fn a_pull_request_event_without_its_pull_request_is_refused() {
    if !tools_present() {
        return;
    }
    let s = Service::start(github(), None);
    for event in [
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_target",
    ] {
        let i = Instance::new();
        let event_path = i.write_event(&serde_json::json!({"review": {}}));
        let env = [
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_REPOSITORY", "canonical/app"),
            ("GITHUB_EVENT_PATH", path_str(&event_path)),
        ];
        let (code, stderr) = i.run(&fresh_script(&s), &env);
        assert!(code != 0 && refused(&i), "{event}: {stderr}");
    }
    let i = Instance::new();
    let closed = serde_json::json!({"issue": {"number": 99, "pull_request": {"url": "u"}}});
    let event_path = i.write_event(&closed);
    let env = [
        ("GITHUB_EVENT_NAME", "issue_comment"),
        ("GITHUB_REPOSITORY", "canonical/app"),
        ("GITHUB_EVENT_PATH", path_str(&event_path)),
    ];
    let (code, stderr) = i.run(&fresh_script(&s), &env);
    assert!(
        code != 0 && refused(&i) && stderr.contains("#99"),
        "{stderr}"
    );
}
