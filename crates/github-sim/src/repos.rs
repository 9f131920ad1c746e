//! GitHub's repository endpoints that the policy checks read: the repository, a branch
//! and its protection (whole, or only its required reviews), outside collaborators, a
//! user's permission, open pull requests, issue comments, and `/rate_limit`. Bodies are built from the schemas of GitHub's
//! OpenAPI description (the contract test holds them to it), lists page with `Link`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::api::error;
use super::repo_json::{
    comment_json, commit_json, encode, protection_json, pull_json, repo_json, user_json, Urls,
};
use super::repo_state::{legacy_permission, permission_flags, RepoData};
use super::runners::origin;
use super::Sim;

type Query_ = Query<HashMap<String, String>>;

pub fn routes() -> Router<Arc<Sim>> {
    let base = "/repos/:owner/:repo";
    Router::new()
        .route(base, get(repository))
        .route(&format!("{base}/branches/:branch"), get(branch))
        .route(
            &format!("{base}/branches/:branch/protection"),
            get(protection),
        )
        .route(
            &format!("{base}/branches/:branch/protection/required_pull_request_reviews"),
            get(required_reviews),
        )
        .route(&format!("{base}/collaborators"), get(collaborators))
        .route(
            &format!("{base}/collaborators/:username/permission"),
            get(permission),
        )
        .route(&format!("{base}/pulls"), get(pulls))
        .route(
            &format!("{base}/issues/:issue_number/comments"),
            get(comments),
        )
        .route("/rate_limit", get(rate_limit))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// Runs `f` on the repository `owner/repo`, or answers 404 when the world lacks it.
fn with_repo(
    sim: &Sim,
    owner: &str,
    repo: &str,
    f: impl FnOnce(&RepoData) -> Response,
) -> Response {
    let full = format!("{owner}/{repo}");
    let mut world = sim.lock();
    match world.repo_data(&full, false) {
        Some(data) => f(data),
        None => not_found(),
    }
}

async fn repository(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let urls = Urls::new(&headers, &uri);
    with_repo(&sim, &owner, &repo, |data| {
        Json(repo_json(&urls, &format!("{owner}/{repo}"), data)).into_response()
    })
}

async fn branch(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo, name)): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let urls = Urls::new(&headers, &uri);
    let full = format!("{owner}/{repo}");
    with_repo(&sim, &owner, &repo, |data| {
        let Some(b) = data.branch(&name) else {
            return error(StatusCode::NOT_FOUND, "Branch not found");
        };
        let protection =
            protection_json(&urls, &full, &name, b).unwrap_or_else(|| json!({"enabled": false}));
        let self_url = format!("{}/repos/{full}/branches/{}", urls.api, encode(&name));
        Json(json!({
            "name": name,
            "commit": commit_json(&urls, &full, &b.sha),
            "_links": {"self": self_url, "html": format!("{}/{full}/tree/{name}", urls.html())},
            "protected": b.protection.is_some(),
            "protection": protection,
            "protection_url": format!("{self_url}/protection"),
        }))
        .into_response()
    })
}

async fn protection(
    State(sim): State<Arc<Sim>>,
    Path(branch): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    protection_part(&sim, branch, &uri, &headers, Some)
}

/// The protection's `required_pull_request_reviews` on its own: what a token without
/// the rest of the rule's details may read.
async fn required_reviews(
    State(sim): State<Arc<Sim>>,
    Path(branch): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    protection_part(&sim, branch, &uri, &headers, |mut rule| {
        rule.get_mut("required_pull_request_reviews")
            .map(Value::take)
    })
}

/// `part` of a branch's `branch-protection`; 404 for a missing branch, a branch
/// without a rule, or a rule without that part.
fn protection_part(
    sim: &Sim,
    (owner, repo, name): (String, String, String),
    uri: &OriginalUri,
    headers: &HeaderMap,
    part: impl FnOnce(Value) -> Option<Value>,
) -> Response {
    let urls = Urls::new(headers, uri);
    let full = format!("{owner}/{repo}");
    with_repo(sim, &owner, &repo, |data| {
        let Some(b) = data.branch(&name) else {
            return error(StatusCode::NOT_FOUND, "Branch not found");
        };
        let Some(rule) = protection_json(&urls, &full, &name, b) else {
            return error(StatusCode::NOT_FOUND, "Branch not protected");
        };
        match part(rule) {
            Some(v) => Json(v).into_response(),
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        }
    })
}

