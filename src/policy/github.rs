//! The narrow view of GitHub that the policy checks need: a trait over the few
//! repository reads they make, their typed results, and the error kinds the checks
//! must tell apart (rate limit, not found, anything else).

use std::fmt;

use serde::Deserialize;

/// A repository's `OWNER/NAME`, validated so it can go into a URL path as two segments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    /// Parses `OWNER/NAME`; both parts use GitHub's name characters only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (owner, name) = raw
            .split_once('/')
            .ok_or_else(|| format!("{raw:?} is not of the form OWNER/REPOSITORY"))?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(owner) || !valid(name) {
            return Err(format!("{raw:?} is not of the form OWNER/REPOSITORY"));
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

/// The parts of `GET /repos/{owner}/{repo}` the checks use.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Repository {
    pub full_name: String,
    pub default_branch: String,
}

/// The parts of `GET /repos/{owner}/{repo}/branches/{branch}` the checks use.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Branch {
    pub name: String,
    pub protected: bool,
}

/// A branch's protection (`GET .../branches/{branch}/protection`), reduced to reviews.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct BranchProtection {
    /// Absent when the rule does not require pull request reviews.
    #[serde(default)]
    pub required_pull_request_reviews: Option<RequiredReviews>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RequiredReviews {
    /// Absent when nobody may bypass the required reviews.
    #[serde(default)]
    pub bypass_pull_request_allowances: Option<BypassAllowances>,
}

/// Who may merge without the required reviews.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct BypassAllowances {
    #[serde(default)]
    pub users: Vec<Login>,
    #[serde(default)]
    pub teams: Vec<Slug>,
    #[serde(default)]
    pub apps: Vec<Slug>,
}

impl BypassAllowances {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.teams.is_empty() && self.apps.is_empty()
    }
}

/// A GitHub user as it appears inside other objects.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Login {
    pub login: String,
}

/// A team or app as it appears inside bypass allowances.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "RawSlug")]
pub struct Slug {
    pub slug: String,
}

/// GitHub's app ("integration") schema does not require `slug`; `name` is required.
#[derive(Deserialize)]
struct RawSlug {
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl From<RawSlug> for Slug {
    fn from(raw: RawSlug) -> Self {
        let slug = raw.slug.or(raw.name).unwrap_or_else(|| "(unnamed)".into());
        Slug { slug }
    }
}

/// An entry of `GET .../collaborators?affiliation=outside`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "RawCollaborator")]
pub struct Collaborator {
    pub login: String,
    /// `read`, `triage`, `write`, `maintain`, `admin` or a custom role's name.
    pub role_name: String,
}

/// The wire form: older GitHub Enterprise Server versions send only `permissions`.
#[derive(Deserialize)]
struct RawCollaborator {
    login: String,
    #[serde(default)]
    role_name: Option<String>,
    #[serde(default)]
    permissions: Option<RawPermissions>,
}

#[derive(Deserialize)]
struct RawPermissions {
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    maintain: bool,
    #[serde(default)]
    push: bool,
    #[serde(default)]
    triage: bool,
}

impl From<RawCollaborator> for Collaborator {
    fn from(raw: RawCollaborator) -> Self {
        let role_name = raw.role_name.filter(|r| !r.is_empty()).unwrap_or_else(|| {
            // No role at all is treated as the highest the flags allow, never as read by default.
            match raw.permissions {
                Some(p) if p.admin => "admin",
                Some(p) if p.maintain => "maintain",
                Some(p) if p.push => "write",
                Some(p) if p.triage => "triage",
                Some(_) => "read",
                None => "unknown",
            }
            .to_string()
        });
        Collaborator {
            login: raw.login,
            role_name,
        }
    }
}

/// A user's permission on a repository, from `GET .../collaborators/{user}/permission`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Admin,
    Write,
    Read,
    None,
}

impl Permission {
    /// GitHub's legacy permission names; `maintain` counts as write, `triage` as read.
    pub fn from_api(raw: &str) -> Permission {
        match raw {
            "admin" => Permission::Admin,
            "write" | "maintain" => Permission::Write,
            "read" | "triage" => Permission::Read,
            _ => Permission::None,
        }
    }
    /// Write or admin: the user may push to the repository.
    pub fn can_push(self) -> bool {
        matches!(self, Permission::Admin | Permission::Write)
    }
}

/// The parts of an open pull request the checks use.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub head: PullRequestRef,
    pub base: PullRequestRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PullRequestRef {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
    /// Null when the fork was deleted.
    #[serde(default)]
    pub repo: Option<RepoRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RepoRef {
    pub full_name: String,
}

/// An issue comment (pull requests share the issue comment API).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Comment {
    pub body: Option<String>,
    /// Null for comments of deleted users.
    pub user: Option<Login>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collaborator_role_falls_back_to_permission_flags() {
        let parse =
            |v: serde_json::Value| serde_json::from_value::<Collaborator>(v).unwrap().role_name;
        assert_eq!(
            parse(serde_json::json!({"login": "a", "role_name": "read"})),
            "read"
        );
        let flags = |push: bool| serde_json::json!({"login": "a", "permissions": {"pull": true, "push": push}});
        assert_eq!(parse(flags(true)), "write");
        assert_eq!(parse(flags(false)), "read");
        assert_eq!(
            parse(serde_json::json!({"login": "a"})),
            "unknown",
            "no information is not read"
        );
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
