//! The drift decision as a table, and `ensure` against an in-memory kernel.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::firewall::{InterfaceName, TableName};
use crate::host::commands::{Cmd, CmdOutput, CommandError, Commands};

const LISTING: &str = "table inet github-runner {\n\tset denylist {\n\t\ttype ipv4_addr\n\t}\n\tset always-refused {\n\t\ttype ipv4_addr\n\t}\n\tchain input {\n\t}\n\tchain runner-input {\n\t\treject\n\t}\n\tchain forward {\n\t}\n\tchain runner-forward {\n\t\tip daddr @denylist reject\n\t}\n}\n";

/// A kernel holding at most one table: `nft -f` puts [`LISTING`] there (or fails when
/// `refuse`), `list` shows it, and a test may delete or edit it in between.
#[derive(Default)]
struct Kernel {
    table: RefCell<Option<String>>,
    refuse: bool,
    calls: RefCell<Vec<String>>,
}

impl Commands for Kernel {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, CommandError> {
        self.calls.borrow_mut().push(cmd.to_string());
        let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
        Ok(match args.as_slice() {
            ["-f", "-"] if self.refuse => CmdOutput::failed(1, "Error: Could not process rule"),
            ["-f", "-"] => {
                *self.table.borrow_mut() = Some(LISTING.into());
                CmdOutput::ok("")
            }
            ["list", "tables", "inet"] => match &*self.table.borrow() {
                Some(_) => CmdOutput::ok("table inet github-runner\n"),
                None => CmdOutput::ok(""),
            },
            ["list", "table", "inet", _] => CmdOutput::ok(self.table.borrow().as_deref().unwrap()),
            other => panic!("unexpected nft call {other:?}"),
        })
    }
}

impl Kernel {
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }
}

fn spec(denylist: &[&str]) -> FirewallSpec {
    FirewallSpec {
        table: TableName::default(),
        bridge: InterfaceName::new("lxdbr0").unwrap(),
        host_address: Ipv4Addr::new(10, 20, 30, 1),
        denylist: denylist.iter().map(|d| d.parse().unwrap()).collect(),
        allowed_host_tcp_ports: vec![policy_service::POLICY_PORT],
        sources: crate::firewall::Sources::Bridge,
    }
}

const READS: [&str; 2] = ["nft list tables inet", "nft list table inet github-runner"];
/// A load when no table was there: one read finds none.
const LOAD: [&str; 4] = [
    "nft list tables inet",
    "nft -f -",
    "nft list tables inet",
    "nft list table inet github-runner",
];
/// A load over a table that was there: both reads, then the load.
const RELOAD: [&str; 5] = [
    "nft list tables inet",
    "nft list table inet github-runner",
    "nft -f -",
    "nft list tables inet",
    "nft list table inet github-runner",
];

#[test]
fn drift_decisions() {
    let r = "ruleset";
    assert_eq!(drift(r, (Some(r), Some("L")), None), Drift::Missing);
    assert_eq!(drift(r, (None, None), None), Drift::Missing);
    assert_eq!(drift(r, (None, None), Some("L")), Drift::Changed);
    assert_eq!(
        drift(r, (Some("old"), Some("L")), Some("L")),
        Drift::Changed
    );
    assert_eq!(drift(r, (Some(r), None), Some("L")), Drift::Changed);
    assert_eq!(drift(r, (Some(r), Some("L")), Some("L")), Drift::Current);
    assert_eq!(
        drift(r, (Some(r), Some("L")), Some("M")),
        Drift::Altered(vec!["the table's own lines".into()])
    );
}

#[test]
fn altered_names_the_changed_chains_and_sets() {
    let flushed = LISTING.replace("\t\tip daddr @denylist reject\n", "");
    assert_eq!(altered_parts(LISTING, &flushed), ["chain runner-forward"]);
    let edited = LISTING
        .replace("\t\treject\n", "\t\taccept\n")
        .replace("\tset always-refused {\n\t\ttype ipv4_addr\n\t}\n", "");
    assert_eq!(
        altered_parts(LISTING, &edited),
        ["chain runner-input", "set always-refused"]
    );
}

