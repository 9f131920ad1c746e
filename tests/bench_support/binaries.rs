//! What the workspace split is measured by: the sizes of the two packed binaries (the
//! charm's, and aproxy's, which every runner receives) and the time of a clean release
//! build of the whole workspace (timed by scripts/bench.sh, which hands it over).

use std::fmt::Write as _;
use std::path::Path;

/// The last one-crate build (commit 1e2296b): `cargo build --release --bin github-runner`
/// at that commit, the file's size: one binary that was both the charm and what runners
/// received for aproxy.
const ONE_CRATE_BYTES: u64 = 8_993_480;
/// `make bench` at 1e2296b (BENCHMARKS.md as committed there): `dispatch update-status`,
/// median wall time and median peak RSS.
const ONE_CRATE_HOOK: (&str, &str) = ("4.88 ms", "7132 KiB");

fn size(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
}

/// `charm_dir` holds the binaries as the packed charm lays them out.
pub fn binaries(out: &mut String, charm_dir: &Path, quick: bool) {
    let charm = size(&charm_dir.join("github-runner"));
    let aproxy = size(&charm_dir.join("aproxy"));
    assert!(
        aproxy < charm,
        "aproxy ({aproxy}) not smaller than the charm ({charm})"
    );
    writeln!(out, "## Binaries\n").unwrap();
    writeln!(
        out,
        "Sizes of the binaries `make bench` built ({}), as packed beside `dispatch`. Before the \
         workspace split (commit 1e2296b, release) one binary of {} was both the charm and \
         aproxy, so every runner received the whole charm.\n",
        if quick {
            "debug build, quick mode"
        } else {
            "release, stripped"
        },
        mib(ONE_CRATE_BYTES)
    )
    .unwrap();
    writeln!(out, "| binary | bytes | size |\n|---|---|---|").unwrap();
    for (name, bytes) in [
        ("github-runner (charm)", charm),
        ("aproxy (runners)", aproxy),
    ] {
        writeln!(out, "| {name} | {bytes} | {} |", mib(bytes)).unwrap();
    }
    writeln!(
        out,
        "\nHook overhead before the split (1e2296b, same measurement): {} median wall, {} \
         median peak RSS; this run's figures are in the table above.",
        ONE_CRATE_HOOK.0, ONE_CRATE_HOOK.1
    )
    .unwrap();
    match std::env::var("GHR_BENCH_CLEAN_BUILD_SECS") {
        Ok(secs) => writeln!(
            out,
            "\nClean release build of the whole workspace (`cargo build --release --workspace` \
             into an empty target dir, timed by scripts/bench.sh): {secs} s.\n"
        )
        .unwrap(),
        Err(_) => writeln!(out, "\nClean release build: not measured (quick mode).\n").unwrap(),
    }
}
