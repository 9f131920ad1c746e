use super::*;

const GIB: u64 = 1 << 30;

#[test]
fn slots_are_the_lowest_free_and_stay_with_their_unit() {
    let mut reg = Registry::default();
    assert_eq!(allocate(&mut reg, "a/0", false, false).unwrap().slot, 0);
    assert_eq!(allocate(&mut reg, "a/1", false, false).unwrap().slot, 1);
    assert_eq!(allocate(&mut reg, "b/0", false, false).unwrap().slot, 2);
    assert_eq!(
        allocate(&mut reg, "a/1", false, false).unwrap().slot,
        1,
        "kept"
    );
    reg.units.remove("a/0");
    assert_eq!(
        allocate(&mut reg, "c/0", false, false).unwrap().slot,
        0,
        "reused"
    );
}

#[test]
fn slot_zero_is_kept_for_the_unit_that_owns_the_old_layout() {
    let mut reg = Registry::default();
    // A new application arrives before the old unit ran the new charm.
    assert_eq!(allocate(&mut reg, "b/0", true, false).unwrap().slot, 1);
    let old = allocate(&mut reg, "a/0", true, true).unwrap();
    assert_eq!((old.slot, old.legacy), (0, true));
}

#[test]
fn units_whose_names_shorten_alike_are_refused() {
    let mut reg = Registry::default();
    let long = "github-runner-organisation-acme";
    allocate(&mut reg, &format!("{long}-large/0"), false, false).unwrap();
    let err = allocate(&mut reg, &format!("{long}-small/0"), false, false).unwrap_err();
    assert!(matches!(err, MachineError::KeyClash(..)), "{err}");
    assert!(
        err.to_string().contains("shorter application name"),
        "{err}"
    );
}

#[test]
fn no_slot_left_is_an_error() {
    let mut reg = Registry::default();
    for n in 0..256 {
        allocate(&mut reg, &format!("a/{n}"), false, false).unwrap();
    }
    assert!(matches!(
        allocate(&mut reg, "z/0", false, false),
        Err(MachineError::Full)
    ));
}

#[test]
fn units_together_never_claim_more_than_the_memory_left() {
    let mut reg = Registry::default();
    let total = 16 * GIB; // reserve 1.6 GiB: 14.4 GiB for runners
    let first = admit(&mut reg, "a/0", 4, 2 * GIB, total);
    assert_eq!((first.admitted, first.capped()), (4, false));
    let second = admit(&mut reg, "b/0", 8, 2 * GIB, total);
    assert_eq!((second.wanted, second.admitted), (8, 3));
    assert!(second.capped());
    // a/0 shrinks: its claim goes down, and b/0's next reconcile gets the room.
    admit(&mut reg, "a/0", 1, 2 * GIB, total);
    assert_eq!(admit(&mut reg, "b/0", 8, 2 * GIB, total).admitted, 6);
    let claimed: u64 = reg.units.values().map(|e| e.claim_bytes).sum();
    assert!(claimed <= total - reserve(total), "{claimed}");
}

#[test]
fn a_reboot_waits_for_every_other_units_busy_runners_or_their_absence() {
    let mut reg = Registry::default();
    let at = |busy, busy_at| Entry {
        busy,
        busy_at,
        ..Entry::default()
    };
    let busy = |reg: &Registry, now, runners: &dyn Fn(&str) -> bool| {
        others_busy(reg, "a/0", now, 600, runners)
    };
    let all = |_: &str| true;
    reg.units.insert("a/0".into(), at(3, 1000));
    assert_eq!(busy(&reg, 1000, &all), Some(0), "its own do not count");
    reg.units.insert("b/0".into(), at(0, 900));
    assert_eq!(busy(&reg, 1000, &all), Some(0));
    reg.units.insert("c/0".into(), at(2, 950));
    assert_eq!(busy(&reg, 1000, &all), Some(2));
    assert_eq!(
        busy(&reg, 1600, &all),
        None,
        "b/0's report is stale, with runners"
    );
    // Stale units with no runner in LXD (blocked, or removed without their hooks).
    assert_eq!(
        busy(&reg, 1600, &|u| u == "c/0"),
        None,
        "c/0 still has some"
    );
    assert_eq!(busy(&reg, 1600, &|_| false), Some(0));
}

#[test]
fn the_reserve_is_a_tenth_and_at_least_a_gibibyte() {
    assert_eq!(reserve(4 * GIB), GIB);
    assert_eq!(reserve(100 * GIB), 10 * GIB);
}

#[test]
fn mem_total_reads_kibibytes() {
    let meminfo = "MemTotal:       24576000 kB\nMemFree:  100 kB\n";
    assert_eq!(mem_total(meminfo), Some(24_576_000 << 10));
    assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    assert_eq!(mem_total("MemTotal: many kB\n"), None);
}

#[test]
fn the_registry_file_is_shared_by_units_with_their_own_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        HostPaths::for_unit(dir.path(), "a/0"),
        HostPaths::for_unit(dir.path(), "b/0"),
    );
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::write(dir.path().join("proc/meminfo"), "MemTotal: 8388608 kB\n").unwrap();
    let wait = Duration::from_secs(5);
    let ma = Machine { paths: &a, wait };
    let mb = Machine { paths: &b, wait };
    assert_eq!(ma.register("a/0", false).unwrap().slot, 0);
    assert_eq!(mb.register("b/0", false).unwrap().slot, 1);
    // 8 GiB less 1 GiB: three 2-GiB runners in all.
    let g = ByteSize(GIB);
    assert_eq!(ma.admit("a/0", 2, g, g).unwrap().admitted, 2);
    assert_eq!(mb.admit("b/0", 2, g, g).unwrap().admitted, 1);
    assert_eq!(ma.others_runners("a/0").unwrap(), 1);
    mb.unregister("b/0").unwrap();
    assert_eq!(ma.others_runners("a/0").unwrap(), 0);
    assert_eq!(ma.admit("a/0", 3, g, g).unwrap().admitted, 3);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(a.machine_registry())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}
