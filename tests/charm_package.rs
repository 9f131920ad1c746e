//! The packed charm (path in env `GHR_CHARM`, made by scripts/pack-charm.sh) holds what
//! Juju needs: manifest, dispatch, the binary, the yaml files and the hooks, executable
//! where they must be, with a binary that runs on Ubuntu 22.04 (glibc <= 2.35); and
//! aproxy's own binary for runners. Nothing else: no simulator, no test code.

mod harness;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Newest glibc of the charm's base, Ubuntu 22.04.
const GLIBC_MAX: (u32, u32) = (2, 35);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `hooks/NAME` for every hook script in the repository.
fn hook_paths() -> Vec<String> {
    let mut hooks: Vec<String> = fs::read_dir(repo().join("hooks"))
        .expect("hooks/")
        .map(|e| format!("hooks/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    hooks.sort();
    hooks
}

/// The packed charm named by GHR_CHARM; None (test skipped) when unset outside CI.
fn packed_charm() -> Option<PathBuf> {
    match std::env::var_os("GHR_CHARM") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("GHR_CHARM is unset in CI: run scripts/pack-charm.sh and point GHR_CHARM at the .charm")
        }
        None => {
            eprintln!(
                "skipped: GHR_CHARM is unset (run scripts/pack-charm.sh, then GHR_CHARM=PATH)"
            );
            None
        }
    }
}

/// Zip entries with their unix modes, from `unzip -Z` (zipinfo) lines such as
/// `-rwxr-xr-x  2.0 unx  845 b- defN 26-Nov-28 04:06 dispatch`.
fn zip_modes(charm: &Path) -> BTreeMap<String, String> {
    let out = Command::new("unzip")
        .arg("-Z")
        .arg(charm)
        .output()
        .expect("unzip (Debian package unzip)");
    assert!(
        out.status.success(),
        "unzip -Z {}: {}",
        charm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.contains(" unx "))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[8..].join(" "), fields[0].to_string())
        })
        .collect()
}

/// Newest `GLIBC_x.y` symbol version the binary needs, from `objdump -T`.
fn newest_glibc(binary: &Path) -> Option<(u32, u32)> {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(binary)
        .output()
        .expect("objdump (binutils)");
    assert!(
        out.status.success(),
        "objdump -T: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let mut parts = version.split('.').map(|p| p.parse::<u32>());
            Some((parts.next()?.ok()?, parts.next().unwrap_or(Ok(0)).ok()?))
        })
        .max()
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Strings only the simulator, its runner app, the hook stand-in or the policy service
/// hold. The charm binary must hold none of the first three (the policy service is one
/// of its subcommands); aproxy, pushed into every runner, none at all.
const SIMULATOR: &[&[u8]] = &[b"/_sim/faults", b"/_sim/rate-limit", b"sim-lib.sh"];
const STANDIN: &[u8] = b"HOOK_STANDIN_READ_STDIN";
const POLICY: &[u8] = b"/one-time-token";

fn binaries_hold_no_test_code(dir: &Path) {
    let charm = fs::read(dir.join("github-runner")).unwrap();
    let aproxy = fs::read(dir.join("aproxy")).unwrap();
    assert!(
        contains(&charm, POLICY),
        "the charm serves the policy service"
    );
    for (name, bytes) in [("github-runner", &charm), ("aproxy", &aproxy)] {
        for marker in SIMULATOR.iter().chain([&STANDIN]) {
            assert!(
                !contains(bytes, marker),
                "{name} holds {:?}: test code is linked in",
                String::from_utf8_lossy(marker)
            );
        }
    }
    assert!(
        !contains(&aproxy, POLICY),
        "aproxy holds the policy service"
    );
    assert!(
        aproxy.len() * 3 < charm.len(),
        "aproxy ({} bytes) is not much smaller than the charm ({} bytes)",
        aproxy.len(),
        charm.len()
    );
}

#[test]
fn packed_charm_holds_what_juju_needs() {
    let Some(charm) = packed_charm() else { return };
    let modes = zip_modes(&charm);
    let mut required = vec![
        "manifest.yaml".to_string(),
        "dispatch".into(),
        "github-runner".into(),
        "aproxy".into(),
        "metadata.yaml".into(),
        "config.yaml".into(),
        "actions.yaml".into(),
    ];
    required.extend(hook_paths());
    let mut held: Vec<&String> = modes.keys().filter(|name| !name.ends_with('/')).collect();
    held.sort();
    let mut expected: Vec<&String> = required.iter().collect();
    expected.sort();
    assert_eq!(held, expected, "the charm holds exactly these files");
    for name in &required {
        let mode = modes
            .get(name)
            .unwrap_or_else(|| panic!("{} lacks {name}: has {modes:?}", charm.display()));
        assert!(
            mode.starts_with('-'),
            "{name} is not a regular file in the zip: {mode}"
        );
    }
    for name in ["dispatch", "github-runner", "aproxy"]
        .iter()
        .map(|s| s.to_string())
        .chain(hook_paths())
    {
        assert_eq!(
            &modes[&name][1..10].matches('x').count(),
            &3,
            "{name} is not executable in the zip: {}",
            modes[&name]
        );
    }

    let unpacked = tempfile::tempdir().unwrap();
    let status = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(&charm)
        .arg("-d")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(status.success(), "unzip {}", charm.display());
    let dir = unpacked.path();

    let manifest: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(dir.join("manifest.yaml")).unwrap()).unwrap();
    let base = &manifest["bases"][0];
    assert_eq!(
        (base["name"].as_str(), base["channel"].as_str()),
        (Some("ubuntu"), Some("22.04")),
        "manifest bases"
    );
    assert!(base["architectures"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|a| a.as_str() == Some("amd64")));
    for name in ["metadata.yaml", "config.yaml", "actions.yaml"] {
        assert_eq!(
            fs::read(dir.join(name)).unwrap(),
            fs::read(repo().join(name)).unwrap(),
            "{name} differs from the repo's"
        );
    }

    let binary = dir.join("github-runner");
    for name in ["github-runner", "aproxy"] {
        let glibc = newest_glibc(&dir.join(name)).expect("the binary links glibc");
        assert!(
            glibc <= GLIBC_MAX,
            "{name} needs GLIBC_{}.{}, Ubuntu 22.04 has {}.{}",
            glibc.0,
            glibc.1,
            GLIBC_MAX.0,
            GLIBC_MAX.1
        );
    }
    binaries_hold_no_test_code(dir);
    let out = Command::new(&binary).arg("--version").output().unwrap();
    assert!(
        out.status.success(),
        "github-runner --version: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(github_runner::VERSION));

    // The unpacked charm, run as Juju would through its own dispatch, with nothing
    // configured: blocked, naming what is missing.
    let h = harness::Harness::with_binary(dir.join("dispatch"));
    h.shadow(harness::HOST_COMMANDS);
    h.set_config(serde_json::json!({"token": "", "path": ""}));
    let run = h.run("hooks/config-changed");
    assert!(run.success(), "dispatch failed: {}", run.stderr());
    assert_eq!(
        h.last_status(),
        Some((
            "blocked".to_string(),
            "Missing required charm configuration: token or a GitHub App (github-app-client-id \
             or github-app-id, github-app-installation-id, github-app-private-key), path"
                .to_string()
        ))
    );
}
