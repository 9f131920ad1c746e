//! GitHub's repository endpoints that the policy checks read: the repository, a branch
//! and its protection, outside collaborators, a user's permission, open pull requests,
//! issue comments, and `/rate_limit`. Bodies are built from the schemas of GitHub's
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
use super::repo_state::{legacy_permission, permission_flags, BranchData, RepoData};
use super::runners::origin;
use super::state::World;
use super::Sim;

type Query_ = Query<HashMap<String, String>>;

const CREATED: &str = "2024-01-02T03:04:05Z";

pub fn routes() -> Router<Arc<Sim>> {
    let base = "/repos/:owner/:repo";
    Router::new()
        .route(base, get(repository))
        .route(&format!("{base}/branches/:branch"), get(branch))
        .route(
            &format!("{base}/branches/:branch/protection"),
            get(protection),
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

/// URLs that GitHub puts into bodies: the API base the client used and a web base.
struct Urls {
    api: String,
}

impl Urls {
    fn new(headers: &HeaderMap, uri: &OriginalUri) -> Urls {
        let ghes = uri.path().starts_with("/api/v3/");
        let api = format!("{}{}", origin(headers), if ghes { "/api/v3" } else { "" });
        Urls { api }
    }
    fn html(&self) -> String {
        format!("{}/_sim/html", self.api.trim_end_matches("/api/v3"))
    }
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

/// A stable numeric id for a login or name (the simulator keeps no user table).
fn id_of(name: &str) -> u64 {
    let digest = super::repo_state::fake_sha(&name.to_ascii_lowercase());
    u64::from_str_radix(&digest[..8], 16).unwrap_or(1) + 1
}

/// `simple-user`.
fn user_json(urls: &Urls, login: &str) -> Value {
    let api = format!("{}/users/{login}", urls.api);
    json!({
        "login": login, "id": id_of(login), "node_id": format!("U_{login}"),
        "avatar_url": format!("{}/avatars/{login}", urls.html()),
        "gravatar_id": "", "url": api, "html_url": format!("{}/{login}", urls.html()),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User", "site_admin": false,
    })
}

/// `full-repository` (a superset of `repository`, which pull requests embed).
fn repo_json(urls: &Urls, full: &str, data: &RepoData) -> Value {
    let (owner, name) = full.split_once('/').unwrap_or((full, full));
    let api = format!("{}/repos/{full}", urls.api);
    let html = format!("{}/{full}", urls.html());
    let mut v = json!({
        "id": data.id, "node_id": format!("R_{}", data.id), "name": name, "full_name": full,
        "owner": user_json(urls, owner), "private": false, "html_url": html,
        "description": null, "fork": false, "url": api, "homepage": null, "language": null,
        "mirror_url": null, "license": null, "default_branch": data.default_branch,
        "forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0,
        "watchers_count": 0, "size": 0, "open_issues": 0, "open_issues_count": 0,
        "network_count": 0, "subscribers_count": 0,
    });
    let more = json!({
        "has_issues": true, "has_projects": false, "has_wiki": false, "has_pages": false,
        "has_downloads": true, "has_discussions": false, "archived": false, "disabled": false,
        "visibility": "public", "topics": [],
        "pushed_at": CREATED, "created_at": CREATED, "updated_at": CREATED,
        "clone_url": format!("{html}.git"), "git_url": format!("git://sim/{full}.git"),
        "ssh_url": format!("git@sim:{full}.git"), "svn_url": html,
    });
    if let (Value::Object(v), Value::Object(more)) = (&mut v, more) {
        v.extend(more);
    }
    let templated = [
        ("archive_url", "{archive_format}{/ref}"),
        ("assignees_url", "assignees{/user}"),
        ("blobs_url", "git/blobs{/sha}"),
        ("branches_url", "branches{/branch}"),
        ("collaborators_url", "collaborators{/collaborator}"),
        ("comments_url", "comments{/number}"),
        ("commits_url", "commits{/sha}"),
        ("compare_url", "compare/{base}...{head}"),
        ("contents_url", "contents/{+path}"),
        ("contributors_url", "contributors"),
        ("deployments_url", "deployments"),
        ("downloads_url", "downloads"),
        ("events_url", "events"),
        ("forks_url", "forks"),
        ("git_commits_url", "git/commits{/sha}"),
        ("git_refs_url", "git/refs{/sha}"),
        ("git_tags_url", "git/tags{/sha}"),
        ("hooks_url", "hooks"),
        ("issue_comment_url", "issues/comments{/number}"),
        ("issue_events_url", "issues/events{/number}"),
        ("issues_url", "issues{/number}"),
        ("keys_url", "keys{/key_id}"),
        ("labels_url", "labels{/name}"),
        ("languages_url", "languages"),
        ("merges_url", "merges"),
        ("milestones_url", "milestones{/number}"),
        (
            "notifications_url",
            "notifications{?since,all,participating}",
        ),
        ("pulls_url", "pulls{/number}"),
        ("releases_url", "releases{/id}"),
        ("stargazers_url", "stargazers"),
        ("statuses_url", "statuses/{sha}"),
        ("subscribers_url", "subscribers"),
        ("subscription_url", "subscription"),
        ("tags_url", "tags"),
        ("teams_url", "teams"),
        ("trees_url", "git/trees{/sha}"),
    ];
    for (key, rest) in templated {
        let sep = if rest.starts_with('{') { "" } else { "/" };
        v[key] = json!(format!("{api}{sep}{rest}"));
    }
    v
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

/// `commit`, for a branch head.
fn commit_json(urls: &Urls, full: &str, sha: &str) -> Value {
    let api = format!("{}/repos/{full}", urls.api);
    json!({
        "url": format!("{api}/commits/{sha}"), "sha": sha, "node_id": format!("C_{sha}"),
        "html_url": format!("{}/{full}/commit/{sha}", urls.html()),
        "comments_url": format!("{api}/commits/{sha}/comments"),
        "commit": {
            "url": format!("{api}/git/commits/{sha}"),
            "author": {"name": "sim", "email": "sim@example.com", "date": CREATED},
            "committer": {"name": "sim", "email": "sim@example.com", "date": CREATED},
            "message": "simulated commit", "comment_count": 0,
            "tree": {"sha": sha, "url": format!("{api}/git/trees/{sha}")},
        },
        "author": null, "committer": null, "parents": [],
    })
}

/// `branch-protection`; `None` when the branch has no rule.
fn protection_json(urls: &Urls, full: &str, name: &str, branch: &BranchData) -> Option<Value> {
    let rule = branch.protection.as_ref()?;
    let url = format!(
        "{}/repos/{full}/branches/{}/protection",
        urls.api,
        encode(name)
    );
    let mut v = json!({"url": url, "enabled": true, "name": name, "protection_url": url});
    if let Some(reviews) = &rule.required_reviews {
        let team = |slug: &String| {
            json!({
                "id": id_of(slug), "node_id": format!("T_{slug}"), "name": slug, "slug": slug,
                "description": null, "permission": "push", "privacy": "closed",
                "url": format!("{}/teams/{}", urls.api, id_of(slug)),
                "html_url": format!("{}/orgs/teams/{slug}", urls.html()),
                "members_url": format!("{}/teams/{}/members{{/member}}", urls.api, id_of(slug)),
                "repositories_url": format!("{}/teams/{}/repos", urls.api, id_of(slug)),
                "parent": null, "type": "organization",
            })
        };
        let app = |slug: &String| {
            json!({
                "id": id_of(slug), "slug": slug, "node_id": format!("A_{slug}"),
                "owner": user_json(urls, "sim-apps"), "name": slug, "description": null,
                "external_url": format!("{}/apps/{slug}", urls.html()),
                "html_url": format!("{}/apps/{slug}", urls.html()),
                "created_at": CREATED, "updated_at": CREATED, "permissions": {}, "events": [],
            })
        };
        let bypass = &reviews.bypass;
        v["required_pull_request_reviews"] = json!({
            "url": format!("{url}/required_pull_request_reviews"),
            "dismiss_stale_reviews": false,
            "require_code_owner_reviews": false,
            "required_approving_review_count": reviews.required_approving_review_count,
            "require_last_push_approval": false,
            "bypass_pull_request_allowances": {
                "users": bypass.users.iter().map(|u| user_json(urls, u)).collect::<Vec<_>>(),
                "teams": bypass.teams.iter().map(team).collect::<Vec<_>>(),
                "apps": bypass.apps.iter().map(app).collect::<Vec<_>>(),
            },
        });
    }
    Some(v)
}

/// A path segment as a URL carries it (a branch name may hold `/`).
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
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
        match protection_json(&urls, &full, &name, b) {
            Some(v) => Json(v).into_response(),
            None => error(StatusCode::NOT_FOUND, "Branch not protected"),
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

/// `pull-request-simple`.
fn pull_json(
    world: &mut World,
    urls: &Urls,
    full: &str,
    pull: &super::repo_state::PullData,
) -> Value {
    let api = format!("{}/repos/{full}", urls.api);
    let n = pull.number;
    let author = pull
        .user
        .clone()
        .or_else(|| {
            pull.head_repo
                .as_ref()
                .map(|r| r.split('/').next().unwrap_or(r).to_string())
        })
        .unwrap_or_else(|| "ghost".into());
    let full_owned = full.to_string();
    let base_sha = world
        .repo_data(full, false)
        .and_then(|d| d.branch(&pull.base_ref).map(|b| b.sha.clone()))
        .unwrap_or_else(|| super::repo_state::fake_sha(&pull.base_ref));
    let mut side = |repo: Option<&String>, name: &str, sha: &str| {
        let repo_v = repo.map(|r| {
            let data = world
                .repo_data(r, false)
                .cloned()
                .unwrap_or_else(|| RepoData::new(id_of(r)));
            repo_json(urls, r, &data)
        });
        let owner = repo.map_or("ghost", |r| r.split('/').next().unwrap_or(r));
        json!({
            "label": format!("{owner}:{name}"), "ref": name, "sha": sha,
            "repo": repo_v, "user": user_json(urls, owner),
        })
    };
    let head = side(pull.head_repo.as_ref(), &pull.head_ref, &pull.head_sha);
    let base = side(Some(&full_owned), &pull.base_ref, &base_sha);
    let link = |href: String| json!({"href": href});
    let mut v = json!({
        "url": format!("{api}/pulls/{n}"), "id": id_of(&format!("{full}#{n}")),
        "node_id": format!("PR_{n}"), "html_url": format!("{}/{full}/pull/{n}", urls.html()),
        "diff_url": format!("{}/{full}/pull/{n}.diff", urls.html()),
        "patch_url": format!("{}/{full}/pull/{n}.patch", urls.html()),
        "issue_url": format!("{api}/issues/{n}"),
        "commits_url": format!("{api}/pulls/{n}/commits"),
        "review_comments_url": format!("{api}/pulls/{n}/comments"),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{api}/issues/{n}/comments"),
        "statuses_url": format!("{api}/statuses/{}", pull.head_sha),
    });
    let more = json!({
        "number": n, "state": pull.state, "locked": false, "title": format!("Pull request {n}"),
        "user": user_json(urls, &author), "body": null, "labels": [], "milestone": null,
        "created_at": CREATED, "updated_at": CREATED, "closed_at": null, "merged_at": null,
        "merge_commit_sha": null, "assignee": null, "head": head, "base": base,
        "_links": {
            "self": link(format!("{api}/pulls/{n}")),
            "html": link(format!("{}/{full}/pull/{n}", urls.html())),
            "issue": link(format!("{api}/issues/{n}")),
            "comments": link(format!("{api}/issues/{n}/comments")),
            "review_comments": link(format!("{api}/pulls/{n}/comments")),
            "review_comment": link(format!("{api}/pulls/comments{{/number}}")),
            "commits": link(format!("{api}/pulls/{n}/commits")),
            "statuses": link(format!("{api}/statuses/{}", pull.head_sha)),
        },
        "author_association": "CONTRIBUTOR", "auto_merge": null,
    });
    if let (Value::Object(v), Value::Object(more)) = (&mut v, more) {
        v.extend(more);
    }
    v
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
        let api = format!("{}/repos/{full}", urls.api);
        let items = data
            .comments
            .get(&number)
            .into_iter()
            .flatten()
            .map(|c| {
                json!({
                    "id": c.id, "node_id": format!("IC_{}", c.id),
                    "url": format!("{api}/issues/comments/{}", c.id),
                    "html_url": format!("{}/{full}/pull/{number}#issuecomment-{}", urls.html(), c.id),
                    "issue_url": format!("{api}/issues/{number}"),
                    "body": c.body, "user": user_json(&urls, &c.user),
                    "created_at": CREATED, "updated_at": CREATED,
                    "author_association": "NONE", "performed_via_github_app": null,
                })
            })
            .collect();
        page(&headers, &uri, &query, items)
    })
}

/// `rate-limit-overview`: reading it costs nothing against the budget on GitHub; the
/// guard has already spent one here, which is refunded.
async fn rate_limit(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let mut world = sim.lock();
    world.budget.used = world.budget.used.saturating_sub(1);
    let b = &world.budget;
    let core = json!({"limit": b.limit, "remaining": b.remaining(), "used": b.used,
        "reset": b.reset.timestamp(), "resource": "core"});
    let search = json!({"limit": 30, "remaining": 30, "used": 0,
        "reset": b.reset.timestamp(), "resource": "search"});
    Json(json!({"resources": {"core": core, "search": search}, "rate": core}))
}
