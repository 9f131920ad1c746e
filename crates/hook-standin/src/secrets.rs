//! The stand-in `secret-get`, answering as Juju 3 answers a unit that consumes a user
//! secret (`secret-get [--format yaml|json] [--label L] [--peek|--refresh] ID [KEY]`).
//!
//! The model's secrets are in `secrets.json`, by secret id (the 20 characters after
//! `secret:`): `{"ID": {"revisions": [{"token": "..."}, ...], "granted": true,
//! "removed": false, "label": ""}}`; revision N is `revisions[N-1]`. The revision this
//! unit tracks is in `secret-tracking.json` (`{"ID": N}`). Both hold or point at secret
//! values, so both are written 0600, whole (a test reading them never sees half a file).
//!
//! What Juju does, and this does:
//! - The unit's first read gets the latest revision and starts tracking it; later reads
//!   get the tracked one, however many revisions were added since (a rotation reaches
//!   the unit through `secret-changed`, then `--refresh`). `--refresh` gets the latest
//!   and tracks it; `--peek` gets the latest and leaves the tracking as it was.
//! - Bad arguments exit 2 and a failed read exits 1, both with `ERROR <why>` on stderr,
//!   in Juju's words: the `ops` library and the charm match on them.
//!
//! `calls.jsonl` records the call's arguments (URI and key) as for every tool, never
//! what it printed: a secret value reaches no file but the two above.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{read_json, ToolError};

pub const SECRETS: &str = "secrets.json";
pub const TRACKING: &str = "secret-tracking.json";

/// Secret values are readable by their owner only, as the charm keeps its token.
const PRIVATE: u32 = 0o600;

/// What one call asks for, once its arguments are checked.
#[derive(Debug, Default)]
struct Request {
    /// The secret id from the URI, when one was given.
    id: Option<String>,
    label: Option<String>,
    key: Option<String>,
    json: bool,
    peek: bool,
    refresh: bool,
}

/// Why a call printed no content: a usage error (exit 2, before anything is read, as
/// Juju's command line refuses it) or a failed read (exit 1).
#[derive(Debug)]
enum Refusal {
    Usage(String),
    Read(String),
}

/// `secret-get ARGS`; the exit code, or the tracking file could not be written.
pub fn secret_get(dir: &Path, args: &[String]) -> Result<u8, ToolError> {
    let request = match parse(args) {
        Ok(request) => request,
        Err(message) => return Ok(refuse(&Refusal::Usage(message))),
    };
    let answer = read(dir, &request)?.and_then(|content| render(&content, &request));
    match answer {
        Ok(text) => {
            print!("{text}");
            Ok(0)
        }
        Err(refusal) => Ok(refuse(&refusal)),
    }
}

fn refuse(refusal: &Refusal) -> u8 {
    match refusal {
        Refusal::Usage(why) => {
            eprintln!("ERROR {why}");
            2
        }
        Refusal::Read(why) => {
            eprintln!("ERROR {why}");
            1
        }
    }
}

/// The options (anywhere on the line, `--name value` or `--name=value`) and the
/// positional `ID [KEY]`, checked in the order Juju's `Init` checks them.
fn parse(args: &[String]) -> Result<Request, String> {
    let mut request = Request::default();
    let mut format = "yaml".to_string();
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(option) = arg.strip_prefix("--").filter(|o| !o.is_empty()) else {
            positional.push(arg.clone());
            continue;
        };
        let (name, inline) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (option, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("option needs an argument: --{name}"))
        };
        match name {
            "peek" => request.peek = true,
            "refresh" => request.refresh = true,
            "label" => request.label = Some(value()?),
            "format" => format = value()?,
            _ => return Err(format!("option provided but not defined: --{name}")),
        }
    }
    if format != "yaml" && format != "json" {
        return Err(format!(
            "invalid value {format:?} for option --format: unknown format {format:?}"
        ));
    }
    request.json = format == "json";
    check_positional(request, positional)
}

