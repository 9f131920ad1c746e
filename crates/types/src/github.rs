//! Where runners live on GitHub: the web URL and the organisation or repository path.

use std::fmt;

use crate::ValueError;

/// The longest option value the charm accepts for a path.
const MAX_PATH: usize = 4096;

/// Where runners are registered: an organisation (with a runner group) or one repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GithubPath {
    Org { org: String, group: String },
    Repo { owner: String, repo: String },
}

impl GithubPath {
    /// The REST prefix of this path's runner endpoints, e.g. `orgs/acme` or `repos/o/r`.
    pub fn api_prefix(&self) -> String {
        match self {
            GithubPath::Org { org, .. } => format!("orgs/{org}"),
            GithubPath::Repo { owner, repo } => format!("repos/{owner}/{repo}"),
        }
    }
}

impl GithubPath {
    /// Parses a `path` option value; `group` applies to organisations.
    pub fn parse(raw: &str, group: &str) -> Result<Self, ValueError> {
        parse_path(raw, group)
    }
}

impl fmt::Display for GithubPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GithubPath::Org { org, .. } => f.write_str(org),
            GithubPath::Repo { owner, repo } => write!(f, "{owner}/{repo}"),
        }
    }
}

/// The GitHub web URL and the REST API base derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GithubUrl {
    web: String,
    https: bool,
}

impl GithubUrl {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim().trim_end_matches('/');
        let url =
            url::Url::parse(trimmed).map_err(|e| ValueError::new(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ValueError::new("must be an http(s) URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ValueError::new("URL has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ValueError::new("URL must not have a query or fragment"));
        }
        Ok(GithubUrl {
            web: trimmed.to_string(),
            https: url.scheme() == "https",
        })
    }
    pub fn web(&self) -> &str {
        &self.web
    }
    /// Whether requests (and the token they carry) are encrypted on the way.
    pub fn is_https(&self) -> bool {
        self.https
    }
    /// github.com's API lives on its own host; GitHub Enterprise Server serves it under
    /// `/api/v3` of the web URL.
    pub fn api_base(&self) -> String {
        match self.web.as_str() {
            "https://github.com" | "https://www.github.com" => "https://api.github.com".into(),
            web => format!("{web}/api/v3"),
        }
    }
}

/// GitHub's names: letters, digits, `-`, `_` and `.`, not empty, at most 100 characters.
pub fn valid_github_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_path(raw: &str, group: &str) -> Result<GithubPath, ValueError> {
    let raw = raw.trim();
    if raw.len() > MAX_PATH {
        return Err(ValueError::new("too long"));
    }
    let parts: Vec<&str> = raw.split('/').collect();
    match parts.as_slice() {
        [org] if valid_github_name(org) => Ok(GithubPath::Org {
            org: org.to_string(),
            group: group.trim().to_string(),
        }),
        [owner, repo] if valid_github_name(owner) && valid_github_name(repo) => {
            Ok(GithubPath::Repo {
                owner: owner.to_string(),
                repo: repo.to_string(),
            })
        }
        [_] | [_, _] => Err(ValueError::new(
            "names may hold only letters, digits, '-', '_' and '.'",
        )),
        _ => Err(ValueError::new("must be an organisation or owner/repo")),
    }
}
