//! The actions service's handlers for runner groups, scale sets, JIT runners and
//! agents: each authorizes the call, then reads or changes the world.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::registration::service_url;
use super::world::ScaleSet;
use super::{authorize, id_param, messages, set_in, Answer, Params, Refusal};
use crate::runner_tokens::random_token;
use crate::runners::{encode_jit_config, origin};
use crate::state::{Scope, SimRunner, World};
use crate::Sim;

type Call = (State<Arc<Sim>>, Path<Params>, Query<Params>, HeaderMap);

fn group_name(world: &World, scope: &Scope, id: u64) -> Option<String> {
    match scope {
        Scope::Org(org) => world
            .orgs
            .get(org)?
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.name.clone()),
        Scope::Repo(_) => (id == 1).then(|| "default".to_string()),
    }
}

/// A scale set as the service shows it, statistics included.
pub(super) fn set_view(world: &World, set: &ScaleSet, headers: &HeaderMap) -> Value {
    let group = group_name(world, &set.scope, set.group_id).unwrap_or_default();
    let url = service_url(headers, &set.scope);
    messages::scale_set(set, &group, &url, world.statistics(set.id))
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        let message = format!("invalid request body: {e}");
        Refusal::new(StatusCode::BAD_REQUEST, "ArgumentException", message)
    })
}

pub(super) async fn groups((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    let world = sim.lock();
    let scope = authorize(&world, &headers, &q, &p["tenant"])?;
    let groups: Vec<(u64, String)> = match &scope {
        Scope::Org(org) => world.orgs.get(org).map_or(vec![], |gs| {
            gs.iter().map(|g| (g.id, g.name.clone())).collect()
        }),
        Scope::Repo(_) => vec![(1, "default".into())],
    };
    let wanted = q.get("groupName");
    let items = groups
        .into_iter()
        .filter(|(_, name)| wanted.is_none_or(|w| w.eq_ignore_ascii_case(name)))
        .map(|(id, name)| {
            let size = world
                .runners
                .values()
                .filter(|r| r.scope == scope && r.group_id == id)
                .count();
            json!({"id": id, "name": name, "size": size, "isDefaultGroup": id == 1})
        })
        .collect();
    Ok(Json(messages::list(items)).into_response())
}

pub(super) async fn list_sets((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    let world = sim.lock();
    let scope = authorize(&world, &headers, &q, &p["tenant"])?;
    let group: Option<u64> = q.get("runnerGroupId").and_then(|g| g.parse().ok());
    let items = world
        .scalesets
        .sets
        .values()
        .filter(|s| s.scope == scope)
        .filter(|s| group.is_none_or(|g| s.group_id == g))
        .filter(|s| q.get("name").is_none_or(|n| &s.name == n))
        .map(|s| set_view(&world, s, &headers))
        .collect();
    Ok(Json(messages::list(items)).into_response())
}

pub(super) async fn get_set((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    let world = sim.lock();
    let scope = authorize(&world, &headers, &q, &p["tenant"])?;
    let set = set_in(&world, &scope, id_param(&p, "id")?)?;
    Ok(Json(set_view(&world, set, &headers)).into_response())
}

#[derive(Deserialize)]
struct LabelBody {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SettingBody {
    ephemeral: Option<bool>,
    disable_update: Option<bool>,
}

/// A create or a PATCH: what is absent stays as it is (or takes its default).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SetBody {
    name: Option<String>,
    runner_group_id: Option<u64>,
    runner_group_name: Option<String>,
    labels: Option<Vec<LabelBody>>,
    #[serde(rename = "RunnerSetting", alias = "runnerSetting")]
    runner_setting: Option<SettingBody>,
}

/// The group a body names (by id, else by name), if it names one.
fn wanted_group(world: &World, scope: &Scope, body: &SetBody) -> Result<Option<u64>, Refusal> {
    let missing = || {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "RunnerGroupNotFoundException",
            "runner group not found",
        )
    };
    match (
        body.runner_group_id.filter(|g| *g > 0),
        &body.runner_group_name,
    ) {
        (Some(id), _) if world.group_exists(scope, id) => Ok(Some(id)),
        (Some(_), _) => Err(missing()),
        (None, Some(name)) if !name.is_empty() => world
            .group_id(scope, Some(name))
            .map(Some)
            .ok_or_else(missing),
        _ => Ok(None),
    }
}

/// Refuses a name another scale set of the group has.
fn name_free(
    world: &World,
    scope: &Scope,
    group: u64,
    name: &str,
    except: u64,
) -> Result<(), Refusal> {
    let taken = world
        .scalesets
        .sets
        .values()
        .any(|s| s.id != except && &s.scope == scope && s.group_id == group && s.name == name);
    let message = format!("A runner scale set named {name} already exists in the runner group");
    match taken {
        true => Err(Refusal::new(
            StatusCode::CONFLICT,
            "RunnerScaleSetExistsException",
            message,
        )),
        false => Ok(()),
    }
}

/// Applies a body's settings and labels to a scale set.
fn apply(set: &mut ScaleSet, body: SetBody) {
    if let Some(labels) = body.labels.filter(|l| !l.is_empty()) {
        set.labels = labels.into_iter().map(|l| l.name).collect();
    }
    if let Some(setting) = body.runner_setting {
        set.ephemeral = setting.ephemeral.unwrap_or(set.ephemeral);
        set.disable_update = setting.disable_update.unwrap_or(set.disable_update);
    }
}

fn name_of(body: &SetBody) -> Option<String> {
    body.name.clone().filter(|n| !n.trim().is_empty())
}

pub(super) async fn create_set(
    (State(sim), Path(p), Query(q), headers): Call,
    body: Bytes,
) -> Answer {
    let mut world = sim.lock();
    let scope = authorize(&world, &headers, &q, &p["tenant"])?;
    let body: SetBody = parse(&body)?;
    let name = name_of(&body).ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "ArgumentException",
            "name is required",
        )
    })?;
    let group = wanted_group(&world, &scope, &body)?.unwrap_or(1);
    name_free(&world, &scope, group, &name, 0)?;
    let id = world.next_id();
    let mut set = ScaleSet {
        id,
        name: name.clone(),
        scope,
        group_id: group,
        labels: vec![name],
        ephemeral: true,
        disable_update: false,
        created_at: Utc::now(),
        session: None,
    };
    apply(&mut set, body);
    world.scalesets.sets.insert(id, set);
    Ok(Json(set_view(&world, &world.scalesets.sets[&id], &headers)).into_response())
}

