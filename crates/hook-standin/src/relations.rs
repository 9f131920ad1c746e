//! The stand-in relation tools, as Juju answers them for a unit in a relation:
//! - `relation-ids NAME [--format=json]`: the ids `relations.json` lists for NAME
//!   (`{"cos-agent": ["cos-agent:3"]}`), none when it lists none.
//! - `relation-set -r ID [--app] --file -`: a map of string keys and string values on
//!   stdin (JSON here; Juju reads YAML, of which JSON is a part), merged into the
//!   settings of this unit (`JUJU_UNIT_NAME`, or its application with `--app`) in
//!   `relation-data.json`; an empty value deletes its key, as Juju does. Anything but
//!   string values is refused, as Juju's `map[string]string` refuses it.
//! - `relation-get [--format=json] [--app] -r ID KEY|- [UNIT]`: what was set, as JSON
//!   (UNIT defaults to `JUJU_REMOTE_UNIT`).

use std::path::Path;

use serde_json::{json, Map, Value};

use super::{read_json, write_json, ToolError};

const RELATIONS: &str = "relations.json";
const DATA: &str = "relation-data.json";

/// `-r ID` (or `--relation=ID`) from the arguments, and the rest.
fn relation_arg(args: &[String]) -> (Option<String>, Vec<String>) {
    let mut id = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-r" || arg == "--relation" {
            id = it.next().cloned();
        } else if let Some(value) = arg.strip_prefix("--relation=") {
            id = Some(value.to_string());
        } else {
            rest.push(arg.clone());
        }
    }
    (id, rest)
}

/// The settings holder a call names: the unit, or its application with `--app`.
fn holder(rest: &[String], unit: Option<String>) -> Option<String> {
    let unit = unit?;
    if rest.iter().any(|a| a == "--app" || a == "--app=true") {
        return unit.split('/').next().map(String::from);
    }
    Some(unit)
}

pub fn relation_ids(dir: &Path, args: &[String]) {
    let relations = read_json(&dir.join(RELATIONS), json!({}));
    let name = args.iter().find(|a| !a.starts_with("--"));
    let ids = name
        .and_then(|n| relations.get(n).cloned())
        .unwrap_or(json!([]));
    if args.iter().any(|a| a == "--format=json") {
        println!("{ids}");
    } else {
        for id in ids.as_array().into_iter().flatten() {
            println!("{}", id.as_str().unwrap_or_default());
        }
    }
}

pub fn relation_set(dir: &Path, args: &[String], stdin: Option<&str>) -> Result<(), ToolError> {
    let (id, rest) = relation_arg(args);
    let id = id.ok_or(ToolError::Usage("relation-set needs -r ID"))?;
    let unit = std::env::var("JUJU_UNIT_NAME").ok();
    let holder = holder(&rest, unit).ok_or(ToolError::Usage("JUJU_UNIT_NAME is not set"))?;
    let new: Map<String, Value> =
        serde_json::from_str(stdin.unwrap_or("{}")).map_err(ToolError::Stdin)?;
    if new.values().any(|v| !v.is_string()) {
        return Err(ToolError::Usage("relation settings must be strings"));
    }
    let mut data = read_json(&dir.join(DATA), json!({}));
    let settings = data
        .as_object_mut()
        .ok_or(ToolError::StateNotObject)?
        .entry(id)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or(ToolError::StateNotObject)?
        .entry(holder)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or(ToolError::StateNotObject)?;
    for (key, value) in new {
        if value == "" {
            settings.remove(&key);
        } else {
            settings.insert(key, value);
        }
    }
    write_json(&dir.join(DATA), &data)?;
    Ok(())
}

pub fn relation_get(dir: &Path, args: &[String]) -> Result<(), ToolError> {
    let (id, rest) = relation_arg(args);
    let id = id.ok_or(ToolError::Usage("relation-get needs -r ID"))?;
    let positional: Vec<&String> = rest.iter().filter(|a| !a.starts_with("--")).collect();
    let key = positional.first().map(|k| k.as_str()).unwrap_or("-");
    let unit = positional
        .get(1)
        .map(|u| u.to_string())
        .or_else(|| std::env::var("JUJU_REMOTE_UNIT").ok());
    let holder = holder(&rest, unit).ok_or(ToolError::Usage("relation-get needs a unit"))?;
    let data = read_json(&dir.join(DATA), json!({}));
    let settings = data[&id][&holder].clone();
    let settings = if settings.is_null() {
        json!({})
    } else {
        settings
    };
    match key {
        "-" => println!("{settings}"),
        key => println!("{}", settings.get(key).cloned().unwrap_or(Value::Null)),
    }
    Ok(())
}
