//! Thin applier: loads a rendered table with `nft -f -`, reads it back, removes it.

use std::ffi::OsString;
use std::io::Write as _;
use std::process::{Command, Stdio};

use std::path::Path;

use super::render::{render, FirewallSpec, TableName, CHAINS};
use super::FirewallError;
use crate::host::commands::{Cmd, Commands};

/// How to run `nft`: the plain binary on the host, or a command prefix such as
/// `ip netns exec NS nft` so tests can work in a namespace of their own.
#[derive(Clone, Debug)]
pub struct Nft {
    argv: Vec<OsString>,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            argv: vec!["nft".into()],
        }
    }
}

impl Nft {
    /// Runs `program args... <nft arguments>` for every call.
    pub fn with_command(
        program: impl Into<OsString>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        let mut argv = vec![program.into()];
        argv.extend(args.into_iter().map(Into::into));
        Nft { argv }
    }

    /// `nft` inside the named network namespace (`ip netns exec NAME nft`).
    pub fn in_netns(name: &str) -> Self {
        Self::with_command("ip", ["netns", "exec", name, "nft"])
    }

    /// Renders `spec`, replaces its table atomically and checks it is there. Returns the
    /// table as nft lists it. On error the previous table (if any) is still in force.
    pub fn apply(&self, spec: &FirewallSpec) -> Result<String, FirewallError> {
        self.apply_ruleset(&spec.table, &render(spec))
    }

    fn table_exists(&self, table: &TableName) -> Result<bool, FirewallError> {
        let tables = self.run(&["list", "tables", "inet"], None)?;
        if !tables.status.success() {
            return Err(list_error(table, &tables));
        }
        let wanted = format!("table inet {table}");
        Ok(String::from_utf8_lossy(&tables.stdout)
            .lines()
            .any(|l| l.trim() == wanted))
    }

    /// Loads an already rendered firewall file for `table` and verifies its chains.
    pub fn apply_ruleset(&self, table: &TableName, ruleset: &str) -> Result<String, FirewallError> {
        let listed = self.load(table, ruleset)?;
        for chain in CHAINS {
            if !listed
                .lines()
                .any(|l| l.trim() == format!("chain {chain} {{"))
            {
                return Err(FirewallError::Verify {
                    table: table.to_string(),
                    missing: format!("chain {chain}"),
                });
            }
        }
        Ok(listed)
    }

    /// Loads any `nft -f` file that defines the `inet` table `table` and returns
    /// the table as listed afterwards.
    pub fn load(&self, table: &TableName, ruleset: &str) -> Result<String, FirewallError> {
        let out = self.run(&["-f", "-"], Some(ruleset))?;
        if !out.status.success() {
            return Err(FirewallError::Rejected {
                table: table.to_string(),
                status: out.status.to_string(),
                stderr: stderr_of(&out),
            });
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
        if !out.status.success() {
            return Err(list_error(table, &out));
        }
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    /// Deletes the table; a missing table is not an error (creating it first in the same
    /// transaction makes the delete always valid).
    pub fn remove(&self, table: &TableName) -> Result<(), FirewallError> {
        let script = format!("table inet {table}\ndelete table inet {table}\n");
        let out = self.run(&["-f", "-"], Some(&script))?;
        if !out.status.success() {
            return Err(FirewallError::Rejected {
                table: table.to_string(),
                status: out.status.to_string(),
                stderr: stderr_of(&out),
            });
        }
        Ok(())
    }

    fn run(
        &self,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<std::process::Output, FirewallError> {
        let program = self.argv[0].to_string_lossy().into_owned();
        let spawn_err = |source| FirewallError::Spawn {
            program: program.clone(),
            source,
        };
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(text) = stdin {
            // Dropping the handle after the write closes stdin, which ends nft's input.
            let mut pipe = child.stdin.take().expect("stdin was piped");
            pipe.write_all(text.as_bytes()).map_err(spawn_err)?;
        }
        child.wait_with_output().map_err(spawn_err)
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn list_error(table: &TableName, out: &std::process::Output) -> FirewallError {
    FirewallError::List {
        table: table.to_string(),
        status: out.status.to_string(),
        stderr: stderr_of(out),
    }
}

/// Applies `spec` through `commands` unless the kernel already holds the table and
/// `record` (where the last applied ruleset is kept) shows the same ruleset, so a
/// repeated install or config-changed writes nothing. Returns whether it applied.
pub fn ensure(commands: &dyn Commands, spec: &FirewallSpec, record: &Path) -> Result<bool, String> {
    let ruleset = render(spec);
    let nft = |args: &[&str], stdin: Option<&str>| -> Result<String, String> {
        let mut cmd = Cmd::new("nft", args);
        if let Some(input) = stdin {
            cmd = cmd.stdin(input.as_bytes().to_vec());
        }
        let out = commands.run(&cmd).map_err(|e| e.to_string())?;
        match out.code {
            Some(0) => Ok(out.stdout),
            _ => Err(format!("nft {}: {}", args.join(" "), out.stderr.trim())),
        }
    };
    let wanted = format!("table inet {}", spec.table);
    let present = |listing: &str| listing.lines().any(|l| l.trim() == wanted);
    let same = std::fs::read_to_string(record).is_ok_and(|r| r == ruleset);
    if same && present(&nft(&["list", "tables", "inet"], None)?) {
        return Ok(false);
    }
    nft(&["-f", "-"], Some(&ruleset))?;
    let listed = nft(&["list", "table", "inet", spec.table.as_str()], None)?;
    if let Some(chain) = CHAINS
        .iter()
        .find(|c| !listed.lines().any(|l| l.trim() == format!("chain {c} {{")))
    {
        return Err(format!(
            "table {} lacks chain {chain} after loading",
            spec.table
        ));
    }
    // Losing the record only costs a reload next time.
    let _ = std::fs::write(record, &ruleset);
    Ok(true)
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
