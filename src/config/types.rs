//! The value types of the configuration: token, GitHub path and URL, sizes, modes.

use std::fmt;

use sha2::{Digest, Sha256};

/// A GitHub personal access token. Debug and Display never show it; the only way to
/// read it is [`Token::expose`], which callers use at the moment they build a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Token(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// A short, stable digest kept in charm state to notice a token change without
    /// storing the token.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..8])
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

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
    pub fn parse(raw: &str, group: &str) -> Result<Self, String> {
        super::values::parse_path(raw, group)
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
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim().trim_end_matches('/');
        let url = url::Url::parse(trimmed).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("must be an http(s) URL".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("URL has no host".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("URL must not have a query or fragment".into());
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceType {
    VirtualMachine,
    Container,
}

impl InstanceType {
    pub fn as_lxd(self) -> &'static str {
        match self {
            InstanceType::VirtualMachine => "virtual-machine",
            InstanceType::Container => "container",
        }
    }
}

/// A size in bytes, parsed from LXD-style strings such as `7GiB` or `512MB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        if digits.is_empty() {
            return Err("expected a number with a unit such as 7GiB".into());
        }
        let number: u64 = digits.parse().map_err(|_| "number too large".to_string())?;
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "kB" | "KB" => 1000,
            "MB" => 1000u64.pow(2),
            "GB" => 1000u64.pow(3),
            "TB" => 1000u64.pow(4),
            "PB" => 1000u64.pow(5),
            "EB" => 1000u64.pow(6),
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            "PiB" => 1 << 50,
            "EiB" => 1 << 60,
            _ => return Err("unknown unit".into()),
        };
        let bytes = number.checked_mul(multiplier).ok_or("size too large")?;
        if bytes == 0 {
            return Err("must be greater than zero".into());
        }
        Ok(ByteSize(bytes))
    }
    /// The form LXD's `limits.memory` and disk `size` keys accept.
    pub fn to_lxd(self) -> String {
        format!("{}B", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestMode {
    Off,
    /// Relaxes hardening that a test machine cannot provide.
    Insecure,
}
