//! An in-memory [`RepoApi`] for tests and benchmarks: repositories are plain data, and
//! an injected error makes every call fail the same way.

use std::collections::HashMap;
use std::sync::Mutex;

use super::github::{
    ApiError, Branch, BranchProtection, BypassAllowances, Collaborator, Comment, Login, Permission,
    PullRequest, PullRequestRef, RepoApi, RepoName, RepoRef, Repository, RequiredReviews, Slug,
};

/// One repository's state as the checks see it.
#[derive(Clone, Debug, Default)]
pub struct FakeRepo {
    pub default_branch: String,
    /// Branch name to its protection; `None` means the branch exists unprotected.
    pub branches: HashMap<String, Option<BranchProtection>>,
    pub outside_collaborators: Vec<Collaborator>,
    /// Users' permissions; anyone else has [`Permission::None`].
    pub permissions: HashMap<String, Permission>,
    pub pulls: Vec<PullRequest>,
    pub comments: HashMap<u64, Vec<Comment>>,
}

impl FakeRepo {
    /// A repository that passes every rule: `default_branch` protected with required
    /// reviews and no bypass, no outside collaborators.
    pub fn compliant(default_branch: &str) -> Self {
        let mut repo = FakeRepo {
            default_branch: default_branch.into(),
            ..Default::default()
        };
        repo.branches.insert(
            default_branch.into(),
            Some(reviews_required(BypassAllowances::default())),
        );
        repo
    }
}

/// A protection requiring reviews, with the given bypass allowances.
pub fn reviews_required(bypass: BypassAllowances) -> BranchProtection {
    BranchProtection {
        required_pull_request_reviews: Some(RequiredReviews {
            bypass_pull_request_allowances: Some(bypass),
        }),
    }
}

/// Bypass allowances from logins and slugs.
pub fn bypass(users: &[&str], teams: &[&str], apps: &[&str]) -> BypassAllowances {
    BypassAllowances {
        users: users
            .iter()
            .map(|u| Login {
                login: u.to_string(),
            })
            .collect(),
        teams: teams
            .iter()
            .map(|t| Slug {
                slug: t.to_string(),
            })
            .collect(),
        apps: apps
            .iter()
            .map(|a| Slug {
                slug: a.to_string(),
            })
            .collect(),
    }
}

pub fn collaborator(login: &str, role: &str) -> Collaborator {
    Collaborator {
        login: login.into(),
        role_name: role.into(),
    }
}

/// An open pull request from `head_repo:head_ref` at `sha` into `base_ref` of `base_repo`.
pub fn pull(
    number: u64,
    head_repo: &str,
    head_ref: &str,
    sha: &str,
    base_repo: &str,
    base_ref: &str,
) -> PullRequest {
    let side = |repo: &str, r: &str, sha: &str| PullRequestRef {
        ref_name: r.into(),
        sha: sha.into(),
        repo: Some(RepoRef {
            full_name: repo.into(),
        }),
    };
    PullRequest {
        number,
        head: side(head_repo, head_ref, sha),
        base: side(base_repo, base_ref, "0".repeat(40).as_str()),
    }
}

pub fn comment(user: &str, body: &str) -> Comment {
    Comment {
        body: Some(body.into()),
        user: Some(Login { login: user.into() }),
    }
}

#[derive(Default)]
struct State {
    repos: HashMap<String, FakeRepo>,
    fail_with: Option<ApiError>,
    calls: usize,
}

/// The fake GitHub: repositories keyed by `owner/name` (case-insensitive).
#[derive(Default)]
pub struct FakeRepoApi {
    state: Mutex<State>,
}

impl FakeRepoApi {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with_repo(self, name: &str, repo: FakeRepo) -> Self {
        self.set_repo(name, repo);
        self
    }
    pub fn set_repo(&self, name: &str, repo: FakeRepo) {
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(name.to_ascii_lowercase(), repo);
    }
    /// Makes every later call fail with `error` (`None` restores normal answers).
    pub fn fail_with(&self, error: Option<ApiError>) {
        self.state.lock().unwrap().fail_with = error;
    }
    /// How many calls were made so far.
    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }

    fn with<T>(
        &self,
        repo: &RepoName,
        f: impl FnOnce(&FakeRepo) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut state = self.state.lock().unwrap();
        state.calls += 1;
        if let Some(e) = &state.fail_with {
            return Err(e.clone());
        }
        let key = repo.to_string().to_ascii_lowercase();
        match state.repos.get(&key) {
            Some(r) => f(r),
            None => Err(ApiError::NotFound(format!("repository {repo}"))),
        }
    }
}

impl RepoApi for FakeRepoApi {
    fn repository(&self, repo: &RepoName) -> Result<Repository, ApiError> {
        self.with(repo, |r| {
            Ok(Repository {
                full_name: repo.to_string(),
                default_branch: r.default_branch.clone(),
            })
        })
    }
    fn branch(&self, repo: &RepoName, branch: &str) -> Result<Branch, ApiError> {
        self.with(repo, |r| match r.branches.get(branch) {
            Some(p) => Ok(Branch {
                name: branch.into(),
                protected: p.is_some(),
            }),
            None => Err(ApiError::NotFound(format!("branch {branch}"))),
        })
    }
    fn branch_protection(
        &self,
        repo: &RepoName,
        branch: &str,
    ) -> Result<Option<BranchProtection>, ApiError> {
        self.with(repo, |r| match r.branches.get(branch) {
            Some(p) => Ok(p.clone()),
            None => Err(ApiError::NotFound(format!("branch {branch}"))),
        })
    }
    fn outside_collaborators(&self, repo: &RepoName) -> Result<Vec<Collaborator>, ApiError> {
        self.with(repo, |r| Ok(r.outside_collaborators.clone()))
    }
    fn collaborator_permission(&self, repo: &RepoName, user: &str) -> Result<Permission, ApiError> {
        self.with(repo, |r| {
            Ok(r.permissions.get(user).copied().unwrap_or(Permission::None))
        })
    }
    fn open_pull_requests(&self, repo: &RepoName) -> Result<Vec<PullRequest>, ApiError> {
        self.with(repo, |r| Ok(r.pulls.clone()))
    }
    fn issue_comments(&self, repo: &RepoName, number: u64) -> Result<Vec<Comment>, ApiError> {
        self.with(repo, |r| {
            Ok(r.comments.get(&number).cloned().unwrap_or_default())
        })
    }
    fn check_token(&self) -> Result<(), ApiError> {
        let mut state = self.state.lock().unwrap();
        state.calls += 1;
        state.fail_with.clone().map_or(Ok(()), Err)
    }
}
