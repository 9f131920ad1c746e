//! Where a credential must never be: the argv and stdin of every hook tool and host
//! command the charm ran, its statuses and logs, every hook's stderr, the runner
//! manager's log (every line, not only those that parse) and command line, the policy
//! service's log, and any file under the unit's root that its group or others may read;
//! over the unit's whole life, what tests cleared from view included. Secrets are the
//! strings passed (a token, a PEM's body lines, the last installation token) and any
//! JWT or installation token at all, by the marks every one of them carries.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::Unit;

/// The base64url of `{"typ":"JWT","alg":"RS256"}`: how every JWT the charm signs begins.
pub const JWT_HEADER: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9";
/// GitHub's prefix of installation access tokens, expired ones included.
pub const INSTALLATION_TOKEN: &str = "ghs_";

/// Fails naming the place and the secret's first characters.
pub fn assert_nowhere(unit: &Unit, secrets: &[&str], policy_log: &str) {
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 8).collect();
    assert!(!secrets.is_empty(), "nothing to look for");
    secrets.extend([JWT_HEADER, INSTALLATION_TOKEN]);
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
    check("the manager's log", &unit.h.service_logs().join("\n"));
    check("hooks' stderr or what a test cleared", &unit.h.history());
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

/// Regular files under `dir` whose mode lets their group or anyone read them.
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
        } else if meta.is_file() && meta.permissions().mode() & 0o044 != 0 {
            found.push(path);
        }
    }
    found
}

/// The lines of a PEM's body: what a leaked key would show even when cut or re-wrapped.
pub fn pem_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}
