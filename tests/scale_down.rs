//! Scaling down on the real LXD test daemon: the runners' disks share a tmpfs sized for
//! the wanted count, and a smaller count must not be refused because the runners about
//! to go still fill it: one config-changed removes them all, then the tmpfs shrinks.

mod firewall_support;
mod harness;
mod lab;

use std::path::Path;
use std::time::Duration;

use lab::Lab;
use serde_json::json;

const REPO: &str = "acme/widgets";

/// Size and used bytes of the filesystem at `dir`.
fn usage(dir: &Path) -> (u64, u64) {
    let stat = nix::sys::statvfs::statvfs(dir).unwrap();
    let block = stat.fragment_size() as u64;
    let (blocks, free) = (stat.blocks() as u64, stat.blocks_free() as u64);
    (blocks * block, (blocks - free) * block)
}

#[test]
fn one_config_changed_to_zero_removes_runners_that_fill_more_than_the_smaller_pool() {
    let Some(lab) = Lab::new(&[REPO]) else { return };
    let sim = &lab.sim;
    // 8 runners of 1 GiB each: the pool is 8 GiB, and their disks (about 190 MiB each
    // with the test image) use more than the 1 GiB a pool for no runner gets.
    let unit = lab.unit(
        "ghr-down",
        json!({"path": REPO, "virtual-machines": 8, "vm-disk": "1GiB"}),
    );
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 8, Duration::from_secs(300));
    let pool = unit.state().join("pool");
    let (size, used) = usage(&pool);
    assert_eq!(size, 8 << 30);
    assert!(
        used > 1 << 30,
        "the runners use only {used} bytes: the test would not prove anything"
    );

    unit.h.clear_calls();
    unit.configure(sim, json!({"path": REPO, "virtual-machines": 0}));
    unit.run("hooks/config-changed");
    assert_eq!(
        unit.h.last_status(),
        Some((
            "active".into(),
            "0 runners: 0 idle, 0 busy [test-mode=insecure]".into()
        )),
        "logs: {:#?}",
        unit.h.logs()
    );
    // The hook waits until LXD no longer has the instances it removed.
    assert_eq!(unit.instances(), Vec::<String>::new());
    assert_eq!(sim.runners(&unit.prefix), Vec::<serde_json::Value>::new());
    assert_eq!(usage(&pool), (1 << 30, 0), "the tmpfs shrank once empty");

    // And it grows again for the next scale-up.
    unit.configure(sim, json!({"path": REPO, "virtual-machines": 2}));
    unit.run("hooks/config-changed");
    unit.wait_pool(sim, 2, Duration::from_secs(300));
    assert_eq!(usage(&pool).0, 2 << 30);
}
