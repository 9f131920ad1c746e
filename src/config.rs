//! The charm's configuration: raw `config-get` JSON parsed once into a typed, validated
//! [`CharmConfig`]. Nothing downstream reads raw option strings; building it has no
//! side effects, so an invalid value can be reported before anything is touched.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;
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
        })
    }
    pub fn web(&self) -> &str {
        &self.web
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

/// The validated configuration every handler works from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharmConfig {
    pub path: GithubPath,
    pub token: Token,
    pub virtual_machines: u32,
    pub vm_cpu: u32,
    pub vm_memory: ByteSize,
    pub vm_disk: ByteSize,
    pub reconcile_interval_minutes: u32,
    pub denylist: Vec<Ipv4Net>,
    pub dockerhub_mirror: Option<String>,
    pub use_aproxy: bool,
    pub test_mode: TestMode,
    pub labels: Vec<String>,
    pub github_url: GithubUrl,
    pub instance_type: InstanceType,
    pub runner_image: Option<String>,
}

/// Why the configuration cannot be used. Its Display is the `blocked` status message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Required options are empty; lists only those.
    #[error("Missing required charm configuration: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// One or more options hold values that cannot be used.
    #[error("invalid config: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<InvalidOption>),
    /// config-get returned something that is not an object of known types.
    #[error("invalid config: {0}")]
    Malformed(String),
}

/// One bad option: its name, the offending value (already redacted where secret) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOption {
    pub option: &'static str,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for InvalidOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.option, self.value, self.reason)
    }
}

/// The options exactly as `config-get --format=json` gives them, defaults as config.yaml.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "kebab-case", default)]
pub struct RawConfig {
    pub path: String,
    pub group: String,
    pub token: String,
    pub virtual_machines: i64,
    pub vm_cpu: i64,
    pub vm_memory: String,
    pub vm_disk: String,
    pub reconcile_interval: i64,
    pub denylist: String,
    pub dockerhub_mirror: String,
    pub experimental_use_aproxy: bool,
    pub test_mode: String,
    pub labels: String,
    pub github_url: String,
    pub runner_instance_type: String,
    pub runner_image: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            path: String::new(),
            group: "default".into(),
            token: String::new(),
            virtual_machines: 1,
            vm_cpu: 2,
            vm_memory: "7GiB".into(),
            vm_disk: "10GiB".into(),
            reconcile_interval: 10,
            denylist: String::new(),
            dockerhub_mirror: String::new(),
            experimental_use_aproxy: false,
            test_mode: String::new(),
            labels: String::new(),
            github_url: "https://github.com".into(),
            runner_instance_type: "virtual-machine".into(),
            runner_image: String::new(),
        }
    }
}

/// Upper bounds that keep a typo from asking for an absurd pool.
pub const MAX_VIRTUAL_MACHINES: i64 = 500;
pub const MAX_VM_CPU: i64 = 1024;
pub const MAX_RECONCILE_INTERVAL: i64 = 24 * 60;
const MAX_STRING: usize = 4096;

