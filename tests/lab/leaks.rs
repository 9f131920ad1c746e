//! Where a credential must never be: the argv and stdin of every hook tool and host
//! command the charm ran, its statuses and logs, the runner manager's log and command
//! line, the policy service's log, and any file under the unit's root that others may
//! read. Secrets are passed as the strings to look for (a token, a PEM's body lines, a
//! JWT or an installation token the simulator issued).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Unit;

/// Fails naming the place and the secret's first characters.
pub fn assert_nowhere(unit: &Unit, secrets: &[&str], policy_log: &str) {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 8).collect();
    assert!(!secrets.is_empty(), "nothing to look for");
    let check = |place: &str, text: &str| {
        for secret in &secrets {
            assert!(
                !text.contains(secret),
                "{}... is in {place}",
                &secret[..6.min(secret.len())]
            );
        }
    };
    for call in unit.h.calls() {
        check(&format!("{} argv", call.tool), &call.args.join(" "));
        check(
            &format!("{} stdin", call.tool),
            call.stdin.as_deref().unwrap_or(""),
        );
    }
    for (status, message) in unit.h.statuses() {
        check(&format!("status {status}"), &message);
    }
    for (level, message) in unit.h.logs() {
        check(&format!("log {level}"), &message);
    }
    check("the policy service's log", policy_log);
    for pid in unit.h.service_pids() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        check("the manager's argv", &String::from_utf8_lossy(&cmdline));
    }
    for file in readable_by_others(unit.root()) {
        let text = std::fs::read(&file).unwrap_or_default();
        check(&file.display().to_string(), &String::from_utf8_lossy(&text));
    }
}

/// Regular files under `dir` whose mode lets anyone read them.
fn readable_by_others(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            found.extend(readable_by_others(&path));
        } else if meta.is_file() && meta.permissions().mode() & 0o004 != 0 {
            found.push(path);
        }
    }
    found
}

/// The lines of a PEM's body: what a leaked key would show even when cut or re-wrapped.
pub fn pem_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}
