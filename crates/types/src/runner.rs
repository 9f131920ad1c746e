//! Runner identity: names that carry the owning unit's prefix, so a unit only ever
//! touches its own instances and registrations.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `<app>-<unit number>-`, e.g. `github-runner-0-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunnerPrefix(String);

/// LXD VM socket paths are short; runner names stay within this.
pub const MAX_NAME_LEN: usize = 40;
const SUFFIX_HEX: usize = 8;

impl RunnerPrefix {
    /// From `JUJU_UNIT_NAME` (`github-runner/0`). Long application names are cut so a
    /// full name still fits in [`MAX_NAME_LEN`].
    pub fn from_unit(unit: &str) -> Self {
        let (app, number) = unit.rsplit_once('/').unwrap_or((unit, "0"));
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        let number = clean(number);
        let room = MAX_NAME_LEN - SUFFIX_HEX - number.len() - 2;
        let app: String = clean(app).chars().take(room).collect();
        let app = app.trim_matches('-');
        let app = if app.is_empty() { "runner" } else { app };
        RunnerPrefix(format!("{app}-{number}-"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` is one of ours: our prefix followed by exactly the hex suffix, so
    /// `app-1-` never claims `app-10-...`.
    pub fn owns(&self, name: &str) -> bool {
        name.strip_prefix(&self.0).is_some_and(|rest| {
            rest.len() == SUFFIX_HEX && rest.chars().all(|c| c.is_ascii_hexdigit())
        })
    }

    /// A fresh runner name.
    pub fn new_name(&self) -> RunnerName {
        let suffix: u32 = rand::random();
        RunnerName(format!("{}{:08x}", self.0, suffix))
    }
}

/// The name shared by a runner's LXD instance and its GitHub registration, unique
/// within its organisation or repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunnerName(pub String);

impl RunnerName {
    pub fn new(name: impl Into<String>) -> Self {
        RunnerName(name.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunnerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_belong_to_their_unit() {
        let p = RunnerPrefix::from_unit("github-runner/0");
        assert_eq!(p.as_str(), "github-runner-0-");
        let name = p.new_name();
        assert!(p.owns(name.as_str()));
        assert!(name.as_str().len() <= MAX_NAME_LEN);
        assert!(!RunnerPrefix::from_unit("github-runner/1").owns(name.as_str()));
        assert!(!p.owns("github-runner-0-xyz"));
        assert!(!RunnerPrefix::from_unit("github-runner/1").owns("github-runner-10-0000abcd"));
    }

    #[test]
    fn long_application_names_are_cut() {
        let p = RunnerPrefix::from_unit(&format!("{}/123", "a".repeat(80)));
        assert!(p.new_name().as_str().len() <= MAX_NAME_LEN);
        assert!(p.as_str().ends_with("-123-"));
    }
}
