//! The simulator's runner application: the scripts in `templates/sim-runner/`, packed
//! at start-up into a gzipped tar (written here: ustar is a few fixed fields) whose
//! sha256 the downloads endpoint advertises.

use std::io::Write;

use sha2::{Digest, Sha256};

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

/// A fixed timestamp keeps the tarball, and so its checksum, reproducible.
const MTIME: u64 = 1_700_000_000;

pub struct Tarball {
    pub version: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Tarball {
    pub fn build(version: &str) -> Tarball {
        let mut tar = Vec::new();
        tar.extend_from_slice(&header("bin/", 0o755, 0, b'5'));
        for (path, content, mode) in FILES {
            tar.extend_from_slice(&header(path, *mode, content.len() as u64, b'0'));
            tar.extend_from_slice(content.as_bytes());
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
        tar.resize(tar.len() + 1024, 0);
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

/// A ustar header block for a regular file (`b'0'`) or directory (`b'5'`).
fn header(path: &str, mode: u32, size: u64, kind: u8) -> [u8; 512] {
    assert!(path.len() < 100, "tar path too long: {path}");
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], MTIME);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let digits = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(digits.as_bytes());
    h
}

fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[digits.len()] = 0;
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