/// One page of `items` as a JSON array, with GitHub's `Link` header. Other query
/// parameters (filters) are kept in the links, as GitHub keeps them.
fn page(
    headers: &HeaderMap,
    uri: &OriginalUri,
    query: &HashMap<String, String>,
    items: Vec<Value>,
) -> Response {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let number = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((number - 1) * per_page)
        .take(per_page)
        .collect();
    let mut filters: Vec<(&String, &String)> = query
        .iter()
        .filter(|(k, _)| k.as_str() != "page" && k.as_str() != "per_page")
        .collect();
    filters.sort();
    let base = format!("{}{}", origin(headers), uri.path());
    let at = |p: usize, rel: &str| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.extend_pairs(filters.iter().copied());
        q.append_pair("per_page", &per_page.to_string());
        q.append_pair("page", &p.to_string());
        format!("<{base}?{}>; rel=\"{rel}\"", q.finish())
    };
    let mut links = Vec::new();
    if number > 1 {
        links.push(at(number - 1, "prev"));
    }
    if number < pages {
        links.push(at(number + 1, "next"));
        links.push(at(pages, "last"));
    }
    if number > 1 {
        links.push(at(1, "first"));
    }
    let mut response = Json(Value::Array(slice)).into_response();
    if !links.is_empty() {
        let link = HeaderValue::from_str(&links.join(", ")).expect("ASCII link");
        response.headers_mut().insert("link", link);
    }
    response
}

async fn collaborators(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query_,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let urls = Urls::new(&headers, &uri);
    let affiliation = query.get("affiliation").map_or("all", String::as_str);
    if !matches!(affiliation, "outside" | "direct" | "all") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    with_repo(&sim, &owner, &repo, |data| {
        let mut people: Vec<(&String, &String)> = data.outside_collaborators.iter().collect();
        if affiliation != "outside" {
            people.extend(data.roles.iter().filter(|(_, r)| r.as_str() != "none"));
        }
        let items = people
            .into_iter()
            .map(|(login, role)| {
                let mut v = user_json(&urls, login);
                let flags: serde_json::Map<String, Value> = permission_flags(role)
                    .into_iter()
                    .map(|(k, b)| (k.to_string(), json!(b)))
                    .collect();
                v["permissions"] = Value::Object(flags);
                v["role_name"] = json!(role);
                v
            })
            .collect();
        page(&headers, &uri, &query, items)
    })
}

async fn permission(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo, user)): Path<(String, String, String)>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let urls = Urls::new(&headers, &uri);
    with_repo(&sim, &owner, &repo, |data| {
        let Some(role) = data.role_of(&owner, &user) else {
            // GitHub answers 404 for a user it does not know at all.
            return not_found();
        };
        let mut collaborator = user_json(&urls, &user);
        collaborator["role_name"] = json!(role);
        Json(json!({
            "permission": legacy_permission(&role),
            "role_name": role,
            "user": collaborator,
        }))
        .into_response()
    })
}

async fn pulls(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query_,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let urls = Urls::new(&headers, &uri);
    let full = format!("{owner}/{repo}");
    let state = query
        .get("state")
        .map_or("open", String::as_str)
        .to_string();
    if !matches!(state.as_str(), "open" | "closed" | "all") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    }
    let mut world = sim.lock();
    let Some(data) = world.repo_data(&full, false) else {
        return not_found();
    };
    let selected: Vec<_> = data
        .pulls
        .iter()
        .filter(|p| state == "all" || p.state == state)
        .cloned()
        .collect();
    let items = selected
        .iter()
        .map(|p| pull_json(&mut world, &urls, &full, p))
        .collect();
    drop(world);
    page(&headers, &uri, &query, items)
}

async fn comments(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(query): Query_,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let urls = Urls::new(&headers, &uri);
    let full = format!("{owner}/{repo}");
    with_repo(&sim, &owner, &repo, |data| {
        let known =
            data.pulls.iter().any(|p| p.number == number) || data.comments.contains_key(&number);
        if !known {
            return not_found();
        }
        let items = data
            .comments
            .get(&number)
            .into_iter()
            .flatten()
            .map(|c| comment_json(&urls, &full, number, c))
            .collect();
        page(&headers, &uri, &query, items)
    })
}

/// `rate-limit-overview` (free: the guard does not spend the budget on it).
async fn rate_limit(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let world = sim.lock();
    let b = &world.budget;
    let core = json!({"limit": b.limit, "remaining": b.remaining(), "used": b.used,
        "reset": b.reset.timestamp(), "resource": "core"});
    let search = json!({"limit": 30, "remaining": 30, "used": 0,
        "reset": b.reset.timestamp(), "resource": "search"});
    Json(json!({"resources": {"core": core, "search": search}, "rate": core}))
}
