//! The GitHub side of a runner: [`GithubRegistry`] implements the engine's
//! [`RunnerRegistry`] over the GitHub client, and [`GithubAppSource`] feeds the runner
//! application cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::GithubPath;
use crate::runner::app::{AppDownload, AppError, AppSource};
use crate::runner::RunnerName;
use github_client::scaleset::ActionsService;
use github_client::{DeleteOutcome, GithubClient, GithubError, JitRequest, RunnerId};
use reconcile::plan::ObservedRegistration;
use reconcile::ports::{Credential, Deletion, PortError, PortResult, RunnerRegistry};

/// The runner group every repository runner belongs to, and the fallback for orgs.
pub const DEFAULT_GROUP_ID: u64 = 1;

/// The unit's runner scale set (on demand): its runners get their JIT config there.
#[derive(Clone)]
pub struct ScaleSetLink {
    pub service: Arc<ActionsService>,
    pub id: u64,
}

pub struct GithubRegistry {
    pub client: GithubClient,
    pub path: GithubPath,
    pub labels: Vec<String>,
    pub group_id: u64,
    /// On demand: where new runners register instead of the REST JIT endpoint.
    pub scale_set: Option<ScaleSetLink>,
    /// Where the org runner group's id is kept between hooks (see [`group_id`]).
    group_file: PathBuf,
}

impl GithubRegistry {
    pub fn new(
        client: GithubClient,
        path: GithubPath,
        labels: Vec<String>,
        group_file: PathBuf,
    ) -> PortResult<Self> {
        let group_id = group_id(&client, &path, &group_file)?;
        Ok(GithubRegistry {
            client,
            path,
            labels,
            group_id,
            scale_set: None,
            group_file,
        })
    }

    fn forget_group(&self) {
        let _ = std::fs::remove_file(&self.group_file);
    }
}

/// The runner group id kept for an org and a group name.
#[derive(Serialize, Deserialize)]
struct KnownGroup {
    org: String,
    group: String,
    id: u64,
}

/// The runner group's id, asked of GitHub once and then kept in `file`, so that a
/// reconcile with nothing to create costs one request (the runner list). A failed
/// registration forgets it, in case the group was made anew under its name.
fn group_id(client: &GithubClient, path: &GithubPath, file: &Path) -> PortResult<u64> {
    let GithubPath::Org { org, group } = path else {
        return Ok(DEFAULT_GROUP_ID);
    };
    let kept: Option<KnownGroup> = std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(known) = kept.filter(|k| k.org == *org && k.group == *group) {
        return Ok(known.id);
    }
    let id = resolve_group(client, path)?;
    let known = KnownGroup {
        org: org.clone(),
        group: group.clone(),
        id,
    };
    // Best effort: without the file the next hook asks GitHub again.
    let _ = fs_state::write_atomic(
        file,
        &serde_json::to_vec(&known).expect("serializable"),
        0o600,
    );
    Ok(id)
}

/// The one reading of a GitHub failure: what only the operator can fix (a rejected
/// token, a path the token cannot see, a refusal) blocks the unit, naming it; the rest
/// wait for the next reconcile. The typed error stays the source.
pub fn port_error(e: GithubError) -> PortError {
    let error = match &e {
        GithubError::TokenRejected => PortError::needs_operator(
            "token rejected by GitHub (401): it is wrong, expired or revoked; set a valid \
             one in the token option, or check the github-app-* options",
        ),
        GithubError::PathNotFound { .. } | GithubError::Forbidden { .. } => {
            PortError::needs_operator(e.to_string())
        }
        // A GitHub that fails for a while is not the App's fault.
        GithubError::AppAuth { status, .. } if *status >= 500 => {
            PortError::transient(e.to_string())
        }
        GithubError::AppKey(_) | GithubError::AppAuth { .. } => PortError::needs_operator(
            format!("{e}; check github-app-client-id (or -id), github-app-installation-id and github-app-private-key"),
        ),
        _ => PortError::transient(e.to_string()),
    };
    error.with_source(e)
}

