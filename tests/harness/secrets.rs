//! Juju user secrets as the stand-in `secret-get` sees them: the test plays the
//! operator (`juju add-secret`, `grant-secret`, `update-secret`, `revoke-secret`,
//! `remove-secret`) by editing `secrets.json`, and Juju's uniter by firing
//! `secret-changed`. The formats are crates/hook-standin/src/secrets.rs's.

use std::fs;
use std::process::{Command, Output};

use rand::Rng;
use serde_json::{json, Value};

use super::{Harness, HookRun};

const SECRETS: &str = "secrets.json";
const TRACKING: &str = "secret-tracking.json";

impl Harness {
    /// A new user secret holding `content` as revision 1, not yet granted to the
    /// charm's application; its URI (`secret:ID`).
    pub fn add_secret(&self, content: &[(&str, &str)]) -> String {
        // The tool is on PATH only for tests that use secrets.
        self.shadow(&["secret-get"]);
        let id = new_secret_id();
        self.edit_secrets(|all| {
            all[&id] = json!({
                "revisions": [content_map(content)],
                "granted": false, "removed": false, "label": "",
            });
        });
        format!("secret:{id}")
    }

    /// `juju grant-secret`: the charm's application may read it.
    pub fn grant_secret(&self, uri: &str) {
        self.edit_secret(uri, |s| s["granted"] = json!(true));
    }

    /// `juju revoke-secret`: reads are denied from now on.
    pub fn revoke_secret(&self, uri: &str) {
        self.edit_secret(uri, |s| s["granted"] = json!(false));
    }

    /// `juju remove-secret`: the secret is gone ("not found").
    pub fn remove_secret(&self, uri: &str) {
        self.edit_secret(uri, |s| s["removed"] = json!(true));
    }

    /// `juju update-secret`: `content` becomes the latest revision. The unit keeps
    /// reading the one it tracks until it reads with `--refresh`.
    pub fn update_secret(&self, uri: &str, content: &[(&str, &str)]) {
        let content = content_map(content);
        self.edit_secret(uri, |s| {
            s["revisions"].as_array_mut().unwrap().push(content);
        });
    }

    /// The revision of the secret the unit tracks; `None` before its first read.
    pub fn tracked_revision(&self, uri: &str) -> Option<u64> {
        let tracking = read_json(&self.path().join(TRACKING));
        tracking.get(secret_id(uri)).and_then(Value::as_u64)
    }

    /// Fires `secret-changed` for `uri` as Juju does after an `update-secret`: the URI
    /// and the unit's label for it (none here) in the hook's environment.
    pub fn secret_changed(&self, uri: &str) -> HookRun {
        self.shadow(&["secret-get"]);
        self.run_with_env(
            "hooks/secret-changed",
            &[("JUJU_SECRET_ID", uri), ("JUJU_SECRET_LABEL", "")],
        )
    }

    /// Runs the stand-in `secret-get ARGS` with a hook's environment, as the charm
    /// would (and so recorded, and tracking, as the charm's calls are).
    pub fn secret_get(&self, args: &[&str]) -> Output {
        self.shadow(&["secret-get"]);
        let mut cmd = Command::new(self.path().join("bin").join("secret-get"));
        self.hook_env(&mut cmd, "");
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the stand-in secret-get")
    }

    fn edit_secret(&self, uri: &str, change: impl FnOnce(&mut Value)) {
        let id = secret_id(uri).to_string();
        self.edit_secrets(|all| {
            let secret = all.get_mut(&id);
            change(secret.unwrap_or_else(|| panic!("no secret {id} was added")));
        });
    }

    /// Replaces `secrets.json` whole and owner-only, as the stand-in writes it: it
    /// holds secret values.
    fn edit_secrets(&self, change: impl FnOnce(&mut Value)) {
        let path = self.path().join(SECRETS);
        let mut all = read_json(&path);
        change(&mut all);
        fs_state::write_atomic(&path, all.to_string().as_bytes(), 0o600).unwrap();
    }
}

/// A fresh id shaped as Juju's (an xid: 20 characters of base32hex).
fn new_secret_id() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| DIGITS[rng.gen_range(0..DIGITS.len())] as char)
        .collect()
}

/// The id in `secret:ID` or `secret://MODEL/ID`.
fn secret_id(uri: &str) -> &str {
    uri.rsplit(['/', ':']).next().unwrap_or(uri)
}

fn content_map(content: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = content
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Value::Object(map)
}

fn read_json(path: &std::path::Path) -> Value {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(json!({}))
}
