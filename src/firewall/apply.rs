//! Thin applier: loads a rendered table with `nft -f -`, reads it back, removes it. Every
//! `nft` call goes through the host's [`Commands`], so the charm and the tests (real
//! `nft`, in the host or a namespace of their own) drive the same code.

use std::time::Duration;

use super::render::{render, FirewallSpec, TableName, CHAINS, SETS};
use super::FirewallError;
use crate::host::commands::{Cmd, CmdOutput, Commands, SystemCommands};

/// `nft` answers in milliseconds; a hung one must not hold the hook for long.
const NFT_TIMEOUT: Duration = Duration::from_secs(120);

/// How to run `nft`: the plain binary on the host, or a command prefix such as
/// `ip netns exec NS nft` so tests can work in a namespace of their own.
#[derive(Clone)]
pub struct Nft<'a> {
    commands: &'a dyn Commands,
    argv: Vec<String>,
}

impl Default for Nft<'static> {
    fn default() -> Self {
        Nft::new(&SystemCommands)
    }
}

impl std::fmt::Debug for Nft<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nft({})", self.argv.join(" "))
    }
}

impl<'a> Nft<'a> {
    /// `nft` from PATH, run through `commands`.
    pub fn new(commands: &'a dyn Commands) -> Self {
        Nft {
            commands,
            argv: vec!["nft".into()],
        }
    }
}

impl Nft<'static> {
    /// Runs `program args... <nft arguments>` for every call.
    pub fn with_command(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let mut argv = vec![program.into()];
        argv.extend(args.into_iter().map(Into::into));
        Nft {
            commands: &SystemCommands,
            argv,
        }
    }

    /// `nft` inside the named network namespace (`ip netns exec NAME nft`).
    pub fn in_netns(name: &str) -> Self {
        Self::with_command("ip", ["netns", "exec", name, "nft"])
    }
}

impl Nft<'_> {
    /// Renders `spec`, replaces its table atomically and checks it is there. Returns the
    /// table as nft lists it. On error the previous table (if any) is still in force.
    pub fn apply(&self, spec: &FirewallSpec) -> Result<String, FirewallError> {
        self.apply_ruleset(&spec.table, &render(spec))
    }

    fn table_exists(&self, table: &TableName) -> Result<bool, FirewallError> {
        let tables = self.run(&["list", "tables", "inet"], None)?;
        if !tables.success() {
            return Err(list_error(table, &tables));
        }
        let wanted = format!("table inet {table}");
        Ok(tables.stdout.lines().any(|l| l.trim() == wanted))
    }

    /// Loads an already rendered firewall file for `table` and verifies its chains and
    /// sets are there.
    pub fn apply_ruleset(&self, table: &TableName, ruleset: &str) -> Result<String, FirewallError> {
        let listed = self.load(table, ruleset)?;
        let wanted = CHAINS
            .iter()
            .map(|c| format!("chain {c}"))
            .chain(SETS.iter().map(|s| format!("set {s}")));
        for block in wanted {
            if !listed.lines().any(|l| l.trim() == format!("{block} {{")) {
                return Err(FirewallError::Verify {
                    table: table.to_string(),
                    missing: block,
                });
            }
        }
        Ok(listed)
    }

    /// Loads any `nft -f` file that defines the `inet` table `table` and returns
    /// the table as listed afterwards.
    pub fn load(&self, table: &TableName, ruleset: &str) -> Result<String, FirewallError> {
        let out = self.run(&["-f", "-"], Some(ruleset))?;
        if !out.success() {
            return Err(rejected(table, &out));
        }
        let listed = self.list(table)?.ok_or_else(|| FirewallError::Verify {
            table: table.to_string(),
            missing: "the table itself".into(),
        })?;
        Ok(listed)
    }

    /// `nft list table inet NAME`, or `None` when there is no such table.
    pub fn list(&self, table: &TableName) -> Result<Option<String>, FirewallError> {
        // Listing a missing table fails with ENOENT; ask for the table names first so
        // "absent" is not confused with "nft is broken".
        if !self.table_exists(table)? {
            return Ok(None);
        }
        let out = self.run(&["list", "table", "inet", table.as_str()], None)?;
        if !out.success() {
            return Err(list_error(table, &out));
        }
        Ok(Some(out.stdout))
    }

    /// Deletes the table; a missing table is not an error (creating it first in the same
    /// transaction makes the delete always valid).
    pub fn remove(&self, table: &TableName) -> Result<(), FirewallError> {
        let script = format!("table inet {table}\ndelete table inet {table}\n");
        let out = self.run(&["-f", "-"], Some(&script))?;
        if !out.success() {
            return Err(rejected(table, &out));
        }
        Ok(())
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<CmdOutput, FirewallError> {
        let prefix: Vec<&str> = self.argv[1..].iter().map(String::as_str).collect();
        let mut cmd = Cmd::new(&self.argv[0], &prefix).timeout(NFT_TIMEOUT);
        cmd.args.extend(args.iter().map(|a| a.to_string()));
        if let Some(text) = stdin {
            cmd = cmd.stdin(text.as_bytes().to_vec());
        }
        self.commands.run(&cmd).map_err(|e| FirewallError::Spawn {
            program: e.program,
            source: e.source,
        })
    }
}

fn rejected(table: &TableName, out: &CmdOutput) -> FirewallError {
    FirewallError::Rejected {
        table: table.to_string(),
        status: out.status_text(),
        stderr: out.stderr.trim().to_string(),
    }
}

fn list_error(table: &TableName, out: &CmdOutput) -> FirewallError {
    FirewallError::List {
        table: table.to_string(),
        status: out.status_text(),
        stderr: out.stderr.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_a_spawn_error() {
        let nft = Nft::with_command("/nonexistent/nft", Vec::<String>::new());
        let err = nft.remove(&TableName::default()).unwrap_err();
        assert!(matches!(err, FirewallError::Spawn { .. }), "{err}");
    }

    #[test]
    fn refusal_carries_nft_stderr() {
        // `sh -c` stands in for an nft that refuses whatever it gets.
        let nft = Nft::with_command(
            "sh",
            [
                "-c",
                "cat >/dev/null; echo 'syntax error' >&2; exit 1",
                "nft",
            ],
        );
        let err = nft
            .apply_ruleset(&TableName::default(), "junk")
            .unwrap_err();
        match err {
            FirewallError::Rejected { stderr, .. } => assert_eq!(stderr, "syntax error"),
            other => panic!("{other}"),
        }
    }
}
