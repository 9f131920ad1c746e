//! Thin applier: loads a rendered table with `nft -f -`, reads it back, removes it. Every
//! `nft` call goes through the host's [`Commands`], so the charm and the real-nftables
//! tests (on the host, or in a namespace through a `Commands` of their own) drive the
//! same code, through [`super::ensure`].

use std::time::Duration;

use super::render::{TableName, CHAINS, SETS};
use super::FirewallError;
use crate::host::commands::{Cmd, CmdOutput, Commands};

/// `nft` answers in milliseconds; a hung one must not hold the hook for long.
const NFT_TIMEOUT: Duration = Duration::from_secs(120);

/// The one way the charm runs `nft` on the host: `nft` from PATH through the host's
/// [`Commands`]. Tests hand it a [`Commands`] of their own (one that runs each command
/// in a network namespace, say); the code above that seam is the charm's.
#[derive(Clone)]
pub struct Nft<'a> {
    commands: &'a dyn Commands,
}

impl std::fmt::Debug for Nft<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nft")
    }
}

impl<'a> Nft<'a> {
    pub fn new(commands: &'a dyn Commands) -> Self {
        Nft { commands }
    }
}

impl Nft<'_> {
    fn table_exists(&self, table: &TableName) -> Result<bool, FirewallError> {
        let tables = self.run(&["list", "tables", "inet"], None)?;
        if !tables.success() {
            return Err(list_error(table, &tables));
        }
        let wanted = format!("table inet {table}");
        Ok(tables.stdout.lines().any(|l| l.trim() == wanted))
    }

    /// Loads a rendered firewall file for `table` (one transaction: on error the previous
    /// table, if any, is still in force) and verifies its chains and sets are there.
    /// Returns the table as nft lists it.
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
    fn load(&self, table: &TableName, ruleset: &str) -> Result<String, FirewallError> {
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
        let mut cmd = Cmd::new("nft", args).timeout(NFT_TIMEOUT);
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
    use crate::host::fakes::FakeCommands;
    use crate::host::CommandError;

    /// A host without `nft`.
    struct NoNft;

    impl Commands for NoNft {
        fn run(&self, cmd: &Cmd) -> Result<CmdOutput, CommandError> {
            Err(CommandError {
                program: cmd.program.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            })
        }
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = Nft::new(&NoNft).remove(&TableName::default()).unwrap_err();
        assert!(matches!(err, FirewallError::Spawn { .. }), "{err}");
    }

    #[test]
    fn refusal_carries_nft_stderr() {
        let kernel = FakeCommands::new();
        kernel.on("nft", &["-f"], vec![CmdOutput::failed(1, "syntax error\n")]);
        let err = Nft::new(&kernel)
            .apply_ruleset(&TableName::default(), "junk")
            .unwrap_err();
        match err {
            FirewallError::Rejected { stderr, .. } => assert_eq!(stderr, "syntax error"),
            other => panic!("{other}"),
        }
        assert_eq!(kernel.lines(), ["nft -f -"]);
    }
}
