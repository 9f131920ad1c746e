//! Admin calls under `/_sim/repos/{owner}/{repo}/...` that set up what the repository
//! endpoints ([`super::repos`]) show: default branch, branches and their protection,
//! outside collaborators, users' roles, pull requests and comments. Documented in the
//! [`super`] module doc. Each call creates the repository when it does not exist yet.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::api::error;
use super::repo_state::{BranchData, CommentData, Protection, PullData, RepoData};
use super::Sim;

pub fn routes() -> Router<Arc<Sim>> {
    let base = "/_sim/repos/:owner/:repo";
    Router::new()
        .route(base, patch(settings).get(show))
        .route(&format!("{base}/branches"), post(add_branch))
        .route(
            &format!("{base}/outside-collaborators"),
            put(set_outside_collaborators),
        )
        .route(&format!("{base}/roles"), put(set_roles))
        .route(&format!("{base}/pulls"), post(add_pull))
        .route(
            &format!("{base}/issues/:number/comments"),
            post(add_comments),
        )
}

/// Runs `f` on the repository's data, creating the repository if needed.
fn edit(sim: &Sim, owner: &str, repo: &str, f: impl FnOnce(&mut RepoData) -> Response) -> Response {
    if owner.is_empty() || repo.is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "repository must be owner/name",
        );
    }
    let mut world = sim.lock();
    let data = world
        .repo_data(&format!("{owner}/{repo}"), true)
        .expect("created above");
    f(data)
}

async fn show(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    edit(&sim, &owner, &repo, |data| Json(&*data).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    default_branch: String,
}

/// `PATCH {"default_branch"}`: the branch is created when missing.
async fn settings(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Settings>,
) -> Response {
    edit(&sim, &owner, &repo, |data| {
        data.branches
            .entry(body.default_branch.clone())
            .or_insert_with(|| BranchData::new(&body.default_branch));
        data.default_branch = body.default_branch;
        Json(json!({"default_branch": data.default_branch})).into_response()
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBranch {
    name: String,
    #[serde(default)]
    sha: Option<String>,
    /// `null` or absent: not protected.
    #[serde(default)]
    protection: Option<Protection>,
}

/// `POST {"name", "sha"?, "protection"?}`: adds or replaces a branch.
async fn add_branch(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<NewBranch>,
) -> Response {
    if body.name.is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "name is required");
    }
    edit(&sim, &owner, &repo, |data| {
        let mut branch = BranchData::new(&body.name);
        if let Some(sha) = body.sha {
            branch.sha = sha;
        }
        branch.protection = body.protection;
        data.branches.insert(body.name, branch);
        StatusCode::CREATED.into_response()
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Person {
    login: String,
    role: String,
}

/// `PUT [{"login", "role"}]`: replaces the outside collaborators.
async fn set_outside_collaborators(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
    Json(people): Json<Vec<Person>>,
) -> Response {
    edit(&sim, &owner, &repo, |data| {
        data.outside_collaborators = people.into_iter().map(|p| (p.login, p.role)).collect();
        StatusCode::NO_CONTENT.into_response()
    })
}

/// `PUT [{"login", "role"}]`: replaces other users' roles (`none` for a known user
/// without access).
async fn set_roles(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
    Json(people): Json<Vec<Person>>,
) -> Response {
    edit(&sim, &owner, &repo, |data| {
        data.roles = people.into_iter().map(|p| (p.login, p.role)).collect();
        StatusCode::NO_CONTENT.into_response()
    })
}

/// `POST {"head_ref", "head_sha", "head_repo", "base_ref", "number"?, "state"?,
/// "user"?}` -> `{"number"}`.
async fn add_pull(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo)): Path<(String, String)>,
    Json(mut pull): Json<PullData>,
) -> Response {
    edit(&sim, &owner, &repo, |data| {
        if pull.number == 0 {
            pull.number = data.next_pull_number();
        }
        let number = pull.number;
        data.pulls.retain(|p| p.number != number);
        data.pulls.push(pull);
        data.pulls.sort_by_key(|p| p.number);
        (StatusCode::CREATED, Json(json!({"number": number}))).into_response()
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    user: String,
    body: String,
}

/// `POST [{"user", "body"}]`: appends comments to an issue or pull request.
async fn add_comments(
    State(sim): State<Arc<Sim>>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(comments): Json<Vec<NewComment>>,
) -> Response {
    let ids: Vec<u64> = {
        let mut world = sim.lock();
        comments.iter().map(|_| world.next_id()).collect()
    };
    edit(&sim, &owner, &repo, |data| {
        let list = data.comments.entry(number).or_default();
        for (c, id) in comments.into_iter().zip(ids) {
            list.push(CommentData {
                id,
                user: c.user,
                body: c.body,
            });
        }
        StatusCode::CREATED.into_response()
    })
}
