//! The real hook tools: each call runs the tool Juju put on PATH.

use std::process::{Command, Stdio};

use serde_json::Value;

use super::{HookToolError, HookTools, LogLevel, Status, ToolResult};
use crate::host::commands::feed;

/// Runs hook tools found on PATH, as Juju provides them in a hook or action.
#[derive(Clone, Debug, Default)]
pub struct Cli;

fn run(tool: &str, args: &[&str], stdin: Option<&[u8]>) -> ToolResult<Vec<u8>> {
    let mut cmd = Command::new(tool);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|source| HookToolError::Spawn {
        tool: tool.into(),
        source,
    })?;
    // Written on its own thread while we read its output: a tool that writes before
    // it reads (or never reads) must not hold the hook on a full pipe.
    if let (Some(input), Some(pipe)) = (stdin, child.stdin.take()) {
        feed(pipe, input.to_vec());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| HookToolError::Spawn {
            tool: tool.into(),
            source,
        })?;
    if !out.status.success() {
        return Err(HookToolError::Failed {
            tool: tool.into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

fn run_json(tool: &str, args: &[&str]) -> ToolResult<Value> {
    let out = run(tool, args, None)?;
    if out.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out).map_err(|e| HookToolError::BadOutput {
        tool: tool.into(),
        reason: e.to_string(),
    })
}

/// A secret's content: a JSON object of strings. Serde's own message is not passed on:
/// it can quote the value it choked on.
fn secret_content(out: &[u8]) -> ToolResult<super::SecretContent> {
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(out).map_err(|_| HookToolError::BadOutput {
            tool: "secret-get".into(),
            reason: "not a JSON object of strings".into(),
        })?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, ghr_types::Secret::new(v)))
        .collect())
}

impl HookTools for Cli {
    fn config_get(&self) -> ToolResult<Value> {
        run_json("config-get", &["--format=json"])
    }
    fn status_set(&self, status: Status, message: &str) -> ToolResult<()> {
        run(
            "status-set",
            &["--application=False", status.as_str(), message],
            None,
        )
        .map(drop)
    }
    fn action_get(&self) -> ToolResult<Value> {
        run_json("action-get", &["--format=json"])
    }
    fn action_set(&self, values: &[(String, String)]) -> ToolResult<()> {
        if values.is_empty() {
            return Ok(());
        }
        let pairs: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let args: Vec<&str> = pairs.iter().map(String::as_str).collect();
        run("action-set", &args, None).map(drop)
    }
    fn action_fail(&self, message: &str) -> ToolResult<()> {
        run("action-fail", &[message], None).map(drop)
    }
    fn action_log(&self, message: &str) -> ToolResult<()> {
        run("action-log", &[message], None).map(drop)
    }
    fn juju_log(&self, level: LogLevel, message: &str) -> ToolResult<()> {
        run("juju-log", &["--log-level", level.as_str(), message], None).map(drop)
    }
    fn is_leader(&self) -> ToolResult<bool> {
        match run_json("is-leader", &["--format=json"])? {
            Value::Bool(b) => Ok(b),
            other => Err(HookToolError::BadOutput {
                tool: "is-leader".into(),
                reason: format!("expected true or false, got {other}"),
            }),
        }
    }
    fn state_get(&self, key: Option<&str>) -> ToolResult<Value> {
        match key {
            Some(k) => run_json("state-get", &["--format=json", k]),
            None => run_json("state-get", &["--format=json"]),
        }
    }
    fn state_set(&self, values: &serde_json::Map<String, Value>) -> ToolResult<()> {
        let body = serde_json::to_vec(values).expect("a JSON map always serializes");
        run("state-set", &["--file", "-"], Some(&body)).map(drop)
    }
    fn state_delete(&self, key: &str) -> ToolResult<()> {
        run("state-delete", &[key], None).map(drop)
    }
    fn reboot(&self, now: bool) -> ToolResult<()> {
        let args: &[&str] = if now { &["--now"] } else { &[] };
        run("juju-reboot", args, None).map(drop)
    }
    fn application_version_set(&self, version: &str) -> ToolResult<()> {
        run("application-version-set", &[version], None).map(drop)
    }
    fn private_address(&self) -> ToolResult<String> {
        let out = run("unit-get", &["private-address"], None)?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }
    fn relation_ids(&self, name: &str) -> ToolResult<Vec<String>> {
        let ids = run_json("relation-ids", &[name, "--format=json"])?;
        let bad = |reason: String| HookToolError::BadOutput {
            tool: "relation-ids".into(),
            reason,
        };
        match ids {
            Value::Null => Ok(Vec::new()),
            ids => serde_json::from_value(ids).map_err(|e| bad(e.to_string())),
        }
    }
    fn secret_get(&self, uri: &str) -> ToolResult<super::SecretContent> {
        let out = run("secret-get", &["--refresh", "--format=json", uri], None)?;
        secret_content(&out)
    }
    fn relation_set(&self, id: &str, values: &serde_json::Map<String, Value>) -> ToolResult<()> {
        let body = serde_json::to_vec(values).expect("a JSON map always serializes");
        run("relation-set", &["-r", id, "--file", "-"], Some(&body)).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A stand-in tool that fills its stdout (more than a pipe holds) and exits without
    /// ever reading its stdin.
    fn deaf_tool(dir: &std::path::Path) -> String {
        let path = dir.join("state-set");
        std::fs::write(
            &path,
            "#!/bin/sh
head -c 1000000 /dev/zero
exit 0
",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    /// Its input, far more than a pipe holds, is written while its output is read: the
    /// call returns the tool's answer instead of waiting on a full pipe (or failing on
    /// the pipe it closed).
    #[test]
    fn a_tool_that_never_reads_its_input_does_not_block_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let tool = deaf_tool(dir.path());
        let input = vec![b'x'; 1 << 20];
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(run(&tool, &["--file", "-"], Some(&input)).map(|out| out.len()));
        });
        // A deadline only to turn a hang into a failure, not a speed check.
        let out = result
            .recv_timeout(Duration::from_secs(120))
            .expect("the call returned");
        assert_eq!(out.unwrap(), 1_000_000);
    }
}
