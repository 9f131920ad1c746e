//! Test stand-in for Juju's hook tools and for host commands (apt-get, snap, systemctl,
//! ...): one multi-call binary, linked under each tool's name by the test harness
//! (tests/harness). It answers from files in `$HOOK_HARNESS_DIR` and records every call,
//! so tests can drive the real charm binary exactly as Juju would, without a controller.
//!
//! Files in `$HOOK_HARNESS_DIR`:
//! - `calls.jsonl`: one `{"tool", "args", "stdin"}` object per call (appended).
//! - `config.json`, `action.json`, `leader.json`, `state.json`: what the tools answer.
//! - `fail/TOOL`: when present, TOOL prints its content to stderr and exits 1.
//! - `stdout/TOOL` and `exit/TOOL`: canned output and exit code for other commands.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Map, Value};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = Path::new(&args[0])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mut tool = argv0.unwrap_or_default();
    if tool == "hook-standin" && args.len() > 1 {
        tool = args.remove(1);
    }
    let args = args.split_off(1);
    let Some(dir) = std::env::var_os("HOOK_HARNESS_DIR").map(PathBuf::from) else {
        eprintln!("{tool}: HOOK_HARNESS_DIR is not set");
        return ExitCode::from(2);
    };
    let stdin = reads_stdin(&tool, &args).then(read_stdin);
    record(&dir, &tool, &args, stdin.as_deref());
    if let Ok(message) = fs::read_to_string(dir.join("fail").join(&tool)) {
        eprintln!("{}", message.trim_end());
        return ExitCode::from(1);
    }
    match answer(&dir, &tool, &args, stdin.as_deref()) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("{tool}: {message}");
            ExitCode::from(2)
        }
    }
}

fn reads_stdin(tool: &str, args: &[String]) -> bool {
    tool == "state-set" && args.iter().any(|a| a == "-")
        || std::env::var_os("HOOK_STANDIN_READ_STDIN").is_some_and(|v| v == tool)
}

fn read_stdin() -> String {
    let mut buf = String::new();
    let _ = std::io::stdin().read_to_string(&mut buf);
    buf
}

fn record(dir: &Path, tool: &str, args: &[String], stdin: Option<&str>) {
    let line = json!({"tool": tool, "args": args, "stdin": stdin}).to_string() + "\n";
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("calls.jsonl"));
    if let Ok(mut f) = file {
        let _ = f.write_all(line.as_bytes());
    }
}

fn read_json(path: &Path, default: Value) -> Value {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(default)
}

fn answer(dir: &Path, tool: &str, args: &[String], stdin: Option<&str>) -> Result<u8, String> {
    let print = |v: &Value| println!("{v}");
    match tool {
        "config-get" => print(&read_json(&dir.join("config.json"), json!({}))),
        "action-get" => print(&read_json(&dir.join("action.json"), json!({}))),
        "is-leader" => print(&read_json(&dir.join("leader.json"), json!(true))),
        "state-get" => {
            let state = read_json(&dir.join("state.json"), json!({}));
            match args.iter().find(|a| !a.starts_with("--")) {
                Some(key) => {
                    if let Some(v) = state.get(key) {
                        print(v)
                    }
                }
                None => print(&state),
            }
        }
        "state-set" => {
            let mut state = read_json(&dir.join("state.json"), json!({}));
            let new: Map<String, Value> =
                serde_json::from_str(stdin.unwrap_or("{}")).map_err(|e| e.to_string())?;
            let obj = state.as_object_mut().ok_or("state.json is not an object")?;
            obj.extend(new);
            write_json(&dir.join("state.json"), &state)?;
        }
        "state-delete" => {
            let mut state = read_json(&dir.join("state.json"), json!({}));
            if let (Some(obj), Some(key)) = (state.as_object_mut(), args.first()) {
                obj.remove(key);
            }
            write_json(&dir.join("state.json"), &state)?;
        }
        _ => {
            if let Ok(out) = fs::read_to_string(dir.join("stdout").join(tool)) {
                print!("{out}");
            }
            let code = fs::read_to_string(dir.join("exit").join(tool)).ok();
            return Ok(code.and_then(|c| c.trim().parse().ok()).unwrap_or(0));
        }
    }
    Ok(0)
}

fn write_json(path: &Path, value: &Value) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, value.to_string()).map_err(|e| e.to_string())?;
    fs::rename(&tmp, path).map_err(|e| e.to_string())
}
