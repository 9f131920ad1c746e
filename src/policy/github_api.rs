//! [`RepoApi`] over GitHub's REST API with ureq: the few repository reads the checks
//! make, `Link` pagination, and GitHub's statuses mapped to [`ApiError`]. Kept small on
//! purpose: it moves onto the shared GitHub client's transport (retries, rate-limit
//! waits) once that exists.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;

use super::github::{
    ApiError, Branch, BranchProtection, Collaborator, Comment, Permission, PullRequest, RepoApi,
    RepoName, Repository,
};
use crate::config::Token;

/// Stops a `Link` chain that never ends: 100 pages of 100 is far beyond any repository's
/// outside collaborators, open pull requests or a pull request's comments.
const MAX_PAGES: usize = 100;

/// GitHub's REST API at one base URL, with the charm's token.
pub struct GithubApi {
    agent: ureq::Agent,
    base: Url,
    token: Token,
}

impl GithubApi {
    /// `api_base` as from [`crate::config::GithubUrl::api_base`]; `proxy` an optional
    /// `http://host:port` proxy for it.
    pub fn new(api_base: &str, token: Token, proxy: Option<&str>) -> Result<Self, ApiError> {
        let base = Url::parse(api_base)
            .map_err(|e| ApiError::Other(format!("GitHub API URL {api_base:?}: {e}")))?;
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(&format!("github-runner/{}", crate::VERSION));
        if let Some(proxy) = proxy {
            let proxy =
                ureq::Proxy::new(proxy).map_err(|e| ApiError::Other(format!("proxy: {e}")))?;
            builder = builder.proxy(proxy);
        }
        Ok(GithubApi {
            agent: builder.build(),
            base,
            token,
        })
    }

    /// `base` + percent-encoded path segments + query.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http(s) base URL")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn repo_url(&self, repo: &RepoName, rest: &[&str], query: &[(&str, &str)]) -> Url {
        let mut segments = vec!["repos", repo.owner(), repo.name()];
        segments.extend_from_slice(rest);
        self.url(&segments, query)
    }

    fn get(&self, url: &Url) -> Result<ureq::Response, ApiError> {
        let result = self
            .agent
            .request_url("GET", url)
            .set("Accept", "application/vnd.github+json")
            .set("X-GitHub-Api-Version", "2022-11-28")
            .set("Authorization", &format!("Bearer {}", self.token.expose()))
            .call();
        match result {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(status, response)) => {
                Err(status_error(url.path(), status, response))
            }
            Err(ureq::Error::Transport(t)) => {
                Err(ApiError::Other(format!("GET {}: {t}", url.path())))
            }
        }
    }

    fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T, ApiError> {
        let response = self.get(url)?;
        response
            .into_json()
            .map_err(|e| ApiError::Other(format!("GET {}: unexpected body: {e}", url.path())))
    }

    /// Every page of a list, following `Link: <...>; rel="next"` on the same origin only
    /// (the token is never sent anywhere else).
    fn get_all<T: DeserializeOwned>(&self, first: Url) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut url = first;
        for _ in 0..MAX_PAGES {
            let response = self.get(&url)?;
            let next = response.header("link").and_then(next_link);
            let page: Vec<T> = response.into_json().map_err(|e| {
                ApiError::Other(format!("GET {}: unexpected body: {e}", url.path()))
            })?;
            items.extend(page);
            let Some(next) = next else { return Ok(items) };
            let next = Url::parse(&next)
                .map_err(|e| ApiError::Other(format!("bad Link header URL: {e}")))?;
            if next.origin() != self.base.origin() {
                return Err(ApiError::Other(format!(
                    "Link header points to another origin: {}",
                    next.origin().ascii_serialization()
                )));
            }
            url = next;
        }
        Err(ApiError::Other(format!(
            "more than {MAX_PAGES} pages at {}",
            url.path()
        )))
    }
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// 404 -> NotFound; 403/429 that GitHub marks as a rate limit -> RateLimited; else Other.
fn status_error(path: &str, status: u16, response: ureq::Response) -> ApiError {
    let remaining = response.header("x-ratelimit-remaining").map(str::to_string);
    let reset = response
        .header("x-ratelimit-reset")
        .and_then(|v| v.parse::<i64>().ok());
    let retry_after = response.header("retry-after").map(str::to_string);
    let message = response
        .into_json::<ErrorBody>()
        .ok()
        .and_then(|b| b.message)
        .unwrap_or_default();
    rate_limit_or_status(
        path,
        status,
        remaining.as_deref(),
        reset,
        retry_after.as_deref(),
        &message,
    )
}