fn check_positional(mut request: Request, positional: Vec<String>) -> Result<Request, String> {
    let mut rest = positional.into_iter();
    if let Some(uri) = rest.next() {
        let id = parse_uri(&uri).ok_or_else(|| format!("secret URI {uri:?} not valid"))?;
        request.id = Some(id);
    }
    if request.id.is_none() && request.label.is_none() {
        return Err("require either a secret URI or label".into());
    }
    if request.peek && request.refresh {
        return Err("specify one of --peek or --refresh but not both".into());
    }
    request.key = rest.next();
    let extra: Vec<String> = rest.collect();
    if !extra.is_empty() {
        return Err(format!("unrecognized args: {extra:?}"));
    }
    Ok(request)
}

/// The secret id of `secret:ID`, `secret://MODEL-UUID/ID` or a bare `ID`, as Juju's
/// `ParseURI` reads them: an id is 20 characters of base32hex (an xid).
fn parse_uri(text: &str) -> Option<String> {
    let id = if let Some(rest) = text.strip_prefix("secret://") {
        let (model, id) = rest.split_once('/')?;
        is_uuid(model).then_some(id)?
    } else if let Some(id) = text.strip_prefix("secret:") {
        id
    } else {
        text
    };
    let valid = id.len() == 20 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'v'));
    valid.then(|| id.to_string())
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The content of the revision this call gets, tracking it when Juju would; a
/// refusal when the secret is gone or not this unit's to read.
fn read(dir: &Path, request: &Request) -> Result<Result<Map<String, Value>, Refusal>, ToolError> {
    let mut secrets = read_json(&dir.join(SECRETS), json!({}));
    let id = match find(&secrets, request) {
        Ok(id) => id,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let secret = &secrets[&id];
    if secret["granted"] != json!(true) {
        return Ok(Err(Refusal::Read("permission denied".into())));
    }
    let revision = choose_revision(dir, &id, secret, request)?;
    let content = secret["revisions"][revision - 1]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // A label given with the URI names the secret for this unit from now on.
    if let (Some(label), Some(_)) = (&request.label, &request.id) {
        secrets[&id]["label"] = json!(label);
        write_private(&dir.join(SECRETS), &secrets)?;
    }
    Ok(Ok(content))
}

/// The id of the secret asked for (by URI, else by the unit's label for it), when it
/// exists and was not removed.
fn find(secrets: &Value, request: &Request) -> Result<String, Refusal> {
    let exists = |id: &str| secrets.get(id).is_some_and(|s| s["removed"] != json!(true));
    if let Some(id) = &request.id {
        if exists(id) {
            return Ok(id.clone());
        }
        return Err(Refusal::Read(format!("secret {id:?} not found")));
    }
    let label = request.label.clone().unwrap_or_default();
    let by_label = secrets.as_object().and_then(|all| {
        all.iter()
            .find(|(id, s)| s["label"] == json!(label) && exists(id))
    });
    match by_label {
        Some((id, _)) => Ok(id.clone()),
        None => Err(Refusal::Read(format!("consumer label {label:?} not found"))),
    }
}

/// The revision to answer with (numbered from 1), recording the unit's tracking when
/// this is its first read or a `--refresh`.
fn choose_revision(
    dir: &Path,
    id: &str,
    secret: &Value,
    request: &Request,
) -> Result<usize, ToolError> {
    let latest = secret["revisions"].as_array().map_or(0, Vec::len).max(1);
    let mut tracking = read_json(&dir.join(TRACKING), json!({}));
    if !tracking.is_object() {
        tracking = json!({});
    }
    let tracked = tracking.get(id).and_then(Value::as_u64);
    match tracked {
        Some(tracked) if !request.refresh => {
            let tracked = usize::try_from(tracked).unwrap_or(latest).clamp(1, latest);
            Ok(if request.peek { latest } else { tracked })
        }
        // Juju starts tracking on a unit's first read, even a `--peek`.
        _ => {
            tracking[id] = json!(latest);
            write_private(&dir.join(TRACKING), &tracking)?;
            Ok(latest)
        }
    }
}

/// What Juju prints: the content as a map, or one key's value (`KEY#base64`: its
/// base64), formatted as JSON or YAML; a key the content lacks is a failed read.
fn render(content: &Map<String, Value>, request: &Request) -> Result<String, Refusal> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let Some(key) = &request.key else {
        let map: BTreeMap<String, String> =
            content.iter().map(|(k, v)| (k.clone(), text(v))).collect();
        return Ok(render_map(&map, request.json));
    };
    let (name, base64) = match key.strip_suffix("#base64") {
        Some(name) => (name, true),
        None => (key.as_str(), false),
    };
    let Some(value) = content.get(name).map(text) else {
        return Err(Refusal::Read(format!(
            "secret key value {name:?} not found"
        )));
    };
    let value = if base64 {
        encode_base64(value.as_bytes())
    } else {
        value
    };
    if request.json {
        return Ok(format!("{}\n", json!(value)));
    }
    Ok(format!("{}\n", yaml_scalar(&value)))
}

