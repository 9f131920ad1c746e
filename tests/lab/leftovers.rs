//! What a unit makes in the test LXD daemon (instances, profiles, its storage pool, all
//! named after it), removed when the unit drops and also before it starts: a run
//! interrupted mid-test (a killed `cargo test`, a machine stopped) leaves them behind,
//! and a pool whose source was that run's deleted temporary directory would fail every
//! later run on this daemon with "Storage pool is unavailable".

use std::time::Duration;

use super::lxd_names;
use crate::firewall_support::{retry, Lxd};

/// Deletes every instance and profile named `prefix*`, then pool `<prefix>pool`,
/// retrying until none is left: an ephemeral runner that just ran its job may still be
/// going away, its profiles stay in use until it has gone, and the pool until they have.
/// Says what is left when something would not go.
pub fn clear(lxd: &Lxd, prefix: &str) -> Result<(), String> {
    let instances = delete_all(lxd, prefix, &["list"], &["delete", "--force"]);
    let profiles = delete_all(lxd, prefix, &["profile", "list"], &["profile", "delete"]);
    let name = format!("{prefix}pool");
    let pool = retry(Duration::from_secs(30), || {
        match lxd.lxc(&["storage", "show", &name]) {
            Ok(_) => lxd.lxc(&["storage", "delete", &name]).map(drop),
            Err(_) => Ok(()),
        }
    });
    let left: Vec<String> = [
        instances,
        profiles,
        pool.map_err(|e| vec![format!("{name}: {e}")]),
    ]
    .into_iter()
    .filter_map(Result::err)
    .flatten()
    .collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("left in LXD: {left:?}"))
    }
}

/// Before a unit starts: what an earlier run left goes, or the test stops here with
/// the reason rather than failing later on a pool it cannot use.
pub fn clear_before(lxd: &Lxd, prefix: &str) {
    if let Err(e) = clear(lxd, prefix) {
        panic!("an earlier run left unit {prefix}* behind and it would not go: {e}");
    }
}

/// On drop: reported, not raised (a panic in drop would hide the test's own failure).
pub fn clear_after(lxd: &Lxd, prefix: &str) {
    if let Err(e) = clear(lxd, prefix) {
        eprintln!("cleanup: {e}");
    }
}

fn delete_all(lxd: &Lxd, prefix: &str, kind: &[&str], delete: &[&str]) -> Result<(), Vec<String>> {
    let list: Vec<&str> = kind.iter().copied().chain(["--format", "json"]).collect();
    retry(Duration::from_secs(60), || {
        for name in lxd_names(lxd, &list, prefix) {
            let mut args = delete.to_vec();
            args.push(&name);
            let _ = lxd.lxc(&args);
        }
        let left = lxd_names(lxd, &list, prefix);
        if left.is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    })
}
