//! A corpus of bad configuration values and action parameters fed to the real binary
//! under the hook-tool harness, where every program is a recording stand-in: each one
//! must end in a `blocked` status or an action failure naming the option or parameter,
//! without a panic, a program run, a file under GITHUB_RUNNER_ROOT, or the token in any
//! output.

mod bad_input_support;
mod harness;

use bad_input_support::{corpus, Case};
use harness::{files_under, Harness};
use serde_json::json;

/// A valid token, distinctive enough that finding it in output is never a coincidence.
const TOKEN: &str = "ghp_badInputCorpusToken0123456789xyz";

/// Calls that only read, or report; anything else would change the unit or the host.
const READ_OR_REPORT: &[&str] = &[
    "config-get",
    "status-set",
    "juju-log",
    "state-get",
    "secret-get",
    "is-leader",
    "action-get",
    "action-fail",
    "action-log",
];

fn check(case: &Case) -> anyhow::Result<()> {
    let mut h = Harness::new();
    h.isolate();
    let root = h.relocate_root();
    let mut config = json!({"path": "acme", "token": TOKEN});
    for (k, v) in case.config.as_object().unwrap() {
        config[k] = v.clone();
    }
    h.set_config(config.clone());
    if let Some(params) = &case.params {
        h.set_action_params(params.clone());
    }
    let run = h.run(case.event);
    let what = format!("{} {}", case.event, case.config);
    let everything = format!("{:?}\n{}\n{}", h.calls(), run.stdout(), run.stderr());
    if everything.contains("panicked") {
        anyhow::bail!("{what}: panicked: {}", run.stderr());
    }
    if !run.success() {
        anyhow::bail!("{what}: exit {:?}: {}", run.output.status, run.stderr());
    }
    // The token of this case, whatever it is, never shows.
    // (A secret's URI is no secret: messages name it.)
    let token = config["token"].as_str().unwrap_or(TOKEN).trim().to_string();
    if token.len() >= 8 && !token.starts_with("secret:") && everything.contains(&token) {
        anyhow::bail!("{what}: the token leaked");
    }
    if everything.contains(TOKEN) {
        anyhow::bail!("{what}: the token leaked");
    }
    if everything.contains("pastedKeyBody") {
        anyhow::bail!("{what}: the private key leaked");
    }
    let said = if case.event.starts_with("actions/") {
        h.action_failure()
            .ok_or_else(|| anyhow::anyhow!("{what}: no action-fail; calls {:?}", h.calls()))?
    } else {
        match h.last_status() {
            Some((status, message)) if status == "blocked" => message,
            other => anyhow::bail!("{what}: status {other:?}, want blocked"),
        }
    };
    for word in case.want {
        if !said.contains(word) {
            anyhow::bail!("{what}: {said:?} does not contain {word:?}");
        }
    }
    if said.chars().count() > 2000 {
        anyhow::bail!("{what}: message of {} chars", said.chars().count());
    }
    for call in h.calls() {
        if !READ_OR_REPORT.contains(&call.tool.as_str()) {
            anyhow::bail!("{what}: unexpected call {call:?}");
        }
    }
    let written = files_under(&root);
    if !written.is_empty() {
        anyhow::bail!("{what}: wrote {written:?}");
    }
    Ok(())
}

#[test]
fn every_bad_input_is_refused_clearly_and_changes_nothing() {
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(c).err().map(|e| e.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