#[test]
fn first_load_then_only_reads() {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path());
    let record = LoadRecord::at(&paths);
    let kernel = Kernel::default();
    let nft = Nft::new(&kernel);
    let s = spec(&["10.0.0.0/8"]);

    assert_eq!(ensure(&nft, &s, &record).unwrap(), Drift::Missing);
    assert_eq!(kernel.take_calls(), LOAD);
    assert_eq!(
        std::fs::read_to_string(&record.ruleset).unwrap(),
        render(&s)
    );
    assert_eq!(std::fs::read_to_string(&record.listing).unwrap(), LISTING);
    for file in [&record.ruleset, &record.listing, &paths.state_dir()] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        let want = if file.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{}", file.display());
    }

    assert_eq!(ensure(&nft, &s, &record).unwrap(), Drift::Current);
    assert_eq!(kernel.take_calls(), READS, "a steady check only reads");

    assert_eq!(
        ensure(&nft, &spec(&["10.1.0.0/16"]), &record).unwrap(),
        Drift::Changed
    );
    assert_eq!(kernel.take_calls(), RELOAD);
}

#[test]
fn a_deleted_or_edited_table_is_loaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let record = LoadRecord::at(&HostPaths::new(dir.path()));
    let kernel = Kernel::default();
    let nft = Nft::new(&kernel);
    let s = spec(&[]);
    ensure(&nft, &s, &record).unwrap();

    *kernel.table.borrow_mut() = None;
    assert_eq!(ensure(&nft, &s, &record).unwrap(), Drift::Missing);
    assert_eq!(kernel.table.borrow().as_deref(), Some(LISTING));

    let flushed = LISTING.replace("\t\tip daddr @denylist reject\n", "");
    *kernel.table.borrow_mut() = Some(flushed);
    kernel.take_calls();
    assert_eq!(
        ensure(&nft, &s, &record).unwrap(),
        Drift::Altered(vec!["chain runner-forward".into()])
    );
    assert_eq!(kernel.take_calls(), RELOAD);
    assert_eq!(kernel.table.borrow().as_deref(), Some(LISTING));
}

#[test]
fn a_refused_load_keeps_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let record = LoadRecord::at(&HostPaths::new(dir.path()));
    let kernel = Kernel {
        refuse: true,
        ..Kernel::default()
    };
    let err = ensure(&Nft::new(&kernel), &spec(&[]), &record).unwrap_err();
    assert!(matches!(err, FirewallError::Rejected { .. }), "{err}");
    assert!(err.to_string().contains("Could not process rule"), "{err}");
    assert!(!record.ruleset.exists() && !record.listing.exists());
}

#[test]
fn a_widened_state_dir_is_narrowed_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path());
    std::fs::create_dir_all(paths.state_dir()).unwrap();
    std::fs::set_permissions(paths.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let kernel = Kernel::default();
    ensure(&Nft::new(&kernel), &spec(&[]), &LoadRecord::at(&paths)).unwrap();
    let mode = std::fs::metadata(paths.state_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
}

/// The table loaded but its record could not be written (the state dir is a file): the
/// file error, naming the path, stays the source.
#[test]
fn a_failed_record_keeps_the_file_error_as_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let record = LoadRecord {
        ruleset: not_a_dir.join("ruleset"),
        listing: not_a_dir.join("listing"),
    };
    let kernel = Kernel::default();
    let err = ensure(&Nft::new(&kernel), &spec(&[]), &record).unwrap_err();
    assert!(matches!(err, FirewallError::Record(_)), "{err}");
    let source = std::error::Error::source(&err).expect("the file error under it");
    let file = source.downcast_ref::<fs_state::FileError>().unwrap();
    assert!(file.path.starts_with(&not_a_dir), "{file}");
}
