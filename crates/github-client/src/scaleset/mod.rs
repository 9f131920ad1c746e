//! A blocking client of GitHub's runner scale-set API (the Actions service), beside the
//! REST client: the admin connection and its renewal, scale sets, runner groups, JIT
//! runners and agents here; message sessions and the queue in [`session`]; the values
//! and their wire forms in [`models`].
//!
//! The chain: a registration token from the REST API, traded at
//! `{api}/actions/runner-registration` (`RemoteAuth`) for the Actions service URL and
//! an admin token; every later call goes to that URL with the admin token and
//! `api-version=6.0-preview`. Admin tokens expire: a 401 renews the connection once.

mod job_times;
pub mod models;
pub mod session;

use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::client::GithubClient;
use super::error::{GithubError, Result};
use super::retry::{backoff, RawResponse};
use super::transport::{Auth, Call, Transport};
use ghr_types::GithubPath;

pub use models::{
    JobEvent, JobTimes, Message, ScaleSet, ScaleSetJit, ScaleSetSpec, ServiceRunner, Statistics,
};
pub use session::Session;

use models::{List, WireConnection, WireJit, WireRunner, WireRunnerGroup, WireScaleSet};

const API_VERSION: &str = "6.0-preview";
const SCALE_SETS: &str = "_apis/runtime/runnerscalesets";
const RUNNER_GROUPS: &str = "_apis/runtime/runnergroups/";
const AGENTS: &str = "_apis/distributedtask/pools/0/agents";

/// Whether `error` says this GitHub has no scale-set API (older GHES): the charm then
/// keeps to its own runner pool.
pub fn is_unsupported(error: &GithubError) -> bool {
    matches!(error, GithubError::ScaleSetsUnavailable)
}

/// An admin connection to the Actions service. Cheap to clone, shareable across
/// threads; blocking, so async callers use `spawn_blocking`.
#[derive(Clone)]
pub struct ActionsService {
    inner: Arc<Inner>,
}

struct Inner {
    github: GithubClient,
    path: GithubPath,
    github_url: String,
    connection: RwLock<Arc<Transport>>,
    /// Held while renewing, so concurrent 401s renew once.
    renewing: Mutex<()>,
}

/// Shows where it connects, never a token.
impl std::fmt::Debug for ActionsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionsService")
            .field("github_url", &self.inner.github_url)
            .finish_non_exhaustive()
    }
}

impl ActionsService {
    /// Opens the admin connection for `path`, whose web URL is `github_url`
    /// (`https://github.com/acme` or `https://HOST/owner/repo`). A GitHub without the
    /// scale-set API fails with an error for which [`is_unsupported`] holds.
    pub fn connect(github: &GithubClient, path: &GithubPath, github_url: &str) -> Result<Self> {
        let transport = open_connection(github, path, github_url)?;
        Ok(ActionsService {
            inner: Arc::new(Inner {
                github: github.clone(),
                path: path.clone(),
                github_url: github_url.to_string(),
                connection: RwLock::new(Arc::new(transport)),
                renewing: Mutex::new(()),
            }),
        })
    }

    /// The path this connection serves, and its web URL: enough to connect again.
    pub fn path(&self) -> (&GithubPath, &str) {
        (&self.inner.path, &self.inner.github_url)
    }

    /// The runner group's id, `None` when there is no group of that name.
    pub fn runner_group_id(&self, name: &str) -> Result<Option<u64>> {
        let groups: List<WireRunnerGroup> = self.get_json(RUNNER_GROUPS, &[("groupName", name)])?;
        Ok(groups
            .value
            .into_iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
            .map(|g| g.id))
    }

    /// The scale set named `name` in the group, if there is one.
    pub fn scale_set(&self, group_id: u64, name: &str) -> Result<Option<ScaleSet>> {
        let group = group_id.to_string();
        let sets: List<WireScaleSet> =
            self.get_json(SCALE_SETS, &[("runnerGroupId", &group), ("name", name)])?;
        match sets.value.len() {
            0 | 1 => Ok(sets.value.into_iter().next().map(ScaleSet::from)),
            n => Err(GithubError::Unexpected {
                status: 200,
                message: format!("{n} runner scale sets named {name:?} in group {group_id}"),
            }),
        }
    }

    pub fn create_scale_set(&self, spec: &ScaleSetSpec) -> Result<ScaleSet> {
        let response = self.admin("POST", SCALE_SETS, &[], Some(&spec.body(true)), None)?;
        let set: WireScaleSet = decode(expect(response, &[200, 201], "scale set")?)?;
        Ok(set.into())
    }

