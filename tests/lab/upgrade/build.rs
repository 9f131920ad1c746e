//! The old charm: its binary built from git once per machine, and the charm directory
//! a unit runs it from, whose binary a refresh replaces.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::OLD_COMMIT;
use crate::firewall_support::skip;

/// Outside the clone: kept across `cargo clean` and shared by every checkout.
const CACHE: &str = "/var/cache/github-runner/old-layout";

/// The old charm's binary, built from [`OLD_COMMIT`] the first time (a few minutes) under
/// a lock, so that test processes side by side build it once. None (a skip) outside CI
/// when the clone lacks the commit; CI fails instead.
pub fn old_charm() -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let object = format!("{OLD_COMMIT}^{{commit}}");
    let has_commit = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["cat-file", "-e", &object])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_commit {
        skip(format!(
            "commit {OLD_COMMIT} (the single-unit layout) is not in {}; a shallow clone? \
             fetch the full history (git fetch --unshallow)",
            repo.display()
        ));
        return None;
    }
    let cache = Path::new(CACHE);
    fs::create_dir_all(cache).unwrap();
    let lock = fs::File::create(cache.join("build.lock")).unwrap();
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("the old build's lock");
    let target = cache.join("target");
    let binary = target.join("debug/github-runner");
    if binary.is_file() {
        return Some(binary);
    }
    let src = extract(repo, &cache.join(&OLD_COMMIT[..7]));
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--locked",
            "--bin",
            "github-runner",
            "-p",
            "github-runner",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_INCREMENTAL", "0")
        .current_dir(&src)
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "building the old charm in {}",
        src.display()
    );
    eprintln!(
        "old charm {} built in {:?}",
        &OLD_COMMIT[..7],
        started.elapsed()
    );
    Some(binary)
}

/// `git archive` of the commit unpacked into `dir/src`, through a partial directory
/// renamed at the end, so that an interrupted extraction is redone, never built.
fn extract(repo: &Path, dir: &Path) -> PathBuf {
    let src = dir.join("src");
    if src.join("Cargo.lock").is_file() {
        return src;
    }
    let partial = dir.join("src.partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).unwrap();
    let mut git = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", OLD_COMMIT])
        .stdout(Stdio::piped())
        .spawn()
        .expect("git archive");
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&partial)
        .stdin(git.stdout.take().unwrap())
        .status()
        .expect("tar -x");
    assert!(
        git.wait().unwrap().success() && tar.success(),
        "git archive | tar -x"
    );
    let _ = fs::remove_dir_all(&src);
    fs::rename(&partial, &src).unwrap();
    src
}

/// A charm directory as Juju unpacks one: the charm's binary with aproxy beside it.
pub struct CharmDir {
    dir: tempfile::TempDir,
}

impl CharmDir {
    pub fn new(binary: &Path) -> CharmDir {
        let dir = tempfile::tempdir().unwrap();
        // The current build's aproxy: runners get it only with experimental-use-aproxy,
        // which this test leaves off in both versions.
        let aproxy = test_support::bins::path("aproxy");
        std::os::unix::fs::symlink(aproxy, dir.path().join("aproxy")).unwrap();
        let charm = CharmDir { dir };
        charm.refresh(binary);
        charm
    }

    pub fn binary(&self) -> PathBuf {
        self.dir.path().join("github-runner")
    }

    /// What `juju refresh` does to the unit's charm: another binary in the same place.
    pub fn refresh(&self, binary: &Path) {
        let next = self.dir.path().join("github-runner.next");
        let _ = fs::remove_file(&next);
        std::os::unix::fs::symlink(binary, &next).unwrap();
        fs::rename(&next, self.binary()).unwrap();
    }
}
