//! GitHub's self-hosted runner endpoints, for org (`/orgs/:org/...`) and repository
//! (`/repos/:owner/:repo/...`) paths alike; one handler serves both forms.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use super::api::error;
use super::runner_tokens::TokenKind;
use super::state::{Scope, SimRunner, World};
use super::Sim;

type Params = Path<HashMap<String, String>>;

pub fn routes() -> Router<Arc<Sim>> {
    let mut router = Router::new();
    for prefix in ["/orgs/:org", "/repos/:owner/:repo"] {
        let base = format!("{prefix}/actions/runners");
        router = router
            .route(&base, get(list))
            .route(&format!("{base}/downloads"), get(downloads))
            .route(
                &format!("{base}/registration-token"),
                post(registration_token),
            )
            .route(&format!("{base}/remove-token"), post(remove_token))
            .route(
                &format!("{base}/generate-jitconfig"),
                post(generate_jitconfig),
            )
            .route(
                &format!("{base}/:runner_id"),
                get(get_runner).merge(delete(delete_runner)),
            );
    }
    router.route("/orgs/:org/actions/runner-groups", get(groups))
}

fn scope_of(params: &HashMap<String, String>) -> Scope {
    match params.get("org") {
        Some(org) => Scope::Org(org.clone()),
        None => Scope::Repo(format!(
            "{}/{}",
            params.get("owner").map_or("", String::as_str),
            params.get("repo").map_or("", String::as_str)
        )),
    }
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// The scheme and authority clients used to reach us, for URLs we hand out.
pub fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A runner as GitHub's API shows it.
pub fn runner_json(world: &World, runner: &SimRunner, now: Instant) -> Value {
    let labels: Vec<Value> = runner
        .labels
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let kind = if i < runner.default_labels {
                "read-only"
            } else {
                "custom"
            };
            json!({"id": i + 1, "name": name, "type": kind})
        })
        .collect();
    json!({
        "id": runner.id,
        "name": runner.name,
        "os": "linux",
        "status": if world.online(runner, now) { "online" } else { "offline" },
        "busy": runner.busy,
        "ephemeral": runner.ephemeral,
        "runner_group_id": runner.group_id,
        "labels": labels,
    })
}

/// `per_page` (clamped to 1..=100, default 30) and `page` (from 1).
fn paging(query: &HashMap<String, String>) -> (usize, usize) {
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    (per_page, page)
}

/// GitHub's `Link` header for page `page` of `pages`.
pub fn link_header(base: &str, per_page: usize, page: usize, pages: usize) -> Option<String> {
    let at = |p: usize, rel: &str| format!("<{base}?per_page={per_page}&page={p}>; rel=\"{rel}\"");
    let mut links = Vec::new();
    if page > 1 {
        links.push(at(page - 1, "prev"));
    }
    if page < pages {
        links.push(at(page + 1, "next"));
        links.push(at(pages, "last"));
    }
    if page > 1 {
        links.push(at(1, "first"));
    }
    (!links.is_empty()).then(|| links.join(", "))
}

fn page_response(
    headers: &HeaderMap,
    uri: &OriginalUri,
    query: &HashMap<String, String>,
    key: &str,
    items: Vec<Value>,
) -> Response {
    let (per_page, page) = paging(query);
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let mut response = Json(json!({"total_count": total, key: slice})).into_response();
    let base = format!("{}{}", origin(headers), uri.path());
    if let Some(link) = link_header(&base, per_page, page, pages) {
        response
            .headers_mut()
            .insert("link", HeaderValue::from_str(&link).expect("ASCII link"));
    }
    response
}

async fn list(
    State(sim): State<Arc<Sim>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let scope = scope_of(&params);
    let world = sim.lock();
    if !world.scope_exists(&scope) {
        return not_found();
    }
    let now = Instant::now();
    let items = world
        .runners
        .values()
        .filter(|r| r.scope == scope)
        .map(|r| runner_json(&world, r, now))
        .collect();
    page_response(&headers, &uri, &query, "runners", items)
}

async fn get_runner(State(sim): State<Arc<Sim>>, Path(params): Params) -> Response {
    let scope = scope_of(&params);
    let id = params.get("runner_id").and_then(|v| v.parse::<u64>().ok());
    let world = sim.lock();
    match id
        .and_then(|id| world.runners.get(&id))
        .filter(|r| r.scope == scope)
    {
        Some(runner) => Json(runner_json(&world, runner, Instant::now())).into_response(),
        None => not_found(),
    }
}

async fn delete_runner(State(sim): State<Arc<Sim>>, Path(params): Params) -> Response {
    let scope = scope_of(&params);
    let id = params.get("runner_id").and_then(|v| v.parse::<u64>().ok());
    let mut world = sim.lock();
    let Some(runner) = id
        .and_then(|id| world.runners.get(&id))
        .filter(|r| r.scope == scope)
    else {
        return not_found();
    };
    if runner.busy {
        let message = format!(
            "Bad request - Runner \"{}\" is still running a job\"",
            runner.name
        );
        return error(StatusCode::UNPROCESSABLE_ENTITY, &message);
    }
    let id = runner.id;
    world.runners.remove(&id);
    drop(world);
    sim.changed.notify_waiters();
    StatusCode::NO_CONTENT.into_response()
}