/// The pure part of [`status_error`], tested without a server.
pub fn rate_limit_or_status(
    path: &str,
    status: u16,
    remaining: Option<&str>,
    reset: Option<i64>,
    retry_after: Option<&str>,
    message: &str,
) -> ApiError {
    if status == 404 {
        return ApiError::NotFound(path.to_string());
    }
    let limited = matches!(status, 403 | 429)
        && (remaining == Some("0")
            || retry_after.is_some()
            || message.to_ascii_lowercase().contains("rate limit"));
    if limited {
        let when = match (retry_after, reset) {
            (Some(secs), _) => format!("retry after {secs} s"),
            (None, Some(epoch)) => chrono::DateTime::from_timestamp(epoch, 0).map_or_else(
                || format!("resets at {epoch}"),
                |t| format!("resets at {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
            ),
            (None, None) => "secondary rate limit".to_string(),
        };
        return ApiError::RateLimited(when);
    }
    ApiError::Other(
        format!("GET {path}: HTTP {status} {message}")
            .trim_end()
            .to_string(),
    )
}

#[derive(Deserialize)]
struct PermissionBody {
    permission: String,
}

impl RepoApi for GithubApi {
    fn repository(&self, repo: &RepoName) -> Result<Repository, ApiError> {
        self.get_json(&self.repo_url(repo, &[], &[]))
    }
    fn branch(&self, repo: &RepoName, branch: &str) -> Result<Branch, ApiError> {
        self.get_json(&self.repo_url(repo, &["branches", branch], &[]))
    }
    fn branch_protection(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<BranchProtection>, ApiError> {
        // GitHub answers 404 "Branch not protected" for a branch without a rule.
        match self.get_json(&self.repo_url(repo, &["branches", branch, "protection"], &[])) {
            Ok(p) => Ok(Some(p)),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn outside_collaborators(&self, repo: &RepoName) -> Result<Vec<Collaborator>, ApiError> {
        self.get_all(self.repo_url(
            repo,
            &["collaborators"],
            &[("affiliation", "outside"), ("per_page", "100")],
        ))
    }
    fn collaborator_permission(&self, repo: &RepoName, user: &str) -> Result<Permission, ApiError> {
        match self.get_json::<PermissionBody>(&self.repo_url(
            repo,
            &["collaborators", user, "permission"],
            &[],
        )) {
            Ok(body) => Ok(Permission::from_api(&body.permission)),
            // A user GitHub does not know has no permission at all.
            Err(ApiError::NotFound(_)) => Ok(Permission::None),
            Err(e) => Err(e),
        }
    }
    fn open_pull_requests(&self, repo: &RepoName) -> Result<Vec<PullRequest>, ApiError> {
        self.get_all(self.repo_url(repo, &["pulls"], &[("state", "open"), ("per_page", "100")]))
    }
    fn issue_comments(&self, repo: &RepoName, number: u64) -> Result<Vec<Comment>, ApiError> {
        let number = number.to_string();
        self.get_all(self.repo_url(
            repo,
            &["issues", &number, "comments"],
            &[("per_page", "100")],
        ))
    }
    fn check_token(&self) -> Result<(), ApiError> {
        // Free of rate-limit cost, and answers 401 to a bad token.
        self.get(&self.url(&["rate_limit"], &[])).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_others() {
        let h = r#"<https://api.github.com/repositories/1/collaborators?page=2>; rel="next", <https://api.github.com/repositories/1/collaborators?page=5>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/collaborators?page=2")
        );
        let last = r#"<https://x/a?page=1>; rel="prev", <https://x/a?page=1>; rel="first""#;
        assert_eq!(next_link(last), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn statuses_map_to_errors() {
        assert!(matches!(
            rate_limit_or_status("/p", 404, None, None, None, "Not Found"),
            ApiError::NotFound(_)
        ));
        let primary = rate_limit_or_status(
            "/p",
            403,
            Some("0"),
            Some(0),
            None,
            "API rate limit exceeded",
        );
        assert_eq!(
            primary,
            ApiError::RateLimited("resets at 1970-01-01 00:00:00 UTC".into())
        );
        let secondary = rate_limit_or_status("/p", 429, Some("10"), None, Some("60"), "slow down");
        assert_eq!(secondary, ApiError::RateLimited("retry after 60 s".into()));
        let by_message = rate_limit_or_status(
            "/p",
            403,
            None,
            None,
            None,
            "You have exceeded a secondary rate limit",
        );
        assert!(matches!(by_message, ApiError::RateLimited(_)));
        let forbidden = rate_limit_or_status(
            "/p",
            403,
            Some("4999"),
            None,
            None,
            "Resource not accessible",
        );
        assert_eq!(
            forbidden,
            ApiError::Other("GET /p: HTTP 403 Resource not accessible".into())
        );
    }

    #[test]
    fn urls_encode_segments_and_keep_the_ghes_prefix() {
        let api = GithubApi::new("https://ghes.example/api/v3", Token::new("t"), None).unwrap();
        let repo = RepoName::parse("o/r").unwrap();
        assert_eq!(
            api.repo_url(&repo, &["branches", "feature/x y", "protection"], &[])
                .as_str(),
            "https://ghes.example/api/v3/repos/o/r/branches/feature%2Fx%20y/protection"
        );
        assert_eq!(
            api.repo_url(
                &repo,
                &["collaborators"],
                &[("affiliation", "outside"), ("per_page", "100")]
            )
            .as_str(),
            "https://ghes.example/api/v3/repos/o/r/collaborators?affiliation=outside&per_page=100"
        );
    }
}
