//! What the stand-ins recorded: every call, and views of it by hook tool (statuses,
//! action results, logs, reboots).

use std::collections::BTreeMap;
use std::fs;

use serde_json::Value;

use super::Harness;

const CLEARED: &str = "cleared.txt";
/// Where [`Harness::run`] keeps every hook's stderr.
pub(super) const HOOK_STDERR: &str = "hook-stderr.txt";

pub(super) fn append(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write as _;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

/// One recorded call of a stand-in.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub tool: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
    /// Proxy variables and DEBIAN_FRONTEND as the call saw them.
    pub env: BTreeMap<String, String>,
}

impl Harness {
    pub fn calls(&self) -> Vec<Call> {
        let text = fs::read_to_string(self.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| Call {
                tool: v["tool"].as_str().unwrap_or_default().to_string(),
                args: v["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                stdin: v["stdin"].as_str().map(String::from),
                env: v["env"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    pub fn clear_calls(&self) {
        let calls = self.path().join("calls.jsonl");
        self.keep_cleared(&calls);
        let _ = fs::remove_file(calls);
        // And what the services logged so far: the next look sees only what follows.
        for log in self.service_log_files() {
            self.keep_cleared(&log);
            let _ = fs::write(log, "");
        }
    }

    /// Everything [`Harness::clear_calls`] took out of view, and every hook's stderr:
    /// the leak checks look at a unit's whole life, not at what a test last watched.
    pub fn history(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.path().join(name)).unwrap_or_default();
        read(CLEARED) + &read(HOOK_STDERR)
    }

    fn keep_cleared(&self, file: &std::path::Path) {
        append(
            &self.path().join(CLEARED),
            &fs::read(file).unwrap_or_default(),
        );
    }

    /// `(status, message)` of every status-set, in order.
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.calls_of("status-set")
            .map(|c| {
                let rest: Vec<&String> = c.args.iter().filter(|a| !a.starts_with("--")).collect();
                (
                    rest[0].clone(),
                    rest.get(1).map(|s| s.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }

    pub fn last_status(&self) -> Option<(String, String)> {
        self.statuses().pop()
    }

    /// All action-set pairs, merged.
    pub fn action_results(&self) -> BTreeMap<String, String> {
        self.calls_of("action-set")
            .flat_map(|c| c.args.clone())
            .filter_map(|a| {
                a.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect()
    }

    pub fn action_failure(&self) -> Option<String> {
        self.calls_of("action-fail")
            .last()
            .and_then(|c| c.args.first().cloned())
    }

    fn service_log_files(&self) -> Vec<std::path::PathBuf> {
        let dir = self.path().join("services");
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect()
    }

    /// What the services the stand-in `systemctl` started (the runner manager) wrote
    /// to their log, one line each: as journald would hold it.
    pub fn service_logs(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for log in self.service_log_files() {
            let text = fs::read_to_string(log).unwrap_or_default();
            lines.extend(text.lines().map(String::from));
        }
        lines
    }

    /// `(level, message)` of every juju-log call, then of every line the runner
    /// manager logged (the unit's log is both: `juju debug-log` and the service's
    /// journal), since the last [`Harness::clear_calls`].
    pub fn logs(&self) -> Vec<(String, String)> {
        let hooks = self.calls_of("juju-log").map(|c| {
            (
                c.args.get(1).cloned().unwrap_or_default(),
                c.args.last().cloned().unwrap_or_default(),
            )
        });
        let services = self
            .service_logs()
            .into_iter()
            .filter_map(|l| service_line(&l));
        hooks.chain(services).collect()
    }

    pub fn reboots(&self) -> Vec<Vec<String>> {
        self.calls_of("juju-reboot")
            .map(|c| c.args.clone())
            .collect()
    }

    pub fn calls_of<'a>(&self, tool: &'a str) -> impl Iterator<Item = Call> + 'a {
        self.calls().into_iter().filter(move |c| c.tool == tool)
    }
}

/// `(level, message)` of an env_logger line, `[TIME LEVEL target] message`, with the
/// level named as juju-log names it.
fn service_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('[')?;
    let (head, message) = rest.split_once("] ")?;
    let level = head.split_whitespace().nth(1)?;
    let level = if level == "WARN" { "WARNING" } else { level };
    Some((level.to_string(), message.to_string()))
}
