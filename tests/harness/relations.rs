//! The unit's relations as the stand-in relation tools see them: which exist
//! (`relation-ids`), and what the charm set in them (`relation-set`), read back with the
//! stand-in `relation-get` as a related unit would.

use std::fs;
use std::process::Command;

use serde_json::Value;

use super::Harness;

impl Harness {
    /// The relations `relation-ids` answers with, by endpoint:
    /// `{"cos-agent": ["cos-agent:3"]}`.
    pub fn set_relations(&self, relations: Value) {
        fs::write(self.path().join("relations.json"), relations.to_string()).unwrap();
    }

    /// What UNIT (or its application, `app/N` given as `app`) set in relation ID, read
    /// with `relation-get --format=json -r ID - UNIT`: `{}` when nothing.
    pub fn relation_get(&self, id: &str, unit: &str) -> Value {
        let mut cmd = Command::new(self.path().join("bin").join("relation-get"));
        self.hook_env(&mut cmd, "");
        let out = cmd
            .args(["--format=json", "-r", id, "-", unit])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the stand-in relation-get");
        assert!(out.status.success(), "relation-get: {out:?}");
        serde_json::from_slice(&out.stdout).expect("relation-get prints JSON")
    }

    /// The `relation-set` calls: `(args, stdin)` each.
    pub fn relation_sets(&self) -> Vec<(Vec<String>, Option<String>)> {
        self.calls_of("relation-set")
            .map(|c| (c.args, c.stdin))
            .collect()
    }
}