async fn issue(sim: &Sim, params: &HashMap<String, String>, kind: TokenKind) -> Response {
    let scope = scope_of(params);
    let mut world = sim.lock();
    if !world.scope_exists(&scope) {
        return not_found();
    }
    let (token, expires_at) = world.issue_token(scope, kind, Utc::now());
    let body = json!({"token": token, "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)});
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn registration_token(State(sim): State<Arc<Sim>>, Path(params): Params) -> Response {
    issue(&sim, &params, TokenKind::Registration).await
}

async fn remove_token(State(sim): State<Arc<Sim>>, Path(params): Params) -> Response {
    issue(&sim, &params, TokenKind::Remove).await
}

async fn downloads(
    State(sim): State<Arc<Sim>>,
    Path(params): Params,
    headers: HeaderMap,
) -> Response {
    if !sim.lock().scope_exists(&scope_of(&params)) {
        return not_found();
    }
    let base = origin(&headers);
    let entries: Vec<Value> = ["x64", "arm64"]
        .iter()
        .map(|arch| {
            let filename = sim.tarball.filename(arch);
            json!({
                "os": "linux",
                "architecture": arch,
                "download_url": format!("{base}/_sim/runner-app/{filename}"),
                "filename": filename,
                "sha256_checksum": sim.tarball.sha256,
            })
        })
        .collect();
    Json(entries).into_response()
}

async fn generate_jitconfig(
    State(sim): State<Arc<Sim>>,
    Path(params): Params,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let scope = scope_of(&params);
    let invalid = |m: &str| error(StatusCode::UNPROCESSABLE_ENTITY, m);
    let Some(Json(body)) = body else {
        return invalid("Invalid request body");
    };
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let group_id = body.get("runner_group_id").and_then(Value::as_u64);
    let labels: Option<Vec<String>> = body.get("labels").and_then(Value::as_array).map(|ls| {
        ls.iter()
            .filter_map(|l| l.as_str().map(str::to_string))
            .collect()
    });
    let work = body
        .get("work_folder")
        .and_then(Value::as_str)
        .unwrap_or("_work")
        .to_string();
    let (Some(group_id), Some(labels)) = (group_id, labels) else {
        return invalid("name, runner_group_id and labels are required");
    };
    if name.is_empty() || labels.is_empty() || labels.len() > 100 {
        return invalid("name must be set and labels must have 1 to 100 entries");
    }
    let mut world = sim.lock();
    if !world.scope_exists(&scope) {
        return not_found();
    }
    if !world.group_exists(&scope, group_id) {
        return invalid("runner group not found");
    }
    if world.runner_by_name(&scope, &name).is_some() {
        return error(
            StatusCode::CONFLICT,
            "Already exists - A runner with the same name already exists.",
        );
    }
    let id = world.next_id();
    let runner = SimRunner {
        id,
        name: name.clone(),
        scope,
        labels,
        default_labels: 0,
        group_id,
        scale_set_id: None,
        ephemeral: true,
        jit: true,
        busy: false,
        job_id: None,
        credential: super::runner_tokens::random_token(40),
        session_started: false,
        last_contact: None,
        polls: 0,
    };
    let encoded = encode_jit_config(&origin(&headers), &runner, &work);
    let runner_view = runner_json(&world, &runner, Instant::now());
    world.runners.insert(id, runner);
    (
        StatusCode::CREATED,
        Json(json!({"runner": runner_view, "encoded_jit_config": encoded})),
    )
        .into_response()
}

/// The runner app's JIT config for `runner`: what `run.sh --jitconfig` decodes. Scale
/// sets hand out the same form, so the app cannot tell the two apart.
pub fn encode_jit_config(origin: &str, runner: &SimRunner, work_folder: &str) -> String {
    let config = json!({
        "url": origin, "runner_id": runner.id, "name": runner.name,
        "credential": runner.credential, "work_folder": work_folder,
    });
    base64::engine::general_purpose::STANDARD.encode(config.to_string())
}

async fn groups(
    State(sim): State<Arc<Sim>>,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let world = sim.lock();
    let org = params.get("org").cloned().unwrap_or_default();
    let Some(groups) = world.orgs.get(&org) else {
        return not_found();
    };
    let base = origin(&headers);
    let items = groups
        .iter()
        .map(|g| {
            json!({
                "id": g.id, "name": g.name, "visibility": "all", "default": g.id == 1,
                "runners_url": format!("{base}/orgs/{org}/actions/runner-groups/{}/runners", g.id),
                "inherited": false, "allows_public_repositories": false,
                "restricted_to_workflows": false, "selected_workflows": [],
                "workflow_restrictions_read_only": false,
            })
        })
        .collect();
    drop(world);
    page_response(&headers, &uri, &query, "runner_groups", items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_has_next_and_last_until_the_end() {
        let l = link_header("http://h/orgs/a/actions/runners", 100, 1, 3).unwrap();
        assert_eq!(
            l,
            "<http://h/orgs/a/actions/runners?per_page=100&page=2>; rel=\"next\", \
             <http://h/orgs/a/actions/runners?per_page=100&page=3>; rel=\"last\""
        );
        let last = link_header("http://h/x", 100, 3, 3).unwrap();
        assert!(!last.contains("next") && last.contains("rel=\"prev\""));
        assert_eq!(link_header("http://h/x", 100, 1, 1), None);
    }

    #[test]
    fn per_page_is_clamped() {
        let q = |pp: &str| HashMap::from([("per_page".to_string(), pp.to_string())]);
        assert_eq!(paging(&q("1000")).0, 100);
        assert_eq!(paging(&q("0")).0, 1);
        assert_eq!(paging(&HashMap::new()), (30, 1));
    }
}
