//! The repository reads of the policy checks, on [`GithubClient`] and its transport
//! (retries, rate-limit waits, token scrubbing): repository, branch, branch protection,
//! outside collaborators, a user's permission, open pull requests and issue comments,
//! all pages of each list. A 404 is [`GithubError::PathNotFound`] naming the resource.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::client::{check, next_link, GithubClient};
use super::error::{GithubError, Result};
use super::repo_models::{
    Branch, BranchProtection, Collaborator, Comment, Permission, PullRequest, Repository,
};
use super::retry::RawResponse;

/// 100 pages of 100: far beyond any repository's outside collaborators, open pull
/// requests or one pull request's comments; stops a `Link` chain that never ends.
const MAX_PAGES: usize = 100;

/// A path segment percent-encoded: a branch may be named `release/1.0`.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `repos/OWNER/NAME/rest...`, every segment encoded.
fn repo_path(owner: &str, name: &str, rest: &[&str]) -> String {
    let mut path = format!("repos/{}/{}", encode_segment(owner), encode_segment(name));
    for segment in rest {
        path.push('/');
        path.push_str(&encode_segment(segment));
    }
    path
}

#[derive(Deserialize)]
struct PermissionBody {
    permission: String,
}

impl GithubClient {
    /// `GET /repos/{owner}/{repo}`.
    pub fn get_repository(&self, owner: &str, name: &str) -> Result<Repository> {
        self.get_one(&repo_path(owner, name, &[]))
    }

    /// `GET /repos/{owner}/{repo}/branches/{branch}`.
    pub fn get_branch(&self, owner: &str, name: &str, branch: &str) -> Result<Branch> {
        self.get_one(&repo_path(owner, name, &["branches", branch]))
    }

    /// `GET .../branches/{branch}/protection`; `None` when the branch has no rule
    /// (GitHub answers 404 "Branch not protected").
    pub fn get_branch_protection(
        &self,
        owner: &str,
        name: &str,
        branch: &str,
    ) -> Result<Option<BranchProtection>> {
        let path = repo_path(owner, name, &["branches", branch, "protection"]);
        let response = self.get_raw(&path)?;
        if response.status == 404 && response.message() == "Branch not protected" {
            return Ok(None);
        }
        decode(&check(response, &path, &[200])?, &path).map(Some)
    }

    /// Every outside collaborator (`affiliation=outside`), all pages.
    pub fn list_outside_collaborators(&self, owner: &str, name: &str) -> Result<Vec<Collaborator>> {
        let path = repo_path(owner, name, &["collaborators"]);
        self.get_all(&format!("{path}?affiliation=outside&per_page=100"))
    }

    /// A user's permission; [`Permission::None`] for a user GitHub does not know here.
    pub fn get_collaborator_permission(
        &self,
        owner: &str,
        name: &str,
        user: &str,
    ) -> Result<Permission> {
        match self.get_one::<PermissionBody>(&repo_path(
            owner,
            name,
            &["collaborators", user, "permission"],
        )) {
            Ok(body) => Ok(Permission::from_api(&body.permission)),
            Err(GithubError::PathNotFound { .. }) => {
                // 404 for the repository itself is still an error: tell the two apart.
                self.get_repository(owner, name).map(|_| Permission::None)
            }
            Err(e) => Err(e),
        }
    }

    /// Every open pull request, all pages.
    pub fn list_open_pull_requests(&self, owner: &str, name: &str) -> Result<Vec<PullRequest>> {
        let path = repo_path(owner, name, &["pulls"]);
        self.get_all(&format!("{path}?state=open&per_page=100"))
    }

    /// Every comment of issue or pull request `number`, all pages.
    pub fn list_issue_comments(
        &self,
        owner: &str,
        name: &str,
        number: u64,
    ) -> Result<Vec<Comment>> {
        let path = repo_path(owner, name, &["issues", &number.to_string(), "comments"]);
        self.get_all(&format!("{path}?per_page=100"))
    }

    /// `GET /rate_limit`: free of rate-limit cost, and answers 401 to a bad token.
    pub fn verify_token(&self) -> Result<()> {
        check(self.get_raw("rate_limit")?, &"rate_limit", &[200]).map(|_| ())
    }

    fn get_raw(&self, path: &str) -> Result<RawResponse> {
        let url = self.transport().url(path);
        self.transport().request("GET", &url, None)
    }

    fn get_one<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        decode(&check(self.get_raw(path)?, &path, &[200])?, path)
    }

    fn get_all<T: DeserializeOwned>(&self, first: &str) -> Result<Vec<T>> {
        let what = first.split('?').next().unwrap_or(first).to_string();
        let mut items = Vec::new();
        let mut url = self.transport().url(first);
        for _ in 0..MAX_PAGES {
            let response = check(self.transport().request("GET", &url, None)?, &what, &[200])?;
            let page: Vec<T> = decode(&response, &what)?;
            items.extend(page);
            match response.header("link").and_then(next_link) {
                // Rebased onto our API base: the token only goes to the configured host.
                Some(next) => url = self.transport().rebase(&next)?,
                None => return Ok(items),
            }
        }
        Err(GithubError::Unexpected {
            status: 200,
            message: format!("more than {MAX_PAGES} pages at {what}"),
        })
    }
}

fn decode<T: DeserializeOwned>(response: &RawResponse, path: &str) -> Result<T> {
    serde_json::from_str(&response.body).map_err(|e| GithubError::Decode {
        endpoint: path.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_each_segment() {
        assert_eq!(
            repo_path("o", "r.rs", &["branches", "feature/x y", "protection"]),
            "repos/o/r.rs/branches/feature%2Fx%20y/protection"
        );
        assert_eq!(encode_segment("a~b_c-d.e"), "a~b_c-d.e");
    }
}