pub(super) async fn update_set(
    (State(sim), Path(p), Query(q), headers): Call,
    body: Bytes,
) -> Answer {
    let mut world = sim.lock();
    let scope = authorize(&world, &headers, &q, &p["tenant"])?;
    let id = id_param(&p, "id")?;
    let current = set_in(&world, &scope, id)?.clone();
    let body: SetBody = parse(&body)?;
    let group = wanted_group(&world, &scope, &body)?.unwrap_or(current.group_id);
    let name = name_of(&body).unwrap_or(current.name);
    name_free(&world, &scope, group, &name, id)?;
    let set = world.scalesets.sets.get_mut(&id).expect("found above");
    set.name = name;
    set.group_id = group;
    apply(set, body);
    Ok(Json(set_view(&world, &world.scalesets.sets[&id], &headers)).into_response())
}

pub(super) async fn delete_set((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    {
        let mut world = sim.lock();
        let scope = authorize(&world, &headers, &q, &p["tenant"])?;
        let id = set_in(&world, &scope, id_param(&p, "id")?)?.id;
        world.remove_scale_set(id, Utc::now());
    }
    sim.changed.notify_waiters();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JitBody {
    name: String,
    #[serde(default)]
    work_folder: String,
}

/// A runner of scale set `set`: ephemeral, JIT, with its name and labels as labels.
fn scale_set_runner(id: u64, name: String, set: &ScaleSet) -> SimRunner {
    let mut labels = vec![set.name.clone()];
    for label in &set.labels {
        if !labels.iter().any(|l| l.eq_ignore_ascii_case(label)) {
            labels.push(label.clone());
        }
    }
    SimRunner {
        id,
        name,
        scope: set.scope.clone(),
        labels,
        default_labels: 0,
        group_id: set.group_id,
        scale_set_id: Some(set.id),
        ephemeral: true,
        jit: true,
        busy: false,
        job_id: None,
        credential: random_token(40),
        session_started: false,
        last_contact: None,
        polls: 0,
    }
}

pub(super) async fn jit_config(
    (State(sim), Path(p), Query(q), headers): Call,
    body: Bytes,
) -> Answer {
    let made = {
        let mut world = sim.lock();
        let scope = authorize(&world, &headers, &q, &p["tenant"])?;
        let set = set_in(&world, &scope, id_param(&p, "id")?)?.clone();
        let body: JitBody = parse(&body)?;
        if body.name.trim().is_empty() {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "ArgumentException",
                "name is required",
            ));
        }
        if world.runner_by_name(&scope, &body.name).is_some() {
            let message = format!("A runner with the name {} already exists", body.name);
            let kind = "GitHub.DistributedTask.WebApi.AgentExistsException";
            return Err(Refusal::new(StatusCode::CONFLICT, kind, message));
        }
        let id = world.next_id();
        let runner = scale_set_runner(id, body.name, &set);
        let work = Some(body.work_folder).filter(|w| !w.is_empty());
        let work = work.as_deref().unwrap_or("_work");
        let encoded = encode_jit_config(&origin(&headers), &runner, work);
        let view = json!({"id": id, "name": runner.name, "runnerScaleSetId": set.id});
        world.runners.insert(id, runner);
        json!({"runner": view, "encodedJITConfig": encoded})
    };
    sim.changed.notify_waiters();
    Ok(Json(made).into_response())
}

