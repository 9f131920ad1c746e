//! The typed facade: one method per runner endpoint, for org and repository paths,
//! mapping each endpoint's statuses to values or [`GithubError`]s.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::app_auth::Credential;
use super::error::{GithubError, Result};
use super::models::{
    DeleteOutcome, JitConfig, JitRequest, RateLimit, RegistrationToken, Runner, RunnerDownload,
    RunnerGroup, RunnerGroupPage, RunnerId, RunnerPage,
};
use super::retry::RawResponse;
use super::transport::{ClientOptions, Transport};
use ghr_types::proxy::ProxyConfig;
use ghr_types::{GithubPath, Token};

/// A safety net against a server whose `Link` never ends.
const MAX_PAGES: usize = 1000;

/// The GitHub client. Cheap to clone; blocking, so async callers use `spawn_blocking`.
#[derive(Clone)]
pub struct GithubClient {
    transport: Arc<Transport>,
}

impl GithubClient {
    pub fn new(api_base: &str, token: Token, proxy: &ProxyConfig) -> Result<Self> {
        Self::with_options(api_base, token, proxy, ClientOptions::default())
    }

    pub fn with_options(
        api_base: &str,
        token: Token,
        proxy: &ProxyConfig,
        options: ClientOptions,
    ) -> Result<Self> {
        Self::with_credential(api_base, Credential::Token(token), proxy, options)
    }

    /// A client acting with `credential`: a fixed token, or a GitHub App installation
    /// whose tokens it mints and renews itself. An unusable App key fails here
    /// ([`GithubError::AppKey`]), before any request.
    pub fn with_credential(
        api_base: &str,
        credential: Credential,
        proxy: &ProxyConfig,
        options: ClientOptions,
    ) -> Result<Self> {
        let transport = Transport::with_credential(api_base, credential, proxy, options)?;
        Ok(GithubClient {
            transport: Arc::new(transport),
        })
    }

    /// A token for `config.sh` (valid one hour).
    pub fn registration_token(&self, path: &GithubPath) -> Result<RegistrationToken> {
        let url = self.transport.url(&format!(
            "{}/actions/runners/registration-token",
            path.api_prefix()
        ));
        self.call_json("POST", &url, None, path, &[201])
    }

    /// A token for `config.sh remove`.
    pub fn remove_token(&self, path: &GithubPath) -> Result<RegistrationToken> {
        let url = self.transport.url(&format!(
            "{}/actions/runners/remove-token",
            path.api_prefix()
        ));
        self.call_json("POST", &url, None, path, &[201])
    }

    pub fn runner_downloads(&self, path: &GithubPath) -> Result<Vec<RunnerDownload>> {
        let url = self
            .transport
            .url(&format!("{}/actions/runners/downloads", path.api_prefix()));
        self.call_json("GET", &url, None, path, &[200])
    }

    /// Every runner registered on the path, all pages.
    pub fn list_runners(&self, path: &GithubPath) -> Result<Vec<Runner>> {
        let first = self.transport.url(&format!(
            "{}/actions/runners?per_page=100",
            path.api_prefix()
        ));
        self.paginate(&first, path, |page: RunnerPage| page.runners)
    }

    /// `None` when GitHub no longer knows the runner.
    pub fn get_runner(&self, path: &GithubPath, id: RunnerId) -> Result<Option<Runner>> {
        let url = self
            .transport
            .url(&format!("{}/actions/runners/{id}", path.api_prefix()));
        let response = self.transport.request("GET", &url, None)?;
        if response.status == 404 {
            return Ok(None);
        }
        let response = check(response, path, &[200])?;
        decode(&response, "get runner").map(Some)
    }

    pub fn delete_runner(&self, path: &GithubPath, id: RunnerId) -> Result<DeleteOutcome> {
        let url = self
            .transport
            .url(&format!("{}/actions/runners/{id}", path.api_prefix()));
        let response = self.transport.request("DELETE", &url, None)?;
        match response.status {
            204 => Ok(DeleteOutcome::Deleted),
            404 => Ok(DeleteOutcome::NotFound),
            422 => Ok(DeleteOutcome::Busy),
            _ => check(response, path, &[]).map(|_| DeleteOutcome::Deleted),
        }
    }

    /// The org's runner groups, all pages.
    pub fn runner_groups(&self, org: &str) -> Result<Vec<RunnerGroup>> {
        let path = GithubPath::Org {
            org: org.to_string(),
            group: String::new(),
        };
        let first = self
            .transport
            .url(&format!("orgs/{org}/actions/runner-groups?per_page=100"));
        self.paginate(&first, &path, |page: RunnerGroupPage| page.runner_groups)
    }

