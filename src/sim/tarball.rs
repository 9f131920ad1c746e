//! The simulator's runner application: the scripts in `templates/sim-runner/`, packed
//! at start-up into a gzipped tar ([`crate::ustar`]) whose
//! sha256 the downloads endpoint advertises.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::ustar::{self, Entry, MTIME};

/// Files of the app: path inside the tarball, content, mode.
const FILES: &[(&str, &str, u32)] = &[
    (
        "config.sh",
        include_str!("../../templates/sim-runner/config.sh"),
        0o755,
    ),
    (
        "run.sh",
        include_str!("../../templates/sim-runner/run.sh"),
        0o755,
    ),
    (
        "bin/Runner.Listener",
        include_str!("../../templates/sim-runner/Runner.Listener"),
        0o755,
    ),
    (
        "bin/sim-lib.sh",
        include_str!("../../templates/sim-runner/sim-lib.sh"),
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
        let dir = Entry::Dir {
            path: "bin/",
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        let files = FILES.iter().map(|(path, content, mode)| Entry::File {
            path,
            mode: *mode,
            uid: 0,
            gid: 0,
            content: content.as_bytes(),
        });
        let tar = ustar::archive(std::iter::once(dir).chain(files)).expect("fixed short paths");
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
