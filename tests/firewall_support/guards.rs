//! Guards for what firewall tests put on the host (an nftables table, an unreachable
//! route), removed on drop, and free test addresses.

use std::net::Ipv4Addr;

use github_runner::firewall::{Nft, TableName};
use github_runner::host::Commands;

use super::run;

/// Removes the table it names, in the kernel `commands` reach, when the test ends,
/// however it ends.
pub struct TableGuard {
    pub commands: Box<dyn Commands>,
    pub table: TableName,
}

impl TableGuard {
    pub fn new(commands: impl Commands + 'static, table: &TableName) -> Self {
        TableGuard {
            commands: Box::new(commands),
            table: table.clone(),
        }
    }
}

impl Drop for TableGuard {
    fn drop(&mut self) {
        if let Err(e) = Nft::new(&*self.commands).remove(&self.table) {
            eprintln!("cleanup: could not remove table {}: {e}", self.table);
        }
    }
}

/// An unreachable route over `cidr` for the test's life: a half-built topology can never
/// send test traffic off the machine. Removed on drop.
pub struct RouteGuard(String);

impl RouteGuard {
    pub fn unreachable(cidr: &str) -> RouteGuard {
        run(&["ip", "route", "replace", "unreachable", cidr]).unwrap();
        RouteGuard(cidr.to_string())
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let _ = run(&["ip", "route", "del", "unreachable", &self.0]);
    }
}

/// The first /30 in `a.b.c.0/24` no interface here uses: (host side, namespace side).
pub fn free_pair(a: u8, b: u8, c: u8) -> (Ipv4Addr, Ipv4Addr) {
    let used = run(&["ip", "-o", "-4", "addr", "show"]).unwrap_or_default();
    let k = (0..64u8)
        .find(|k| !used.contains(&format!("{a}.{b}.{c}.{}/", 4 * k + 1)))
        .expect("no free /30");
    (
        Ipv4Addr::new(a, b, c, 4 * k + 1),
        Ipv4Addr::new(a, b, c, 4 * k + 2),
    )
}
