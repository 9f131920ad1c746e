//! Keeps the kernel's table what the charm rendered: before runners are created the table
//! is listed and compared with the listing taken right after the charm's last load, and
//! loaded again (atomically) when it is missing (a reboot), altered (a flushed chain, a
//! deleted rule) or the rendered ruleset changed. A steady check only reads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::apply::Nft;
use super::render::{render, FirewallSpec};
use super::FirewallError;
use crate::host::HostPaths;
use fs_state::{ensure_private_dir, write_atomic};

/// The two root-only files of the last load: the ruleset (what the boot unit loads) and
/// the table as nft listed it right after (what a later check compares with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadRecord {
    pub ruleset: PathBuf,
    pub listing: PathBuf,
}

impl LoadRecord {
    pub fn at(paths: &HostPaths) -> Self {
        LoadRecord {
            ruleset: paths.firewall_record(),
            listing: paths.firewall_listing(),
        }
    }

    fn read(&self) -> (Option<String>, Option<String>) {
        let read = |p: &PathBuf| std::fs::read_to_string(p).ok();
        (read(&self.ruleset), read(&self.listing))
    }

    /// Ruleset first: a crash between the two writes leaves a listing that no longer
    /// matches, which only costs one more load.
    fn write(&self, ruleset: &str, listing: &str) -> Result<(), FirewallError> {
        for (path, text) in [(&self.ruleset, ruleset), (&self.listing, listing)] {
            let dir = path.parent().unwrap_or(path);
            ensure_private_dir(dir)
                .and_then(|()| write_atomic(path, text.as_bytes(), 0o600))
                .map_err(FirewallError::Record)?;
        }
        Ok(())
    }
}

/// How the kernel's table compares with what the charm last loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Listed exactly as after the last load of the same ruleset: nothing to do.
    Current,
    /// The rendered ruleset differs from the last one loaded (new config, new charm,
    /// or no record yet).
    Changed,
    /// No such table in the kernel: a reboot, or someone deleted it.
    Missing,
    /// The table is there but lists differently: the named sets and chains (or the
    /// table's own lines) were changed behind the charm's back.
    Altered(Vec<String>),
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Current => f.write_str("as loaded"),
            Drift::Changed => f.write_str("a new ruleset"),
            Drift::Missing => f.write_str("missing"),
            Drift::Altered(parts) => write!(f, "altered ({})", parts.join(", ")),
        }
    }
}

/// Compares the rendered ruleset and the current listing (`None`: no table) with the
/// record of the last load. Pure.
pub fn drift(
    rendered: &str,
    recorded: (Option<&str>, Option<&str>),
    listed: Option<&str>,
) -> Drift {
    let Some(listed) = listed else {
        return Drift::Missing;
    };
    if recorded.0 != Some(rendered) {
        return Drift::Changed;
    }
    match recorded.1 {
        Some(was) if was == listed => Drift::Current,
        Some(was) => Drift::Altered(altered_parts(was, listed)),
        None => Drift::Changed,
    }
}

/// The sets and chains whose lines differ between two listings of one table.
fn altered_parts(was: &str, now: &str) -> Vec<String> {
    let (was, now) = (blocks(was), blocks(now));
    let mut parts: Vec<String> = was
        .keys()
        .chain(now.keys())
        .filter(|k| was.get(*k) != now.get(*k))
        .cloned()
        .collect();
    parts.sort();
    parts.dedup();
    if parts.is_empty() {
        parts.push(TABLE_LINES.into());
    }
    parts
}

const TABLE_LINES: &str = "the table's own lines";

/// A listing cut into its `set NAME` and `chain NAME` blocks (key: that header), the
/// rest under [`TABLE_LINES`].
fn blocks(listing: &str) -> BTreeMap<String, Vec<&str>> {
    let mut out: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut current = TABLE_LINES.to_string();
    for line in listing.lines() {
        let trimmed = line.trim();
        let header = trimmed
            .strip_suffix(" {")
            .filter(|h| h.starts_with("set ") || h.starts_with("chain "));
        if let Some(h) = header {
            current = h.to_string();
        }
        out.entry(current.clone()).or_default().push(trimmed);
        if trimmed == "}" && current != TABLE_LINES {
            current = TABLE_LINES.into();
        }
    }
    out
}

/// Makes the kernel hold `spec`'s table exactly as rendered: lists it, and loads it
/// again when [`drift`] says so, keeping the new [`LoadRecord`]. Returns what was found.
pub fn ensure(nft: &Nft, spec: &FirewallSpec, record: &LoadRecord) -> Result<Drift, FirewallError> {
    let rendered = render(spec);
    let (ruleset, listing) = record.read();
    let listed = nft.list(&spec.table)?;
    let found = drift(
        &rendered,
        (ruleset.as_deref(), listing.as_deref()),
        listed.as_deref(),
    );
    let table = &spec.table;
    match &found {
        Drift::Current => return Ok(found),
        Drift::Changed => log::info!("firewall: loading table inet {table} (a new ruleset)"),
        Drift::Missing if ruleset.is_none() => {
            log::info!("firewall: loading table inet {table} for the first time")
        }
        other => log::warn!("firewall: table inet {table} is {other}; loading it again"),
    }
    let listed = nft.apply_ruleset(table, &rendered)?;
    record.write(&rendered, &listed)?;
    Ok(found)
}

#[cfg(test)]
#[path = "ensure_tests.rs"]
mod tests;
