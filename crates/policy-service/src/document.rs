//! The policy document: which rules are enabled per event. Strict JSON parsing (unknown
//! keys rejected), resolution to a flat [`Policy`], and atomic persistence to the file
//! named by `POLICY_DOCUMENT` so the active policy survives a restart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors reading, parsing or writing the policy document.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The text is not a valid policy document; the reason names the offending key.
    #[error("invalid policy document: {0}")]
    Invalid(String),
    /// The document file could not be read or written.
    #[error("policy document file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One rule's setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub enabled: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequestRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_branch_protection: Option<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collaborators: Option<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallow_fork: Option<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_job: Option<Rule>,
}

/// The rules of the events that only check collaborators.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollaboratorRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collaborators: Option<Rule>,
}

/// A policy document as posted or stored. A rule (or section) it leaves out is enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_dispatch: Option<CollaboratorRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<CollaboratorRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CollaboratorRules>,
}

impl PolicyDocument {
    /// Parses a document; the error text says which key or value is wrong.
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DocumentError::Invalid(e.to_string()))?;
        Self::from_value(value)
    }

    /// Checks an already decoded JSON value against the document's shape.
    pub fn from_value(value: serde_json::Value) -> Result<Self, DocumentError> {
        if !value.is_object() {
            return Err(DocumentError::Invalid(
                "the document must be a JSON object".into(),
            ));
        }
        serde_json::from_value(value).map_err(|e| DocumentError::Invalid(e.to_string()))
    }

    /// The rules this document enables.
    pub fn resolve(&self) -> Policy {
        let on = |rule: Option<Rule>| rule.is_none_or(|r| r.enabled);
        let pr = self.pull_request.clone().unwrap_or_default();
        let collaborators =
            |rules: &Option<CollaboratorRules>| on(rules.as_ref().and_then(|r| r.collaborators));
        Policy {
            pull_request: PullRequestPolicy {
                target_branch_protection: on(pr.target_branch_protection),
                collaborators: on(pr.collaborators),
                disallow_fork: on(pr.disallow_fork),
                execute_job: on(pr.execute_job),
            },
            workflow_dispatch_collaborators: collaborators(&self.workflow_dispatch),
            push_collaborators: collaborators(&self.push),
            schedule_collaborators: collaborators(&self.schedule),
        }
    }
}

/// Which pull request rules are enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PullRequestPolicy {
    pub target_branch_protection: bool,
    pub collaborators: bool,
    pub disallow_fork: bool,
    pub execute_job: bool,
}

/// The enabled rules, resolved from a document or the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub pull_request: PullRequestPolicy,
    pub workflow_dispatch_collaborators: bool,
    pub push_collaborators: bool,
    pub schedule_collaborators: bool,
}

impl Default for Policy {
    /// With no document: every rule enabled except `pull_request.disallow_fork`, since
    /// `execute_job` already lets a maintainer approve a fork's pull request.
    fn default() -> Self {
        let mut policy = PolicyDocument::default().resolve();
        policy.pull_request.disallow_fork = false;
        policy
    }
}

/// Where the active document is kept between restarts.
#[derive(Clone, Debug)]
pub struct DocumentFile {
    path: PathBuf,
}

impl DocumentFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DocumentFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored document, or `None` when none was ever stored. A corrupt file is an
    /// error rather than a silent fall back to the default policy.
    pub fn load(&self) -> Result<Option<PolicyDocument>, DocumentError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => PolicyDocument::parse(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.io(source)),
        }
    }

    /// Replaces the stored document atomically (0600), so a crash leaves either the old
    /// or the new document, never a torn one.
    pub fn store(&self, document: &PolicyDocument) -> Result<(), DocumentError> {
        let text = serde_json::to_vec_pretty(document)
            .map_err(|e| DocumentError::Invalid(e.to_string()))?;
        fs_state::write_atomic(&self.path, &text, 0o600).map_err(|e| DocumentError::Io {
            path: e.path,
            source: e.source,
        })
    }

    fn io(&self, source: std::io::Error) -> DocumentError {
        DocumentError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_enables_everything_but_disallow_fork() {
        let p = Policy::default();
        assert!(p.pull_request.target_branch_protection);
        assert!(p.pull_request.collaborators);
        assert!(!p.pull_request.disallow_fork);
        assert!(p.pull_request.execute_job);
        assert!(
            p.workflow_dispatch_collaborators && p.push_collaborators && p.schedule_collaborators
        );
    }

    #[test]
    fn absent_rules_are_enabled() {
        let doc = PolicyDocument::parse(r#"{"pull_request": {"execute_job": {"enabled": false}}}"#)
            .unwrap();
        let p = doc.resolve();
        assert!(!p.pull_request.execute_job);
        assert!(
            p.pull_request.disallow_fork,
            "an absent rule in a document is enabled"
        );
        assert!(p.push_collaborators);
        let empty = PolicyDocument::parse("{}").unwrap().resolve();
        assert!(empty.pull_request.disallow_fork);
    }

    #[test]
    fn every_rule_can_be_disabled() {
        let doc = PolicyDocument::parse(
            r#"{"pull_request": {"target_branch_protection": {"enabled": false},
                "collaborators": {"enabled": false}, "disallow_fork": {"enabled": false},
                "execute_job": {"enabled": false}},
              "workflow_dispatch": {"collaborators": {"enabled": false}},
              "push": {"collaborators": {"enabled": false}},
              "schedule": {"collaborators": {"enabled": false}}}"#,
        )
        .unwrap();
        let p = doc.resolve();
        assert_eq!(
            p,
            Policy {
                pull_request: PullRequestPolicy {
                    target_branch_protection: false,
                    collaborators: false,
                    disallow_fork: false,
                    execute_job: false,
                },
                workflow_dispatch_collaborators: false,
                push_collaborators: false,
                schedule_collaborators: false,
            }
        );
    }

    #[test]
    fn invalid_documents_are_rejected_with_the_reason() {
        let cases = [
            (r#"{"pull": {}}"#, "pull"),
            (
                r#"{"push": {"colaborators": {"enabled": true}}}"#,
                "colaborators",
            ),
            (
                r#"{"push": {"collaborators": {"enabled": true, "x": 1}}}"#,
                "x",
            ),
            (r#"{"push": {"collaborators": {}}}"#, "enabled"),
            (
                r#"{"push": {"collaborators": {"enabled": "yes"}}}"#,
                "boolean",
            ),
            (r#"[]"#, "object"),
            (r#"not json"#, "expected"),
        ];
        for (text, needle) in cases {
            let err = PolicyDocument::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn store_then_load_round_trips_with_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = DocumentFile::new(dir.path().join("policy.json"));
        assert_eq!(file.load().unwrap(), None);
        let doc = PolicyDocument::parse(r#"{"schedule": {"collaborators": {"enabled": false}}}"#)
            .unwrap();
        file.store(&doc).unwrap();
        assert_eq!(file.load().unwrap(), Some(doc.clone()));
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Overwriting keeps one file and no temporary leftovers.
        file.store(&PolicyDocument::default()).unwrap();
        assert_eq!(file.load().unwrap(), Some(PolicyDocument::default()));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.json");
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(
            DocumentFile::new(&path).load(),
            Err(DocumentError::Invalid(_))
        ));
    }
}
