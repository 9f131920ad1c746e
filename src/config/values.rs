//! Parsing and checking of single option values: each returns the reason a value is
//! unusable, for the `blocked` message.

use std::net::Ipv4Addr;

use ghr_types::ValueError;
use ipnet::Ipv4Net;

use super::{ByteSize, ConfigError, GithubPath, InvalidOption, RawConfig};

pub(super) fn ok<T>(r: Result<T, String>) -> Result<T, ConfigError> {
    r.map_err(ConfigError::Malformed)
}

/// Options by the JSON type config.yaml declares; anything else is a string.
pub(super) const INTEGER_OPTIONS: &[&str] = &[
    "virtual-machines",
    "max-total-virtual-machines",
    "vm-cpu",
    "reconcile-interval",
    "github-app-id",
    "github-app-installation-id",
];
pub(super) const BOOLEAN_OPTIONS: &[&str] = &["experimental-use-aproxy"];
pub(super) const STRING_OPTIONS: &[&str] = &[
    "path",
    "group",
    "token",
    "github-app-client-id",
    "github-app-private-key",
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
pub(super) fn wrong_types(value: &serde_json::Value, error: &serde_json::Error) -> ConfigError {
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

pub(super) fn shorten(value: &str) -> String {
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

pub(super) fn int_in(_name: &str, value: i64, min: i64, max: i64) -> Result<i64, String> {
    if value < min {
        Err(format!("must be at least {min}"))
    } else if value > max {
        Err(format!("must be at most {max}"))
    } else {
        Ok(value)
    }
}

pub(super) fn at_least(size: ByteSize, min: u64, label: &str) -> Result<ByteSize, String> {
    if size.0 < min {
        Err(format!("must be at least {label}"))
    } else {
        Ok(size)
    }
}

pub(super) fn parse_path(raw: &str, group: &str) -> Result<GithubPath, String> {
    GithubPath::parse(raw, group).map_err(|e| e.to_string())
}

pub(super) fn validate_group(group: &str) -> Result<(), String> {
    let g = group.trim();
    if g.is_empty() {
        return Err("must not be empty for an organisation path".into());
    }
    if g.len() > 100 || g.chars().any(char::is_control) {
        return Err("must be a runner group name of at most 100 printable characters".into());
    }
    Ok(())
}

pub(super) fn validate_token(token: &str) -> Result<(), String> {
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
pub fn parse_denylist(raw: &str) -> Result<Vec<Ipv4Net>, ValueError> {
    let mut nets = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let not_cidr = || ValueError::new(format!("{item:?} is not an IPv4 CIDR"));
        let net = if item.contains('/') {
            item.parse::<Ipv4Net>().map_err(|_| not_cidr())?
        } else {
            Ipv4Net::from(item.parse::<Ipv4Addr>().map_err(|_| not_cidr())?)
        };
        nets.push(net.trunc());
    }
    Ok(nets)
}

pub(super) fn parse_mirror(raw: &str) -> Result<Option<String>, String> {
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

pub(super) fn parse_labels(raw: &str) -> Result<Vec<String>, String> {
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

pub(super) fn parse_image(raw: &str) -> Result<Option<String>, String> {
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
