//! What the simulator knows about a repository beyond its name: default branch,
//! branches and their protection, outside collaborators, users' permissions, pull
//! requests and issue comments. Pure data and rules; [`super::repos`] renders them as
//! GitHub does and [`super::repo_admin`] changes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The roles GitHub gives collaborators, lowest first.
pub const ROLES: [&str; 5] = ["read", "triage", "write", "maintain", "admin"];

/// One repository's settings and content.
#[derive(Clone, Debug, Serialize)]
pub struct RepoData {
    pub id: u64,
    pub default_branch: String,
    pub branches: BTreeMap<String, BranchData>,
    /// Outside collaborators: login -> role (`read`, `triage`, `write`, `maintain`,
    /// `admin`, or a custom role's name).
    pub outside_collaborators: BTreeMap<String, String>,
    /// Any user's role on the repository (collaborators inside the org, members):
    /// login -> role. Outside collaborators need no entry here.
    pub roles: BTreeMap<String, String>,
    pub pulls: Vec<PullData>,
    /// Comments per issue or pull request number, oldest first.
    pub comments: BTreeMap<u64, Vec<CommentData>>,
}

impl RepoData {
    pub fn new(id: u64) -> Self {
        let mut branches = BTreeMap::new();
        branches.insert("main".to_string(), BranchData::new("main"));
        RepoData {
            id,
            default_branch: "main".into(),
            branches,
            outside_collaborators: BTreeMap::new(),
            roles: BTreeMap::new(),
            pulls: Vec::new(),
            comments: BTreeMap::new(),
        }
    }

    /// A user's role: the owner is admin, then explicit roles, then outside
    /// collaborators; `None` for a user the repository does not know.
    pub fn role_of(&self, owner: &str, user: &str) -> Option<String> {
        if user.eq_ignore_ascii_case(owner) {
            return Some("admin".into());
        }
        let find = |map: &BTreeMap<String, String>| {
            map.iter()
                .find(|(login, _)| login.eq_ignore_ascii_case(user))
                .map(|(_, role)| role.clone())
        };
        find(&self.roles).or_else(|| find(&self.outside_collaborators))
    }

    pub fn branch(&self, name: &str) -> Option<&BranchData> {
        self.branches.get(name)
    }

    pub fn next_pull_number(&self) -> u64 {
        let pulls = self.pulls.iter().map(|p| p.number);
        let issues = self.comments.keys().copied();
        pulls.chain(issues).max().unwrap_or(0) + 1
    }
}

/// GitHub's legacy permission for a role: `maintain` reads as `write`, `triage` as
/// `read`; an unknown custom role as `read` (the least it can be).
pub fn legacy_permission(role: &str) -> &'static str {
    match role {
        "admin" => "admin",
        "write" | "maintain" => "write",
        "none" => "none",
        _ => "read",
    }
}

/// The permission flags of a role, as `collaborator.permissions` shows them.
pub fn permission_flags(role: &str) -> [(&'static str, bool); 5] {
    let rank = ROLES.iter().position(|r| *r == role).unwrap_or(0);
    [
        ("pull", true),
        ("triage", rank >= 1),
        ("push", rank >= 2),
        ("maintain", rank >= 3),
        ("admin", rank >= 4),
    ]
}

#[derive(Clone, Debug, Serialize)]
pub struct BranchData {
    pub sha: String,
    pub protection: Option<Protection>,
}

impl BranchData {
    pub fn new(name: &str) -> Self {
        BranchData {
            sha: fake_sha(name),
            protection: None,
        }
    }
}

/// A branch protection rule, reduced to what the policy reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Protection {
    /// `None`: the rule does not require pull request reviews.
    #[serde(default)]
    pub required_reviews: Option<RequiredReviews>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredReviews {
    #[serde(default = "one")]
    pub required_approving_review_count: u32,
    /// Who may bypass the required reviews.
    #[serde(default)]
    pub bypass: Bypass,
}

fn one() -> u32 {
    1
}

/// Logins of users and slugs of teams and apps.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bypass {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub apps: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PullData {
    #[serde(default)]
    pub number: u64,
    /// `open` or `closed`.
    #[serde(default = "open")]
    pub state: String,
    pub head_ref: String,
    pub head_sha: String,
    /// `owner/name` of the head repository; `None` when the fork was deleted.
    pub head_repo: Option<String>,
    pub base_ref: String,
    /// The author; the head repository's owner when not given.
    #[serde(default)]
    pub user: Option<String>,
}

fn open() -> String {
    "open".into()
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CommentData {
    #[serde(default)]
    pub id: u64,
    pub user: String,
    pub body: String,
}

/// A stable 40-hex-digit commit id for a name (the simulator has no git objects).
pub fn fake_sha(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(seed.as_bytes()))[..40].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_to_permissions() {
        let mut repo = RepoData::new(1);
        repo.outside_collaborators
            .insert("alice".into(), "maintain".into());
        repo.roles.insert("bob".into(), "triage".into());
        assert_eq!(repo.role_of("acme", "ACME").as_deref(), Some("admin"));
        assert_eq!(repo.role_of("acme", "Alice").as_deref(), Some("maintain"));
        assert_eq!(repo.role_of("acme", "bob").as_deref(), Some("triage"));
        assert_eq!(repo.role_of("acme", "carol"), None);
        assert_eq!(legacy_permission("maintain"), "write");
        assert_eq!(legacy_permission("triage"), "read");
        assert_eq!(legacy_permission("custom"), "read");
        let flags = permission_flags("write");
        assert_eq!(flags[2], ("push", true));
        assert_eq!(flags[4], ("admin", false));
    }

    #[test]
    fn protection_documents_are_strict() {
        let p: Protection = serde_json::from_value(serde_json::json!({
            "required_reviews": {"bypass": {"users": ["boss"]}}
        }))
        .unwrap();
        let reviews = p.required_reviews.unwrap();
        assert_eq!(reviews.required_approving_review_count, 1);
        assert_eq!(reviews.bypass.users, vec!["boss".to_string()]);
        assert!(serde_json::from_value::<Protection>(serde_json::json!({"x": 1})).is_err());
        assert_eq!(fake_sha("main").len(), 40);
    }
}