    /// Sets the name, group and labels of scale set `id` to `spec`'s.
    pub fn update_scale_set(&self, id: u64, spec: &ScaleSetSpec) -> Result<ScaleSet> {
        let path = format!("{SCALE_SETS}/{id}");
        let response = self.admin("PATCH", &path, &[], Some(&spec.body(false)), None)?;
        let set: WireScaleSet = decode(expect(response, &[200], &scale_set_named(id))?)?;
        Ok(set.into())
    }

    /// Scale set `id` with its statistics; `None` when it is gone.
    pub fn scale_set_by_id(&self, id: u64) -> Result<Option<ScaleSet>> {
        let path = format!("{SCALE_SETS}/{id}");
        let response = self.admin("GET", &path, &[], None, None)?;
        if response.status == 404 {
            return Ok(None);
        }
        let set: WireScaleSet = decode(expect(response, &[200], &scale_set_named(id))?)?;
        Ok(Some(set.into()))
    }

    /// Deletes scale set `id`; one already gone is not an error.
    pub fn delete_scale_set(&self, id: u64) -> Result<()> {
        let response = self.admin("DELETE", &format!("{SCALE_SETS}/{id}"), &[], None, None)?;
        expect(response, &[200, 204, 404], &scale_set_named(id)).map(drop)
    }

    /// The scale set `spec` describes: looked up by group and name, created when
    /// missing (or taken when a concurrent creator won), updated when its labels
    /// differ. A scale set of that name in another group is not seen: after a group
    /// change, move the old one with [`Self::update_scale_set`] or delete it.
    pub fn ensure_scale_set(&self, spec: &ScaleSetSpec) -> Result<ScaleSet> {
        let existing = match self.scale_set(spec.runner_group_id, &spec.name)? {
            Some(set) => set,
            None => match self.create_scale_set(spec) {
                Err(GithubError::Rejected { status: 409, .. }) => self
                    .scale_set(spec.runner_group_id, &spec.name)?
                    .ok_or_else(|| GithubError::Unexpected {
                        status: 409,
                        message: format!("scale set {:?} conflicts but is not listed", spec.name),
                    })?,
                created => return created,
            },
        };
        if existing.differs_from(spec) {
            log::info!("updating scale set {} ({})", existing.id, spec.name);
            return self.update_scale_set(existing.id, spec);
        }
        Ok(existing)
    }

    /// Registers the just-in-time runner `runner_name` in the scale set. A name in use
    /// is [`GithubError::Rejected`] (409).
    pub fn jit_config(
        &self,
        scale_set: u64,
        runner_name: &str,
        work_folder: &str,
    ) -> Result<ScaleSetJit> {
        let path = format!("{SCALE_SETS}/{scale_set}/generatejitconfig");
        let body = json!({ "name": runner_name, "workFolder": work_folder });
        let response = self.admin("POST", &path, &[], Some(&body), None)?;
        let jit: WireJit = decode(expect(response, &[200, 201], &scale_set_named(scale_set))?)?;
        let runner = jit.runner.ok_or_else(|| GithubError::Decode {
            endpoint: "generatejitconfig".into(),
            message: "no runner in the answer".into(),
        })?;
        Ok(ScaleSetJit {
            runner_id: ServiceRunner::from(runner).id,
            encoded: jit.encoded,
        })
    }

    /// The runner (agent) named `name`, if the service knows one.
    pub fn runner_by_name(&self, name: &str) -> Result<Option<ServiceRunner>> {
        let runners: List<WireRunner> = self.get_json(AGENTS, &[("agentName", name)])?;
        Ok(runners
            .value
            .into_iter()
            .map(ServiceRunner::from)
            .find(|r| r.name == name))
    }

    /// Unregisters runner `runner_id`; one already gone is not an error. A runner
    /// still running a job is [`GithubError::Rejected`].
    pub fn remove_runner(&self, runner_id: u64) -> Result<()> {
        let path = format!("{AGENTS}/{runner_id}");
        let response = self.admin("DELETE", &path, &[], None, None)?;
        expect(response, &[200, 204, 404], &format!("runner {runner_id}")).map(drop)
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        decode(expect(
            self.admin("GET", path, query, None, None)?,
            &[200],
            path,
        )?)
    }

