//! Test stand-in for Juju's hook tools and for host commands (apt-get, snap, systemctl,
//! ...): one multi-call binary, linked under each tool's name by the test harness
//! (tests/harness). It answers from files in `$HOOK_HARNESS_DIR` and records every call,
//! so tests can drive the real charm binary exactly as Juju would, without a controller.
//!
//! Files in `$HOOK_HARNESS_DIR`:
//! - `calls.jsonl`: one `{"tool", "args", "stdin"}` object per call (appended).
//! - `config.json`, `action.json`, `leader.json`, `state.json`: what the tools answer.
//! - `relations.json`, `relation-data.json`: the relations and their settings (see
//!   [`relations`]).
//! - `secrets.json`, `secret-tracking.json`: the model's secrets and the revision of
//!   each this unit tracks, read by `secret-get` (see [`secrets`]; both 0600).
//! - `unit-address`: what `unit-get private-address` answers (default 127.0.0.1).
//! - `fail/TOOL`: when present, TOOL prints its content to stderr and exits 1.
//! - `stdout/TOOL` and `exit/TOOL`: canned output and exit code for other commands.
//! - `rules/TOOL`: a JSON array of `{"args": [PREFIX...], "stdout", "stderr", "exit",
//!   "times"}` tried in order before `stdout/`/`exit/`: the first rule whose `args` is a
//!   prefix of the call's arguments answers; a rule with `times` answers that many calls
//!   and is then used up (so "first call fails, second succeeds" is two rules). A rule
//!   with `"spawn": [PROGRAM, ARGS...]` also starts that program in the background (a
//!   stand-in `systemctl restart` that really starts the service); its PID is appended
//!   to `spawned`.
//!
//! Each record also holds `env`: the proxy variables and `DEBIAN_FRONTEND` the call saw.
//!
//! `systemctl` with no rule plays systemd for the charm's runner manager units
//! (`github-runner-manager-*.service`, see [`services`]): `restart`/`start`/`enable --now`
//! runs the unit file's `ExecStart` (from under `$GITHUB_RUNNER_ROOT`), `stop`/`disable
//! --now` ends it. Its PID is in `services/UNIT.pid` and `spawned`, its output in
//! `services/UNIT.log`.

mod relations;
mod secrets;
mod services;

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
    if let Some(code) = scripted(&dir, &tool, &args) {
        return ExitCode::from(code);
    }
    if tool == "systemctl" {
        services::systemctl(&dir, &args);
    }
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
    // `state-set --file -`, `nft -f -`: a file on stdin (`relation-get ... - UNIT`
    // names all keys, not a file).
    (tool != "relation-get" && args.iter().any(|a| a == "-"))
        || std::env::var_os("HOOK_STANDIN_READ_STDIN").is_some_and(|v| v == tool)
}

fn read_stdin() -> String {
    let mut buf = String::new();
    let _ = std::io::stdin().read_to_string(&mut buf);
    buf
}

/// Environment variables worth asserting on: how proxies reach host commands.
const RECORDED_ENV: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "DEBIAN_FRONTEND",
];

fn record(dir: &Path, tool: &str, args: &[String], stdin: Option<&str>) {
    let env: Map<String, Value> = RECORDED_ENV
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .map(|v| (k.to_string(), Value::String(v)))
        })
        .collect();
    let line = json!({"tool": tool, "args": args, "stdin": stdin, "env": env}).to_string() + "\n";
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("calls.jsonl"));
    if let Ok(mut f) = file {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Answers from the first matching rule in `rules/TOOL`, using up counted rules.
fn scripted(dir: &Path, tool: &str, args: &[String]) -> Option<u8> {
    let path = dir.join("rules").join(tool);
    let mut rules = read_json(&path, json!([]));
    let list = rules.as_array_mut()?;
    let index = list.iter().position(|rule| {
        let prefix = rule["args"].as_array().cloned().unwrap_or_default();
        prefix.len() <= args.len()
            && prefix
                .iter()
                .zip(args)
                .all(|(want, got)| want.as_str() == Some(got.as_str()))
    })?;
    let rule = list[index].clone();
    if let Some(times) = rule["times"].as_u64() {
        if times <= 1 {
            list.remove(index);
        } else {
            list[index]["times"] = json!(times - 1);
        }
        let _ = write_json(&path, &rules);
    }
    if let Some(argv) = rule["spawn"].as_array() {
        spawn(dir, argv, None);
    }
    print!("{}", rule["stdout"].as_str().unwrap_or_default());
    eprint!("{}", rule["stderr"].as_str().unwrap_or_default());
    Some(rule["exit"].as_u64().unwrap_or(0) as u8)
}

/// Starts `argv` in the background, as a service manager would: in its own process
/// group, no stdio, outliving this call. Its PID goes to `spawned` for the harness to
/// end it.
fn spawn(dir: &Path, argv: &[Value], log: Option<std::process::Stdio>) -> Option<u32> {
    use std::os::unix::process::CommandExt;
    let argv: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
    let (program, args) = argv.split_first()?;
    let child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log.unwrap_or_else(std::process::Stdio::null))
        .process_group(0)
        .spawn();
    match child {
        Ok(child) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("spawned"));
            if let Ok(mut f) = file {
                let _ = writeln!(f, "{}", child.id());
            }
            Some(child.id())
        }
        Err(e) => {
            eprintln!("could not start {program}: {e}");
            None
        }
    }
}

fn read_json(path: &Path, default: Value) -> Value {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(default)
}

/// Why a hook tool could not answer (it exits 2, as a broken tool would).
#[derive(Debug, thiserror::Error)]
enum ToolError {
    /// `state-set` was given something other than a JSON object on stdin.
    #[error("stdin is not a JSON object: {0}")]
    Stdin(serde_json::Error),
    /// `state.json` holds JSON that is not an object.
    #[error("state.json is not an object")]
    StateNotObject,
    /// The state file could not be written.
    #[error(transparent)]
    Write(#[from] fs_state::FileError),
    /// Arguments or input Juju's tool would refuse.
    #[error("{0}")]
    Usage(&'static str),
}

fn answer(dir: &Path, tool: &str, args: &[String], stdin: Option<&str>) -> Result<u8, ToolError> {
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
                serde_json::from_str(stdin.unwrap_or("{}")).map_err(ToolError::Stdin)?;
            let obj = state.as_object_mut().ok_or(ToolError::StateNotObject)?;
            obj.extend(new);
            write_json(&dir.join("state.json"), &state)?;
        }
        // The machine's loopback unless a test gives another (`unit-address`): the
        // manager binds its metrics there, and a test's address must be this machine's.
        "unit-get" if args == ["private-address"] => {
            let address = fs::read_to_string(dir.join("unit-address"));
            println!("{}", address.as_deref().unwrap_or("127.0.0.1").trim());
        }
        "relation-ids" => relations::relation_ids(dir, args),
        "relation-set" => relations::relation_set(dir, args, stdin)?,
        "relation-get" => relations::relation_get(dir, args)?,
        "secret-get" => return secrets::secret_get(dir, args),
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

/// Replaces the file whole, as the charm's own state files are: a test reading it while
/// a tool runs sees the old or the new state, never half of one.
fn write_json(path: &Path, value: &Value) -> Result<(), fs_state::FileError> {
    fs_state::write_atomic(path, value.to_string().as_bytes(), 0o644)
}
