//! Grafana dashboards as the `cos_agent` library sends them: each file's JSON with its
//! uid set from the charm's name and the file's path, the `charm: <name>` tag added,
//! then xz-compressed (the .xz container with CRC64, as Python's `lzma.compress`
//! writes) and base64-encoded with padding.

use std::io::Write;

use base64::Engine;
use serde_json::Value;
use sha3::digest::{ExtendableOutput, Update, XofReader};

use super::{CosError, Topology};

/// Every dashboard of the charm: its path relative to the charm's root (the uid is made
/// from it) and its JSON, compiled in so the packed charm carries it.
pub const DASHBOARDS: &[(&str, &str)] = &[(
    "cos/grafana_dashboards/github-runner.json",
    include_str!("../../cos/grafana_dashboards/github-runner.json"),
)];

/// The xz preset Python's `lzma.compress` uses by default.
const XZ_PRESET: u32 = 6;

/// The library's `DashboardPath40UID`: SHAKE-256 of `<charm>-<path>`, 20 bytes as 40
/// lowercase hex characters (Grafana allows at most 40).
pub fn uid(charm: &str, path: &str) -> String {
    let mut shake = sha3::Shake256::default();
    shake.update(format!("{charm}-{path}").as_bytes());
    let mut digest = [0u8; 20];
    shake.finalize_xof().read(&mut digest);
    hex::encode(digest)
}

/// The dashboard as sent: uid replaced, the charm's tag added unless one is there.
pub fn prepared(charm: &str, path: &str, json: &str) -> Result<Value, CosError> {
    let bad = |reason: String| CosError::Dashboard {
        path: path.to_string(),
        reason,
    };
    let mut dashboard: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let object = dashboard
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    object.insert("uid".into(), Value::String(uid(charm, path)));
    let tags = object
        .entry("tags")
        .or_insert_with(|| Value::Array(Vec::new()));
    let tags = tags
        .as_array_mut()
        .ok_or_else(|| bad("tags is not a list".into()))?;
    let tagged = tags
        .iter()
        .any(|t| t.as_str().is_some_and(|t| t.starts_with("charm: ")));
    if !tagged {
        tags.push(Value::String(format!("charm: {charm}")));
    }
    Ok(dashboard)
}

/// `bytes` in the .xz container, then base64 (standard alphabet, padded).
pub fn xz_base64(bytes: &[u8]) -> std::io::Result<String> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), XZ_PRESET);
    encoder.write_all(bytes)?;
    let xz = encoder.finish()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(xz))
}

/// Every dashboard, prepared and encoded.
pub fn encoded(topology: &Topology) -> Result<Vec<String>, CosError> {
    DASHBOARDS
        .iter()
        .map(|(path, json)| {
            let dashboard = prepared(&topology.charm, path, json)?;
            let text = serde_json::to_string(&dashboard).expect("a JSON value serializes");
            xz_base64(text.as_bytes()).map_err(|source| CosError::Compress {
                path: path.to_string(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Python: `hashlib.shake_256(b"abc").hexdigest(20)`.
    #[test]
    fn the_uid_is_shake256_as_python_computes_it() {
        let mut shake = sha3::Shake256::default();
        shake.update(b"abc");
        let mut digest = [0u8; 20];
        XofReader::read(&mut shake.finalize_xof(), &mut digest);
        assert_eq!(
            hex::encode(digest),
            "483366601360a8771c6863080cc4114d8db44530"
        );
        let uid = uid("github-runner", "cos/grafana_dashboards/github-runner.json");
        assert_eq!(uid.len(), 40);
        assert!(uid
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(uid, super::uid("github-runner", "cos/other.json"));
    }

    #[test]
    fn a_charm_tag_is_added_once() {
        let d = prepared("c", "p.json", r#"{"title": "t", "tags": ["ci"]}"#).unwrap();
        assert_eq!(d["tags"], serde_json::json!(["ci", "charm: c"]));
        let d = prepared("c", "p.json", r#"{"tags": ["charm: other"]}"#).unwrap();
        assert_eq!(d["tags"], serde_json::json!(["charm: other"]));
        let d = prepared("c", "p.json", r#"{"uid": "mine"}"#).unwrap();
        assert_eq!(d["tags"], serde_json::json!(["charm: c"]));
        assert_eq!(d["uid"], uid("c", "p.json"));
    }

    #[test]
    fn a_dashboard_that_is_not_an_object_is_refused() {
        assert!(prepared("c", "p.json", "[1]").is_err());
        assert!(prepared("c", "p.json", "{").is_err());
    }

    #[test]
    fn the_encoding_is_an_xz_stream_with_crc64_in_base64() {
        let text = "{\"title\": \"dashboard\"}".repeat(50);
        let encoded = xz_base64(text.as_bytes()).unwrap();
        assert!(encoded.starts_with("/Td6WFoAAA"), "{encoded}");
        let xz = base64::engine::general_purpose::STANDARD
            .decode(&encoded)
            .unwrap();
        // Stream flags after the 6-byte magic: check type 0x04 is CRC64.
        assert_eq!(xz[6..8], [0x00, 0x04]);
        let mut back = String::new();
        liblzma::read::XzDecoder::new(&xz[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
        assert!(xz.len() < text.len() / 4, "compressed: {} bytes", xz.len());
    }
}
