//! `GithubApi` (the ureq `RepoApi`) against a small GitHub stand-in on loopback: the
//! endpoints, bearer auth, `Link` pagination past 100 entries, 404 and rate-limit
//! mapping. The GitHub simulator with Prism replaces this stand-in in phase 2.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use github_runner::config::Token;
use github_runner::policy::checks::{
    check, CheckRequest, Outcome, PullRequestInput, RepositoryEvent,
};
use github_runner::policy::document::Policy;
use github_runner::policy::github::{ApiError, Permission, RepoApi, RepoName};
use github_runner::policy::github_api::GithubApi;
use serde_json::{json, Value};

const TOKEN: &str = "ghp_stand_in_token";
const SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// What the stand-in serves and what it saw.
#[derive(Default)]
struct GitHub {
    rate_limited: bool,
    requests: Vec<String>,
}

type Shared = Arc<Mutex<GitHub>>;

fn page(items: Vec<Value>, uri: &Uri, base: &str) -> Response {
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30);
    assert!(per_page <= 100, "per_page above GitHub's maximum");
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let chunk: Vec<Value> = items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let mut headers = HeaderMap::new();
    if page * per_page < items.len() {
        let mut next = query.clone();
        next.insert("page".into(), (page + 1).to_string());
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(next.iter())
            .finish();
        let link = format!(
            "<{base}{}?{q}>; rel=\"next\", <{base}{}?page=99>; rel=\"last\"",
            uri.path(),
            uri.path()
        );
        headers.insert("link", link.parse().unwrap());
    }
    (headers, axum::Json(Value::Array(chunk))).into_response()
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": message})),
    )
        .into_response()
}

async fn github(state: Shared, origin: String, uri: Uri, headers: HeaderMap) -> Response {
    let mut gh = state.lock().unwrap();
    gh.requests.push(uri.to_string());
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    assert_eq!(
        headers.get("accept").unwrap(),
        "application/vnd.github+json"
    );
    assert!(headers.get("x-github-api-version").is_some());
    if gh.rate_limited {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", "1767225600".parse().unwrap());
        return (
            StatusCode::FORBIDDEN,
            h,
            axum::Json(json!({"message": "API rate limit exceeded"})),
        )
            .into_response();
    }
    let path = uri
        .path()
        .strip_prefix("/api/v3")
        .expect("GHES prefix kept");
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["rate_limit"] => axum::Json(json!({"resources": {}})).into_response(),
        ["repos", "canonical", "app"] => axum::Json(json!({"full_name": "canonical/app", "default_branch": "main"})).into_response(),
        ["repos", "canonical", "app", "branches", b] => match *b {
            "main" | "release/1.0" => axum::Json(json!({"name": b, "protected": true})).into_response(),
            "dev" => axum::Json(json!({"name": "dev", "protected": false})).into_response(),
            _ => not_found("Branch not found"),
        },
        ["repos", "canonical", "app", "branches", "main", "protection"] => axum::Json(json!({
            "url": "x",
            "required_pull_request_reviews": {
                "required_approving_review_count": 1,
                "bypass_pull_request_allowances": {"users": [], "teams": [], "apps": []}
            }
        }))
        .into_response(),
        ["repos", "canonical", "app", "branches", "release/1.0", "protection"] => axum::Json(json!({
            "required_pull_request_reviews": {
                "bypass_pull_request_allowances": {"users": [{"login": "boss", "id": 1}], "teams": [], "apps": []}
            }
        }))
        .into_response(),
        ["repos", "canonical", "app", "branches", _, "protection"] => not_found("Branch not protected"),
        ["repos", "canonical", "app", "collaborators"] => {
            assert_eq!(uri.query().map(|q| q.contains("affiliation=outside")), Some(true));
            // 250 readers and one writer on the last page.
            let mut list: Vec<Value> = (0..250).map(|i| json!({"login": format!("reader{i}"), "role_name": "read"})).collect();
            list.push(json!({"login": "late-writer", "role_name": "write"}));
            page(list, &uri, &origin)
        }
        ["repos", "canonical", "app", "collaborators", user, "permission"] => match *user {
            "maint" => axum::Json(json!({"permission": "admin", "role_name": "admin"})).into_response(),
            "reader" => axum::Json(json!({"permission": "read", "role_name": "read"})).into_response(),
            _ => not_found("Not Found"),
        },
        ["repos", "canonical", "app", "pulls"] => {
            let list = vec![json!({
                "number": 9,
                "head": {"ref": "fix", "sha": SHA, "repo": {"full_name": "alice/app"}},
                "base": {"ref": "main", "sha": "0".repeat(40), "repo": {"full_name": "canonical/app"}}
            })];
            page(list, &uri, &origin)
        }
        ["repos", "canonical", "app", "issues", "9", "comments"] => {
            let mut list: Vec<Value> = (0..230).map(|i| json!({"body": format!("comment {i}"), "user": {"login": "reader"}})).collect();
            list.push(json!({"body": format!("> /canonical/self-hosted-runners/run-workflows {SHA}"), "user": {"login": "maint"}}));
            list.push(json!({"body": format!("/canonical/self-hosted-runners/run-workflows {SHA}"), "user": {"login": "maint"}}));
            page(list, &uri, &origin)
        }
        _ => not_found("Not Found"),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

/// The stand-in on 127.0.0.1:0, on its own runtime thread (ended when the test ends).
fn start() -> (String, Shared) {
    let state: Shared = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (s, o) = (state.clone(), origin.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
                github(s.clone(), o.clone(), uri, headers)
            });
            axum::serve(tokio::net::TcpListener::from_std(listener).unwrap(), app)
                .await
                .unwrap();
        });
    });
    (format!("{origin}/api/v3"), state)
}

