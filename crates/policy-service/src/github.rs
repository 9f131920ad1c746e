//! The narrow view of GitHub that the policy checks need: a trait over the few
//! repository reads they make, their typed results, and the error kinds the checks
//! must tell apart (rate limit, not found, anything else).

use std::fmt;

use github_client::{GithubClient, GithubError};

pub use github_client::repo_models::{
    Branch, BranchProtection, BypassAllowances, Collaborator, Comment, Login, Permission,
    PullRequest, PullRequestRef, RepoRef, Repository, RequiredReviews, Slug,
};

/// A value that is not a repository's `OWNER/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not of the form OWNER/REPOSITORY")]
pub struct BadRepoName(pub String);

/// A repository's `OWNER/NAME`, validated so it can go into a URL path as two segments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    /// Parses `OWNER/NAME`; both parts use GitHub's name characters only.
    pub fn parse(raw: &str) -> Result<Self, BadRepoName> {
        let bad = || BadRepoName(raw.to_string());
        let (owner, name) = raw.split_once('/').ok_or_else(bad)?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(owner) || !valid(name) {
            return Err(bad());
        }
        Ok(RepoName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }
    pub fn owner(&self) -> &str {
        &self.owner
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// GitHub treats owner and repository names case-insensitively.
    pub fn same_as(&self, other: &RepoName) -> bool {
        self.owner.eq_ignore_ascii_case(&other.owner) && self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Why a GitHub read failed, as far as the checks care.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// GitHub's primary or secondary rate limit was hit; the text says until when.
    #[error("GitHub API rate limit exceeded: {0}")]
    RateLimited(String),
    /// The resource does not exist or the token may not see it (GitHub answers 404 to both).
    #[error("not found on GitHub: {0}")]
    NotFound(String),
    /// Anything else: transport failure, unexpected status or body.
    #[error("GitHub API error: {0}")]
    Other(String),
}

/// The GitHub reads the policy checks make. List methods return every page.
/// Implementations block; the server calls them on tokio's blocking pool.
pub trait RepoApi: Send + Sync {
    fn repository(&self, repo: &RepoName) -> Result<Repository, ApiError>;
    fn branch(&self, repo: &RepoName, branch: &str) -> Result<Branch, ApiError>;
    /// `Ok(None)` when the branch has no protection rule.
    fn branch_protection(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<BranchProtection>, ApiError>;
    fn outside_collaborators(&self, repo: &RepoName) -> Result<Vec<Collaborator>, ApiError>;
    /// A user who is not a collaborator (or does not exist) has [`Permission::None`].
    fn collaborator_permission(&self, repo: &RepoName, user: &str) -> Result<Permission, ApiError>;
    fn open_pull_requests(&self, repo: &RepoName) -> Result<Vec<PullRequest>, ApiError>;
    fn issue_comments(&self, repo: &RepoName, number: u64) -> Result<Vec<Comment>, ApiError>;
    /// Whether GitHub answers a request made with the token (for `/health`).
    fn check_token(&self) -> Result<(), ApiError>;
}

/// How a GitHub client error reads to the checks: 404 is [`ApiError::NotFound`], a
/// primary or secondary rate limit the transport would not wait out is
/// [`ApiError::RateLimited`], everything else [`ApiError::Other`].
pub fn api_error(error: GithubError) -> ApiError {
    match error {
        GithubError::PathNotFound { path } => ApiError::NotFound(path),
        e @ (GithubError::RateLimited { .. } | GithubError::SecondaryRateLimited { .. }) => {
            ApiError::RateLimited(e.to_string())
        }
        e => ApiError::Other(e.to_string()),
    }
}

/// The checks' view of GitHub on the shared client (its retries and rate-limit waits).
impl RepoApi for GithubClient {
    fn repository(&self, repo: &RepoName) -> Result<Repository, ApiError> {
        self.get_repository(repo.owner(), repo.name())
            .map_err(api_error)
    }
    fn branch(&self, repo: &RepoName, branch: &str) -> Result<Branch, ApiError> {
        self.get_branch(repo.owner(), repo.name(), branch)
            .map_err(api_error)
    }
    fn branch_protection(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<BranchProtection>, ApiError> {
        self.get_branch_protection(repo.owner(), repo.name(), branch)
            .map_err(api_error)
    }
    fn outside_collaborators(&self, repo: &RepoName) -> Result<Vec<Collaborator>, ApiError> {
        self.list_outside_collaborators(repo.owner(), repo.name())
            .map_err(api_error)
    }
    fn collaborator_permission(&self, repo: &RepoName, user: &str) -> Result<Permission, ApiError> {
        self.get_collaborator_permission(repo.owner(), repo.name(), user)
            .map_err(api_error)
    }
    fn open_pull_requests(&self, repo: &RepoName) -> Result<Vec<PullRequest>, ApiError> {
        self.list_open_pull_requests(repo.owner(), repo.name())
            .map_err(api_error)
    }
    fn issue_comments(&self, repo: &RepoName, number: u64) -> Result<Vec<Comment>, ApiError> {
        self.list_issue_comments(repo.owner(), repo.name(), number)
            .map_err(api_error)
    }
    fn check_token(&self) -> Result<(), ApiError> {
        self.verify_token().map_err(api_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_kinds() {
        let until = chrono::Utc::now();
        assert!(matches!(
            api_error(GithubError::PathNotFound { path: "o/r".into() }),
            ApiError::NotFound(_)
        ));
        assert!(matches!(
            api_error(GithubError::RateLimited { until }),
            ApiError::RateLimited(_)
        ));
        assert!(matches!(
            api_error(GithubError::SecondaryRateLimited {
                retry_after: std::time::Duration::from_secs(60)
            }),
            ApiError::RateLimited(_)
        ));
        assert!(matches!(
            api_error(GithubError::TokenRejected),
            ApiError::Other(_)
        ));
    }

    #[test]
    fn repo_names_are_checked() {
        assert_eq!(
            RepoName::parse("canonical/app.rs").unwrap().to_string(),
            "canonical/app.rs"
        );
        for bad in ["", "a", "a/", "/b", "a/b/c", "a/..", "a b/c", "a/b?x"] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        assert!(RepoName::parse("A/B")
            .unwrap()
            .same_as(&RepoName::parse("a/b").unwrap()));
    }
}
