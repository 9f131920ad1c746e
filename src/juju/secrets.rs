//! Juju secrets as the config parse reads them: `secret-get` through the hook tools,
//! its refusals sorted into what the operator must do, and every value read kept for
//! the runner manager (which runs outside any hook, where `secret-get` cannot).

use std::cell::RefCell;

use super::{HookToolError, HookTools};
use crate::config::{SecretError, SecretSnapshot, SecretSource};
use ghr_types::Secret;

/// Reads secrets with the hook's `secret-get`, remembering what it read.
pub struct HookSecrets<'a> {
    juju: &'a dyn HookTools,
    read: RefCell<SecretSnapshot>,
}

impl<'a> HookSecrets<'a> {
    pub fn new(juju: &'a dyn HookTools) -> Self {
        HookSecrets {
            juju,
            read: RefCell::new(SecretSnapshot::default()),
        }
    }

    /// What was read, for the runner manager's settings.
    pub fn snapshot(self) -> SecretSnapshot {
        self.read.into_inner()
    }
}

impl SecretSource for HookSecrets<'_> {
    fn read(&self, uri: &str, key: &'static str) -> Result<Secret, SecretError> {
        let content = self.juju.secret_get(uri).map_err(refusal)?;
        let value = content
            .get(key)
            .cloned()
            .ok_or(SecretError::MissingKey(key))?;
        self.read.borrow_mut().insert(uri, key, value.clone());
        Ok(value)
    }
}

/// Juju answers "permission denied" for a secret never granted and for a revoked one
/// alike, and "... not found" for one that is gone (its stderr never holds a value).
fn refusal(e: HookToolError) -> SecretError {
    match e {
        HookToolError::Failed { stderr, .. } if stderr.contains("permission denied") => {
            SecretError::Refused
        }
        HookToolError::Failed { stderr, .. } if stderr.contains("not found") => {
            SecretError::NotFound
        }
        HookToolError::Failed { stderr, .. } => {
            SecretError::Failed(stderr.trim_start_matches("ERROR ").to_string())
        }
        other => SecretError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::juju::fakes::FakeJuju;

    fn juju_with(uri: &str, answer: Result<Vec<(&str, &str)>, &str>) -> FakeJuju {
        let juju = FakeJuju::default();
        let answer = answer
            .map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .map_err(str::to_string);
        juju.secrets.borrow_mut().insert(uri.into(), answer);
        juju
    }

    #[test]
    fn a_read_value_is_kept_for_the_manager() {
        let juju = juju_with("secret:abc", Ok(vec![("token", "ghp_x"), ("other", "y")]));
        let secrets = HookSecrets::new(&juju);
        assert_eq!(
            secrets.read("secret:abc", "token").unwrap().expose(),
            "ghp_x"
        );
        let snapshot = secrets.snapshot();
        assert_eq!(
            snapshot.read("secret:abc", "token").unwrap().expose(),
            "ghp_x"
        );
        // Only the key the config uses is handed on.
        assert_eq!(
            snapshot.read("secret:abc", "other"),
            Err(SecretError::MissingKey("other"))
        );
    }

    #[test]
    fn refusals_are_sorted_by_what_the_operator_must_do() {
        let cases = [
            ("ERROR permission denied", SecretError::Refused),
            ("ERROR secret \"abc\" not found", SecretError::NotFound),
            (
                "ERROR secret URI \"x\" not valid",
                SecretError::Failed("secret URI \"x\" not valid".into()),
            ),
        ];
        for (stderr, want) in cases {
            let juju = juju_with("secret:abc", Err(stderr));
            let secrets = HookSecrets::new(&juju);
            assert_eq!(secrets.read("secret:abc", "token"), Err(want));
        }
        let juju = juju_with("secret:abc", Ok(vec![("other", "y")]));
        assert_eq!(
            HookSecrets::new(&juju).read("secret:abc", "token"),
            Err(SecretError::MissingKey("token"))
        );
    }
}