impl CharmConfig {
    /// Parses `config-get --format=json` output.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            serde_json::from_value(value.clone()).map_err(|e| wrong_types(value, &e))?;
        Self::from_raw(&raw)
    }

    pub fn from_raw(raw: &RawConfig) -> Result<Self, ConfigError> {
        let missing: Vec<&'static str> = [("token", &raw.token), ("path", &raw.path)]
            .into_iter()
            .filter(|(_, v)| v.trim().is_empty())
            .map(|(name, _)| name)
            .collect();
        let mut bad = Vec::new();
        // A token pasted into another option must not be echoed by that option's error.
        let secret = raw.token.trim();
        let redact = |text: &str| {
            if secret.len() >= 8 {
                text.replace(secret, "<redacted>")
            } else {
                text.to_string()
            }
        };
        let mut check = |option: &'static str, value: &str, result: Result<(), String>| {
            if let Err(reason) = result {
                bad.push(InvalidOption {
                    option,
                    value: shorten(&redact(value)),
                    reason: redact(&reason),
                });
            }
        };
        let path = parse_path(&raw.path, &raw.group);
        if !raw.path.trim().is_empty() {
            check(
                "path",
                &raw.path,
                path.as_ref().map(|_| ()).map_err(Clone::clone),
            );
        }
        if !raw.path.trim().is_empty() && matches!(path, Ok(GithubPath::Org { .. })) {
            check("group", &raw.group, validate_group(&raw.group));
        }
        if !raw.token.trim().is_empty() {
            // The value shown is never the token's.
            check("token", "<redacted>", validate_token(&raw.token));
        }
        let vms = int_in(
            "virtual-machines",
            raw.virtual_machines,
            0,
            MAX_VIRTUAL_MACHINES,
        );
        check(
            "virtual-machines",
            &raw.virtual_machines.to_string(),
            vms.clone().map(|_| ()),
        );
        let cpu = int_in("vm-cpu", raw.vm_cpu, 1, MAX_VM_CPU);
        check("vm-cpu", &raw.vm_cpu.to_string(), cpu.clone().map(|_| ()));
        let memory = ByteSize::parse(&raw.vm_memory).and_then(|m| at_least(m, 64 << 20, "64MiB"));
        check("vm-memory", &raw.vm_memory, memory.map(|_| ()));
        let disk = ByteSize::parse(&raw.vm_disk).and_then(|d| at_least(d, 64 << 20, "64MiB"));
        check("vm-disk", &raw.vm_disk, disk.map(|_| ()));
        let interval = int_in(
            "reconcile-interval",
            raw.reconcile_interval,
            1,
            MAX_RECONCILE_INTERVAL,
        );
        check(
            "reconcile-interval",
            &raw.reconcile_interval.to_string(),
            interval.clone().map(|_| ()),
        );
        let denylist = parse_denylist(&raw.denylist);
        check(
            "denylist",
            &raw.denylist,
            denylist.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let mirror = parse_mirror(&raw.dockerhub_mirror);
        check(
            "dockerhub-mirror",
            &raw.dockerhub_mirror,
            mirror.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let test_mode = match raw.test_mode.trim() {
            "" => Ok(TestMode::Off),
            "insecure" => Ok(TestMode::Insecure),
            _ => Err("must be empty or \"insecure\"".to_string()),
        };
        check("test-mode", &raw.test_mode, test_mode.map(|_| ()));
        let labels = parse_labels(&raw.labels);
        check(
            "labels",
            &raw.labels,
            labels.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let github_url = GithubUrl::parse(&raw.github_url);
        check(
            "github-url",
            &raw.github_url,
            github_url.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let instance_type = match raw.runner_instance_type.trim() {
            "virtual-machine" => Ok(InstanceType::VirtualMachine),
            "container" => Ok(InstanceType::Container),
            _ => Err("must be \"virtual-machine\" or \"container\"".to_string()),
        };
        check(
            "runner-instance-type",
            &raw.runner_instance_type,
            instance_type.map(|_| ()),
        );
        let image = parse_image(&raw.runner_image);
        check(
            "runner-image",
            &raw.runner_image,
            image.as_ref().map(|_| ()).map_err(Clone::clone),
        );

        if !bad.is_empty() {
            return Err(ConfigError::Invalid(bad));
        }
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        // Every Result below was checked above; `bad` being empty means they are Ok.
        Ok(CharmConfig {
            path: ok(path)?,
            token: Token::new(raw.token.trim()),
            virtual_machines: ok(vms)? as u32,
            vm_cpu: ok(cpu)? as u32,
            vm_memory: ok(ByteSize::parse(&raw.vm_memory))?,
            vm_disk: ok(ByteSize::parse(&raw.vm_disk))?,
            reconcile_interval_minutes: ok(interval)? as u32,
            denylist: ok(denylist)?,
            dockerhub_mirror: ok(mirror)?,
            use_aproxy: raw.experimental_use_aproxy,
            test_mode: if raw.test_mode.trim() == "insecure" {
                TestMode::Insecure
            } else {
                TestMode::Off
            },
            labels: ok(labels)?,
            github_url: ok(github_url)?,
            instance_type: if raw.runner_instance_type.trim() == "container" {
                InstanceType::Container
            } else {
                InstanceType::VirtualMachine
            },
            runner_image: ok(image)?,
        })
    }
}

fn ok<T>(r: Result<T, String>) -> Result<T, ConfigError> {
    r.map_err(ConfigError::Malformed)
}

/// Options by the JSON type config.yaml declares; anything else is a string.
const INTEGER_OPTIONS: &[&str] = &["virtual-machines", "vm-cpu", "reconcile-interval"];
const BOOLEAN_OPTIONS: &[&str] = &["experimental-use-aproxy"];
const STRING_OPTIONS: &[&str] = &[
    "path",
    "group",
    "token",
    "vm-memory",
    "vm-disk",
    "denylist",
    "dockerhub-mirror",
    "test-mode",
    "labels",
    "github-url",
    "runner-instance-type",
    "runner-image",
];

/// Names every option whose value has the wrong JSON type. serde stops at the first
/// and quotes the value (which may be the token), so each option is tried on its own.
fn wrong_types(value: &serde_json::Value, error: &serde_json::Error) -> ConfigError {
    let Some(map) = value.as_object() else {
        return ConfigError::Malformed("config-get did not return a JSON object".into());
    };
    let known = INTEGER_OPTIONS
        .iter()
        .map(|o| (*o, "an integer"))
        .chain(BOOLEAN_OPTIONS.iter().map(|o| (*o, "true or false")))
        .chain(STRING_OPTIONS.iter().map(|o| (*o, "a string")));
    let bad: Vec<InvalidOption> = known
        .filter_map(|(option, expected)| {
            let v = map.get(option)?;
            let alone = serde_json::json!({ option: v });
            serde_json::from_value::<RawConfig>(alone).err()?;
            // The value itself is not shown: it may be the token in the wrong option.
            let shown = match v {
                serde_json::Value::Null => "<null>",
                serde_json::Value::Bool(_) => "<a boolean>",
                serde_json::Value::Number(_) => "<a number>",
                serde_json::Value::String(_) => "<a string>",
                serde_json::Value::Array(_) => "<a list>",
                serde_json::Value::Object(_) => "<an object>",
            };
            Some(InvalidOption {
                option,
                value: shown.to_string(),
                reason: format!("has the wrong type: must be {expected}"),
            })
        })
        .collect();
    if bad.is_empty() {
        // Not a type error of a known option; serde's text may quote a value.
        log::debug!("config-get output rejected ({:?})", error.classify());
        return ConfigError::Malformed("an option has the wrong type".into());
    }
    ConfigError::Invalid(bad)
}

fn shorten(value: &str) -> String {
    const SHOWN: usize = 64;
    let printable: String = value
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if printable.chars().count() > SHOWN {
        printable.chars().take(SHOWN).collect::<String>() + "..."
    } else {
        printable
    }
}

fn int_in(_name: &str, value: i64, min: i64, max: i64) -> Result<i64, String> {
    if value < min {
        Err(format!("must be at least {min}"))
    } else if value > max {
        Err(format!("must be at most {max}"))
    } else {
        Ok(value)
    }
}

fn at_least(size: ByteSize, min: u64, label: &str) -> Result<ByteSize, String> {
    if size.0 < min {
        Err(format!("must be at least {label}"))
    } else {
        Ok(size)
    }
}

/// GitHub's names: letters, digits, `-`, `_` and `.`, not empty, at most 100 characters.
fn valid_github_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_path(raw: &str, group: &str) -> Result<GithubPath, String> {
    let raw = raw.trim();
    if raw.len() > MAX_STRING {
        return Err("too long".into());
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
        [_] | [_, _] => Err("names may hold only letters, digits, '-', '_' and '.'".into()),
        _ => Err("must be an organisation or owner/repo".into()),
    }
}

fn validate_group(group: &str) -> Result<(), String> {
    let g = group.trim();
    if g.is_empty() {
        return Err("must not be empty for an organisation path".into());
    }
    if g.len() > 100 || g.chars().any(char::is_control) {
        return Err("must be a runner group name of at most 100 printable characters".into());
    }
    Ok(())
}

fn validate_token(token: &str) -> Result<(), String> {
    let t = token.trim();
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    if t.len() > 512 {
        return Err("too long for a GitHub token".into());
    }
    Ok(())
}

/// Comma-separated IPv4 networks; a bare address means a /32.
pub fn parse_denylist(raw: &str) -> Result<Vec<Ipv4Net>, String> {
    let mut nets = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let net = if item.contains('/') {
            item.parse::<Ipv4Net>()
                .map_err(|_| format!("{item:?} is not an IPv4 CIDR"))?
        } else {
            let addr: Ipv4Addr = item
                .parse()
                .map_err(|_| format!("{item:?} is not an IPv4 CIDR"))?;
            Ipv4Net::from(addr)
        };
        nets.push(net.trunc());
    }
    Ok(nets)
}

fn parse_mirror(raw: &str) -> Result<Option<String>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "https" {
        return Err("must be an https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("URL has no host".into());
    }
    Ok(Some(raw.trim_end_matches('/').to_string()))
}

fn parse_labels(raw: &str) -> Result<Vec<String>, String> {
    let mut labels: Vec<String> = Vec::new();
    for label in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if label.len() > 100
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "label {:?} may hold only letters, digits, '-', '_' and '.'",
                shorten(label)
            ));
        }
        if !labels.iter().any(|l| l == label) {
            labels.push(label.to_string());
        }
    }
    if labels.len() > 90 {
        return Err("at most 90 extra labels".into());
    }
    Ok(labels)
}

fn parse_image(raw: &str) -> Result<Option<String>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let ok = raw.len() <= 255
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'));
    if ok {
        Ok(Some(raw.to_string()))
    } else {
        Err("must be an LXD image alias (letters, digits, '-', '_', '.', '/', ':')".into())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