    pub fn runner_group_id(&self, org: &str, name: &str) -> Result<Option<u64>> {
        Ok(self
            .runner_groups(org)?
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| g.id))
    }

    /// Registers an ephemeral runner at once and returns its start-up config.
    /// A 404 is [`GithubError::JitUnavailable`] (older GHES), not a missing path.
    pub fn generate_jitconfig(&self, path: &GithubPath, request: &JitRequest) -> Result<JitConfig> {
        let url = self.transport.url(&format!(
            "{}/actions/runners/generate-jitconfig",
            path.api_prefix()
        ));
        let body = serde_json::to_value(request).expect("JitRequest serialises");
        let response = self.transport.request("POST", &url, Some(&body))?;
        if response.status == 404 {
            return Err(GithubError::JitUnavailable);
        }
        let response = check(response, path, &[201])?;
        decode(&response, "generate-jitconfig")
    }

    /// Fetches the runner tarball to `dest`, verified against `expected_sha256`.
    pub fn download(&self, url: &str, dest: &Path, expected_sha256: &str) -> Result<()> {
        self.transport.download(url, dest, expected_sha256, None)
    }

    /// Fetches one entry of [`Self::runner_downloads`], verified against its checksum and
    /// authorised by its `temp_download_token` when it has one (GHES).
    pub fn download_runner_app(&self, app: &RunnerDownload, dest: &Path) -> Result<()> {
        let checksum = app
            .sha256_checksum
            .as_deref()
            .ok_or_else(|| GithubError::Decode {
                endpoint: "runner downloads".into(),
                message: format!("no sha256_checksum for {}", app.filename),
            })?;
        self.transport.download(
            &app.download_url,
            dest,
            checksum,
            app.temp_download_token.as_ref(),
        )
    }

    /// The transport, for the other endpoint families' facades ([`super::repos`]).
    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        self.transport.last_rate_limit()
    }

    /// HTTP requests this client (and its clones) sent, retries included.
    pub fn request_count(&self) -> u64 {
        self.transport.request_count()
    }

    fn call_json<T: DeserializeOwned>(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
        path: &GithubPath,
        ok: &[u16],
    ) -> Result<T> {
        let response = check(self.transport.request(method, url, body)?, path, ok)?;
        decode(&response, url_path(url))
    }

    fn paginate<P: DeserializeOwned, T>(
        &self,
        first: &str,
        path: &GithubPath,
        items: impl Fn(P) -> Vec<T>,
    ) -> Result<Vec<T>> {
        let mut all = Vec::new();
        let mut next = Some(first.to_string());
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(GithubError::Unexpected {
                    status: 200,
                    message: "pagination does not end".into(),
                });
            }
            let response = check(self.transport.request("GET", &url, None)?, path, &[200])?;
            all.extend(items(decode(&response, url_path(first))?));
            if let Some(link) = response.header("link").and_then(next_link) {
                next = Some(self.transport.rebase(&link)?);
            }
        }
        Ok(all)
    }
}

fn url_path(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url)
}

/// Maps the statuses every endpoint shares; `ok` lists the success statuses. Rate
/// limits were handled by the transport already: a 403 here is a refusal.
pub(crate) fn check(
    response: RawResponse,
    path: &dyn std::fmt::Display,
    ok: &[u16],
) -> Result<RawResponse> {
    let status = response.status;
    if ok.contains(&status) {
        return Ok(response);
    }
    let message = response.message();
    Err(match status {
        401 => GithubError::TokenRejected,
        404 => GithubError::PathNotFound {
            path: path.to_string(),
        },
        403 => GithubError::Forbidden { status, message },
        409 | 422 => GithubError::Rejected { status, message },
        _ => GithubError::Unexpected { status, message },
    })
}

fn decode<T: DeserializeOwned>(response: &RawResponse, endpoint: &str) -> Result<T> {
    serde_json::from_str(&response.body).map_err(|e| GithubError::Decode {
        endpoint: endpoint.to_string(),
        message: e.to_string(),
    })
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_can_be_shared_across_threads() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<GithubClient>();
    }

    #[test]
    fn finds_next_link() {
        let h = r#"<https://api.github.com/orgs/a/actions/runners?per_page=100&page=2>; rel="next", <https://api.github.com/orgs/a/actions/runners?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(h).unwrap(),
            "https://api.github.com/orgs/a/actions/runners?per_page=100&page=2"
        );
        assert_eq!(next_link(r#"<https://x/y?page=1>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn rebases_links_onto_the_configured_base() {
        let t = Transport::new(
            "http://127.0.0.1:9/api/v3",
            Token::new("t0ken-value"),
            &ProxyConfig::default(),
            Default::default(),
        )
        .unwrap();
        assert_eq!(
            t.rebase("http://127.0.0.1:5555/api/v3/orgs/a/actions/runners?page=2")
                .unwrap(),
            "http://127.0.0.1:9/api/v3/orgs/a/actions/runners?page=2"
        );
        assert!(t.rebase("http://evil/other/path").is_err());
    }
}
