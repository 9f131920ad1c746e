//! Serde types for the repository endpoints the policy checks read (repository, branch,
//! branch protection, collaborators, permission, pull requests, issue comments), reduced
//! to the fields the checks use; missing optional fields parse (older GHES).

use serde::Deserialize;

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
}