fn api(base: &str, token: &str) -> GithubApi {
    GithubApi::new(base, Token::new(token), None).unwrap()
}

fn repo() -> RepoName {
    RepoName::parse("canonical/app").unwrap()
}

#[test]
fn reads_and_pages() {
    let (base, state) = start();
    let gh = api(&base, TOKEN);
    assert_eq!(gh.repository(&repo()).unwrap().default_branch, "main");
    assert!(gh.branch(&repo(), "main").unwrap().protected);
    assert!(matches!(
        gh.branch(&repo(), "nope"),
        Err(ApiError::NotFound(_))
    ));
    assert!(
        gh.branch(&repo(), "release/1.0").unwrap().protected,
        "a branch name with a slash is one segment"
    );
    assert!(gh
        .branch_protection(&repo(), "main")
        .unwrap()
        .unwrap()
        .required_pull_request_reviews
        .is_some());
    assert_eq!(gh.branch_protection(&repo(), "dev").unwrap(), None);

    let outside = gh.outside_collaborators(&repo()).unwrap();
    assert_eq!(outside.len(), 251);
    assert_eq!(outside.last().unwrap().login, "late-writer");
    let comments = gh.issue_comments(&repo(), 9).unwrap();
    assert_eq!(comments.len(), 232);
    assert_eq!(gh.open_pull_requests(&repo()).unwrap()[0].number, 9);

    assert_eq!(
        gh.collaborator_permission(&repo(), "maint").unwrap(),
        Permission::Admin
    );
    assert_eq!(
        gh.collaborator_permission(&repo(), "reader").unwrap(),
        Permission::Read
    );
    assert_eq!(
        gh.collaborator_permission(&repo(), "ghost").unwrap(),
        Permission::None
    );
    assert!(matches!(
        gh.repository(&RepoName::parse("canonical/none").unwrap()),
        Err(ApiError::NotFound(_))
    ));
    gh.check_token().unwrap();

    let requests = state.lock().unwrap().requests.clone();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.contains("/collaborators?"))
            .count(),
        3,
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("release%2F1.0")),
        "{requests:?}"
    );
    assert!(requests.iter().all(|r| r.starts_with("/api/v3/")));
}

#[test]
fn checks_through_the_real_client() {
    let (base, _) = start();
    let gh = api(&base, TOKEN);
    let push = CheckRequest::Repository {
        event: RepositoryEvent::Push,
        repository: repo(),
    };
    match check(&gh, &Policy::default(), &push) {
        Outcome::Fail(t) => assert!(t.contains("late-writer (write)"), "{t}"),
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
    let (base, state) = start();
    let bad = api(&base, "wrong");
    match bad.check_token() {
        Err(ApiError::Other(t)) => assert!(t.contains("401") && !t.contains("wrong"), "{t}"),
        other => panic!("{other:?}"),
    }
    state.lock().unwrap().rate_limited = true;
    let gh = api(&base, TOKEN);
    assert_eq!(
        gh.repository(&repo()),
        Err(ApiError::RateLimited(
            "resets at 2026-01-01 00:00:00 UTC".into()
        ))
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    match api(&format!("http://{closed}"), TOKEN).repository(&repo()) {
        Err(ApiError::Other(t)) => assert!(!t.contains(TOKEN), "{t}"),
        other => panic!("{other:?}"),
    }
}
