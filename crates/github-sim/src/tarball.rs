//! The simulator's runner application: the scripts in `templates/sim-runner/`, packed
//! at start-up into a gzipped ustar archive whose
//! sha256 the downloads endpoint advertises.

use std::io::Write;

use sha2::{Digest, Sha256};

/// A fixed modification time, so the same version always packs to the same bytes.
const MTIME: u64 = 1_700_000_000;

/// Files of the app: path inside the tarball, content, mode.
const FILES: &[(&str, &str, u32)] = &[
    (
        "config.sh",
        include_str!("../templates/sim-runner/config.sh"),
        0o755,
    ),
    (
        "run.sh",
        include_str!("../templates/sim-runner/run.sh"),
        0o755,
    ),
    (
        "bin/Runner.Listener",
        include_str!("../templates/sim-runner/Runner.Listener"),
        0o755,
    ),
    (
        "bin/sim-lib.sh",
        include_str!("../templates/sim-runner/sim-lib.sh"),
        0o644,
    ),
];

pub struct Tarball {
    pub version: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Tarball {
    pub fn build(version: &str) -> Tarball {
        let tar = archive().expect("writing to memory");
        let mut gz = flate2::GzBuilder::new()
            .mtime(MTIME as u32)
            .write(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("writing to memory");
        let bytes = gz.finish().expect("writing to memory");
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Tarball {
            version: version.to_string(),
            bytes,
            sha256,
        }
    }

    /// GitHub's naming: `actions-runner-linux-x64-2.319.1.tar.gz`.
    pub fn filename(&self, arch: &str) -> String {
        format!("actions-runner-linux-{arch}-{}.tar.gz", self.version)
    }
}

/// The app's files under a `bin/` directory, owned by root, in ustar form.
fn archive() -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut dir, "bin/", std::io::empty())?;
    for (path, content, mode) in FILES {
        let mut file = header(tar::EntryType::Regular, *mode, content.len() as u64);
        tar.append_data(&mut file, path, content.as_bytes())?;
    }
    tar.into_inner()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_tar_lists_and_extracts_the_app() {
        let t = Tarball::build("2.0.0");
        assert_eq!(t.sha256, Tarball::build("2.0.0").sha256, "reproducible");
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("app.tar.gz");
        std::fs::write(&archive, &t.bytes).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        use std::os::unix::fs::PermissionsExt;
        let listener = std::fs::metadata(dir.path().join("bin/Runner.Listener")).unwrap();
        assert_eq!(listener.permissions().mode() & 0o777, 0o755);
        let config = std::fs::read_to_string(dir.path().join("config.sh")).unwrap();
        assert!(config.starts_with("#!"));
        assert_eq!(
            t.filename("arm64"),
            "actions-runner-linux-arm64-2.0.0.tar.gz"
        );
    }
}