fn render_map(map: &BTreeMap<String, String>, as_json: bool) -> String {
    if as_json {
        return format!("{}\n", json!(map));
    }
    if map.is_empty() {
        return "{}\n".into();
    }
    map.iter()
        .map(|(k, v)| format!("{}: {}\n", yaml_scalar(k), yaml_scalar(v)))
        .collect()
}

/// A string as YAML writes it: plain when it would read back as the same string,
/// else double-quoted (a JSON string is a valid YAML double-quoted scalar).
fn yaml_scalar(s: &str) -> String {
    const WORDS: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || "_/".contains(c));
    let rest_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./+=@".contains(c));
    let reads_as_other = WORDS.contains(&s.to_ascii_lowercase().as_str())
        || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o");
    if first_ok && rest_ok && !reads_as_other {
        s.to_string()
    } else {
        json!(s).to_string()
    }
}

/// Standard base64 with padding, what Juju's `KEY#base64` prints.
fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(word >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn write_private(path: &Path, value: &Value) -> Result<(), fs_state::FileError> {
    fs_state::write_atomic(path, value.to_string().as_bytes(), PRIVATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "d3k8b0r2v7s1m4q6p5c0";

    #[test]
    fn uri_forms_juju_accepts() {
        let uuid = "4f0d2a6e-1c3b-4e8a-9b7d-2c5e8f1a6b3d";
        for uri in [
            format!("secret:{ID}"),
            format!("secret://{uuid}/{ID}"),
            ID.into(),
        ] {
            assert_eq!(parse_uri(&uri).as_deref(), Some(ID), "{uri}");
        }
        // Too short, outside base32hex (w-z), upper case, a host that is no model uuid,
        // another scheme.
        for bad in [
            "secret:abc",
            "secret:d3k8b0r2v7s1m4q6p5cz",
            "secret:D3K8B0R2V7S1M4Q6P5C0",
            "secret://host/d3k8b0r2v7s1m4q6p5c0",
            "vault:d3k8b0r2v7s1m4q6p5c0",
        ] {
            assert_eq!(parse_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        let cases = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v")];
        for (plain, encoded) in cases {
            assert_eq!(encode_base64(plain.as_bytes()), encoded);
        }
        assert_eq!(encode_base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn yaml_quotes_what_would_read_back_as_another_type() {
        assert_eq!(yaml_scalar("ghp_abc123"), "ghp_abc123");
        assert_eq!(yaml_scalar("aGk+Lw=="), "aGk+Lw==");
        for other in [
            "true",
            "No",
            "null",
            "12",
            "1.5",
            "",
            "a: b",
            "-x",
            "two\nlines",
        ] {
            assert_eq!(yaml_scalar(other), json!(other).to_string(), "{other}");
        }
    }
}