/// A failed `generate-jitconfig`, read with what the call was for: a refusal means the
/// token may not register runners on `path`; a rejected request for an org whose runner
/// group `group_now` no longer finds means the group is gone (both for the operator).
fn registration_error(
    e: GithubError,
    path: &GithubPath,
    group_now: impl FnOnce() -> PortResult<u64>,
) -> PortError {
    match &e {
        GithubError::Forbidden { .. } => PortError::needs_operator(format!(
            "the token lacks the permission to register runners on {path} ({e}); give it \
             the repository's Administration or the org's Self-hosted runners permission \
             (write), or the repo or admin:org scope"
        ))
        .with_source(e),
        GithubError::Rejected { .. } if matches!(path, GithubPath::Org { .. }) => {
            match group_now() {
                Err(gone) if gone.needs_operator_fix() => gone,
                _ => port_error(e),
            }
        }
        _ => port_error(e),
    }
}

/// The runner application cache's failure: GitHub's own read as any other GitHub call.
pub fn app_port_error(e: AppError) -> PortError {
    match e {
        AppError::Download(github) => port_error(github).context("runner application download"),
        other => PortError::transient_from(other),
    }
}

impl RunnerRegistry for GithubRegistry {
    fn list(&self) -> PortResult<Vec<ObservedRegistration>> {
        let runners = self.client.list_runners(&self.path).map_err(port_error)?;
        Ok(runners
            .into_iter()
            .map(|r| ObservedRegistration {
                id: r.id.0,
                online: r.is_online(),
                busy: r.busy,
                name: r.name,
            })
            .collect())
    }

    fn register(&self, name: &RunnerName) -> PortResult<Credential> {
        if let Some(link) = &self.scale_set {
            let jit = link
                .service
                .jit_config(link.id, name.as_str(), "_work")
                .map_err(|e| port_error(e).context("scale set runner"))?;
            return Ok(Credential::Jit {
                id: jit.runner_id,
                encoded: jit.encoded,
            });
        }
        let request = JitRequest {
            name: name.clone(),
            runner_group_id: self.group_id,
            labels: self.labels.clone(),
            work_folder: "_work".into(),
        };
        match self.client.generate_jitconfig(&self.path, &request) {
            Ok(jit) => Ok(Credential::Jit {
                id: jit.runner.id.0,
                encoded: jit.encoded_jit_config,
            }),
            // Older GitHub Enterprise Server: register from inside with config.sh.
            Err(GithubError::JitUnavailable) => {
                let token = self.client.registration_token(&self.path).map_err(|e| {
                    registration_error(e, &self.path, || resolve_group(&self.client, &self.path))
                })?;
                Ok(Credential::RegistrationToken(token.token))
            }
            Err(e) => {
                self.forget_group();
                Err(registration_error(e, &self.path, || {
                    resolve_group(&self.client, &self.path)
                }))
            }
        }
    }

    fn delete(&self, id: u64) -> PortResult<Deletion> {
        match self
            .client
            .delete_runner(&self.path, RunnerId(id))
            .map_err(port_error)?
        {
            DeleteOutcome::Deleted => Ok(Deletion::Deleted),
            DeleteOutcome::NotFound => Ok(Deletion::NotFound),
            DeleteOutcome::Busy => Ok(Deletion::Busy),
        }
    }
}

/// Resolves an org's runner group name to its id; repositories use the default group.
pub fn resolve_group(client: &GithubClient, path: &GithubPath) -> PortResult<u64> {
    match path {
        GithubPath::Repo { .. } => Ok(DEFAULT_GROUP_ID),
        GithubPath::Org { org, group } => client
            .runner_group_id(org, group)
            .map_err(port_error)?
            .ok_or_else(|| missing_group(org, group)),
    }
}

/// An org's runner group that GitHub does not have: only the operator can make it.
fn missing_group(org: &str, group: &str) -> PortError {
    PortError::needs_operator(format!(
        "runner group {group:?} not found in {org}: create it on GitHub or change the group \
         option"
    ))
}

pub struct GithubAppSource<'a> {
    pub client: &'a GithubClient,
    pub path: &'a GithubPath,
}

impl AppSource for GithubAppSource<'_> {
    fn downloads(&self) -> Result<Vec<AppDownload>, GithubError> {
        let list = self.client.runner_downloads(self.path)?;
        Ok(list
            .into_iter()
            .map(|d| AppDownload {
                os: d.os,
                architecture: d.architecture,
                download_url: d.download_url,
                filename: d.filename,
                sha256: d.sha256_checksum,
            })
            .collect())
    }

    fn fetch(&self, download: &AppDownload, dest: &Path) -> Result<(), GithubError> {
        let sha = download.sha256.as_deref().unwrap_or_default();
        self.client.download(&download.download_url, dest, sha)
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