fn agent_view(runner: &SimRunner, online: bool) -> Value {
    json!({
        "id": runner.id, "name": runner.name,
        "runnerScaleSetId": runner.scale_set_id.unwrap_or(0),
        "status": if online { "online" } else { "offline" }, "busy": runner.busy,
    })
}

fn agent_not_found() -> Refusal {
    let kind = "GitHub.DistributedTask.WebApi.AgentNotFoundException";
    Refusal::new(StatusCode::NOT_FOUND, kind, "No runner found")
}

pub(super) async fn list_agents((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    let world = sim.lock();
    let scope = authorize(&world, &headers, &q, &p["tenant"])?;
    let now = Instant::now();
    let items = world
        .runners
        .values()
        .filter(|r| r.scope == scope && q.get("agentName").is_none_or(|n| &r.name == n))
        .map(|r| agent_view(r, world.online(r, now)))
        .collect();
    Ok(Json(messages::list(items)).into_response())
}

/// Runner `id` of the call's scope.
fn agent<'a>(
    world: &'a World,
    p: &Params,
    q: &Params,
    headers: &HeaderMap,
) -> Result<&'a SimRunner, Refusal> {
    let scope = authorize(world, headers, q, &p["tenant"])?;
    let id = id_param(p, "id")?;
    world
        .runners
        .get(&id)
        .filter(|r| r.scope == scope)
        .ok_or_else(agent_not_found)
}

pub(super) async fn get_agent((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    let world = sim.lock();
    let runner = agent(&world, &p, &q, &headers)?;
    Ok(Json(agent_view(runner, world.online(runner, Instant::now()))).into_response())
}

pub(super) async fn delete_agent((State(sim), Path(p), Query(q), headers): Call) -> Answer {
    {
        let mut world = sim.lock();
        let runner = agent(&world, &p, &q, &headers)?;
        if runner.busy {
            let message = format!("Runner {} is still running a job", runner.name);
            let kind = "GitHub.DistributedTask.WebApi.JobStillRunningException";
            return Err(Refusal::new(StatusCode::BAD_REQUEST, kind, message));
        }
        let id = runner.id;
        world.runners.remove(&id);
    }
    sim.changed.notify_waiters();
    Ok(StatusCode::NO_CONTENT.into_response())
}
