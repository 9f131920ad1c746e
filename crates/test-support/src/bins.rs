//! The workspace's binaries that tests run beside the charm (the simulator, aproxy, the
//! hook-tool stand-in). Cargo builds only the tested package's own binaries for its
//! tests, so the first call in a test process builds these with cargo (a no-op when they
//! are fresh): a test never runs one older than its source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Binaries built for tests, each with its package.
const BINARIES: [(&str, &str); 3] = [
    ("github-sim", "github-sim"),
    ("aproxy", "aproxy"),
    ("hook-standin", "hook-standin"),
];

/// The path of workspace binary `name` (one of [`BINARIES`]), built if needed.
pub fn path(name: &str) -> PathBuf {
    assert!(
        BINARIES.iter().any(|(bin, _)| *bin == name),
        "{name} is not one of the binaries tests build"
    );
    let dir = BUILT.get_or_init(build_all);
    dir.join(name)
}

static BUILT: OnceLock<PathBuf> = OnceLock::new();

/// The profile directory this test binary was built into: `<target>/<profile>/deps/x`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    let dir = if deps.ends_with("deps") {
        deps.parent().expect("profile dir")
    } else {
        deps
    };
    dir.to_path_buf()
}

fn build_all() -> PathBuf {
    let dir = profile_dir();
    let target = dir.parent().expect("target dir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--quiet")
        .arg("--target-dir")
        .arg(target);
    if is_release(&dir) {
        cmd.arg("--release");
    }
    for (bin, package) in BINARIES {
        cmd.args(["-p", package, "--bin", bin]);
    }
    cmd.current_dir(workspace_root());
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "cargo build of test binaries failed");
    dir
}

fn is_release(profile_dir: &Path) -> bool {
    profile_dir.file_name().is_some_and(|n| n == "release")
}

/// The workspace root: two levels above this crate's manifest.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}