    /// One call to the Actions service with the admin token; a 401 renews the
    /// connection and the call is sent once more.
    fn admin(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        retry: Option<&super::retry::RetryPolicy>,
    ) -> Result<RawResponse> {
        let send = |transport: &Transport, auth: Auth| {
            let url = service_url(transport, path, query);
            transport.call(&Call {
                method,
                url: &url,
                body,
                auth,
                retry,
                ..Call::default()
            })
        };
        let transport = self.connection();
        let response = send(&transport, Auth::Own)?;
        if response.status != 401 {
            return Ok(response);
        }
        let renewed = self.renew(&transport)?;
        send(&renewed, Auth::Own)
    }

    fn connection(&self) -> Arc<Transport> {
        let current = self.inner.connection.read();
        Arc::clone(&current.unwrap_or_else(|e| e.into_inner()))
    }

    /// A new admin connection in place of `stale`, unless another thread replaced it.
    fn renew(&self, stale: &Arc<Transport>) -> Result<Arc<Transport>> {
        let _renewing = self
            .inner
            .renewing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = self.connection();
        if !Arc::ptr_eq(&current, stale) {
            return Ok(current);
        }
        log::info!("Actions service admin token rejected; renewing the connection");
        let inner = &self.inner;
        let fresh = Arc::new(open_connection(
            &inner.github,
            &inner.path,
            &inner.github_url,
        )?);
        *inner.connection.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&fresh);
        Ok(fresh)
    }
}

/// A registration token, then `actions/runner-registration`: a transport to the
/// Actions service with the admin token. A fresh registration token may not be usable
/// at once, so a 401 or 403 there is retried with backoff.
fn open_connection(
    github: &GithubClient,
    path: &GithubPath,
    github_url: &str,
) -> Result<Transport> {
    let registration = github.registration_token(path)?;
    let rest = github.transport();
    let url = rest.url("actions/runner-registration");
    let body = json!({ "url": github_url, "runner_event": "register" });
    let policy = &rest.options().retry;
    let mut attempt = 1;
    let response = loop {
        let response = rest.call(&Call {
            method: "POST",
            url: &url,
            body: Some(&body),
            auth: Auth::RemoteAuth(&registration.token),
            ..Call::default()
        })?;
        if !matches!(response.status, 401 | 403) || attempt >= policy.max_attempts {
            break response;
        }
        rest.options()
            .clock
            .sleep(backoff(policy, attempt, rand::random::<f64>()));
        attempt += 1;
    };
    if response.status == 404 {
        return Err(GithubError::ScaleSetsUnavailable);
    }
    let connection: WireConnection = decode(expect(response, &[200, 201], "runner registration")?)?;
    rest.sibling(&connection.url, connection.token)
}

/// `path` under the service URL, with `query` and the API version.
fn service_url(transport: &Transport, path: &str, query: &[(&str, &str)]) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in query {
        pairs.append_pair(key, value);
    }
    pairs.append_pair("api-version", API_VERSION);
    format!("{}?{}", transport.url(path), pairs.finish())
}

fn scale_set_named(id: u64) -> String {
    format!("runner scale set {id}")
}

/// Maps the Actions service's statuses: `ok` are successes; `what` names the object of
/// a 404. Its error bodies are `{"typeName", "message"}`; both go into the error.
pub(crate) fn expect(response: RawResponse, ok: &[u16], what: &str) -> Result<RawResponse> {
    let status = response.status;
    if ok.contains(&status) {
        return Ok(response);
    }
    let message = match serde_json::from_str::<Value>(&response.body)
        .ok()
        .and_then(|v| v.get("typeName")?.as_str().map(str::to_string))
    {
        Some(kind) => format!("{kind}: {}", response.message()),
        None => response.message(),
    };
    Err(match status {
        404 => GithubError::ServiceNotFound { what: what.into() },
        403 => GithubError::Forbidden { status, message },
        400 | 409 | 422 => GithubError::Rejected { status, message },
        _ => GithubError::Unexpected { status, message },
    })
}

/// Parses a body. serde quotes a value of the wrong type in its message, and these
/// bodies carry tokens: quoted text is left out of the error.
pub(crate) fn decode<T: DeserializeOwned>(response: RawResponse) -> Result<T> {
    serde_json::from_str(&response.body).map_err(|e| {
        let shown = e.to_string();
        let message = match (shown.find('"'), shown.rfind('"')) {
            (Some(first), Some(last)) if first < last => {
                format!("{}\"..\"{}", &shown[..first], &shown[last + 1..])
            }
            _ => shown,
        };
        GithubError::Decode {
            endpoint: "Actions service".into(),
            message,
        }
    })
}

#[cfg(test)]
mod tests;
