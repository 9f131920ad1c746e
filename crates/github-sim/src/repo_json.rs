//! GitHub's schemas as the simulator's repository endpoints ([`super::repos`]) answer
//! them: `simple-user`, `full-repository`, `commit`, `branch-protection`,
//! `pull-request-simple`, with the URLs GitHub puts into bodies.

use axum::extract::OriginalUri;
use axum::http::HeaderMap;
use serde_json::{json, Value};

use super::repo_state::{fake_sha, BranchData, CommentData, PullData, RepoData};
use super::runners::origin;
use super::state::World;

pub(super) const CREATED: &str = "2024-01-02T03:04:05Z";
/// URLs that GitHub puts into bodies: the API base the client used and a web base.
pub(super) struct Urls {
    pub(super) api: String,
}

impl Urls {
    pub(super) fn new(headers: &HeaderMap, uri: &OriginalUri) -> Urls {
        let ghes = uri.path().starts_with("/api/v3/");
        let api = format!("{}{}", origin(headers), if ghes { "/api/v3" } else { "" });
        Urls { api }
    }
    pub(super) fn html(&self) -> String {
        format!("{}/_sim/html", self.api.trim_end_matches("/api/v3"))
    }
}

/// A stable numeric id for a login or name (the simulator keeps no user table).
pub(super) fn id_of(name: &str) -> u64 {
    let digest = fake_sha(&name.to_ascii_lowercase());
    u64::from_str_radix(&digest[..8], 16).unwrap_or(1) + 1
}

/// `simple-user`.
pub(super) fn user_json(urls: &Urls, login: &str) -> Value {
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
pub(super) fn repo_json(urls: &Urls, full: &str, data: &RepoData) -> Value {
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

/// `commit`, for a branch head.
pub(super) fn commit_json(urls: &Urls, full: &str, sha: &str) -> Value {
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
pub(super) fn protection_json(
    urls: &Urls,
    full: &str,
    name: &str,
    branch: &BranchData,
) -> Option<Value> {
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
pub(super) fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `pull-request-simple`.
pub(super) fn pull_json(world: &mut World, urls: &Urls, full: &str, pull: &PullData) -> Value {
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
        .unwrap_or_else(|| fake_sha(&pull.base_ref));
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

/// `issue-comment`.
pub(super) fn comment_json(urls: &Urls, full: &str, number: u64, c: &CommentData) -> Value {
    let api = format!("{}/repos/{full}", urls.api);
    json!({
        "id": c.id, "node_id": format!("IC_{}", c.id),
        "url": format!("{api}/issues/comments/{}", c.id),
        "html_url": format!("{}/{full}/pull/{number}#issuecomment-{}", urls.html(), c.id),
        "issue_url": format!("{api}/issues/{number}"),
        "body": c.body, "user": user_json(urls, &c.user),
        "created_at": CREATED, "updated_at": CREATED,
        "author_association": "NONE", "performed_via_github_app": null,
    })
}
