//! A minimal ustar archive writer: regular files and directories with numeric owners,
//! modes and a fixed timestamp. Enough for the simulator's runner application and for
//! the one archive that carries a runner's files into its instance.

/// A fixed timestamp keeps archives, and so their checksums, reproducible.
pub const MTIME: u64 = 1_700_000_000;

/// ustar's name field; our paths are fixed and short, so no prefix field is needed.
const NAME_LEN: usize = 100;

/// One member of an archive.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    Dir {
        path: &'a str,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    File {
        path: &'a str,
        mode: u32,
        uid: u32,
        gid: u32,
        content: &'a [u8],
    },
}

/// What cannot go into a ustar archive.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UstarError {
    /// A path of 100 bytes or more (ustar's name field; no prefix field is written).
    #[error("tar path too long: {0}")]
    PathTooLong(String),
}

/// Builds an uncompressed archive of `entries`, in order. Paths are relative (an
/// absolute one loses its leading `/`, as GNU tar does); each must be under 100 bytes.
pub fn archive<'a>(entries: impl IntoIterator<Item = Entry<'a>>) -> Result<Vec<u8>, UstarError> {
    let mut tar = Vec::new();
    for entry in entries {
        match entry {
            Entry::Dir {
                path,
                mode,
                uid,
                gid,
            } => {
                let name = format!("{}/", path.trim_start_matches('/').trim_end_matches('/'));
                tar.extend_from_slice(&header(&name, mode, uid, gid, 0, b'5')?);
            }
            Entry::File {
                path,
                mode,
                uid,
                gid,
                content,
            } => {
                let name = path.trim_start_matches('/');
                let size = content.len() as u64;
                tar.extend_from_slice(&header(name, mode, uid, gid, size, b'0')?);
                tar.extend_from_slice(content);
                tar.resize(tar.len().div_ceil(512) * 512, 0);
            }
        }
    }
    // Two zero blocks end the archive.
    tar.resize(tar.len() + 1024, 0);
    Ok(tar)
}

/// A ustar header block for a regular file (`b'0'`) or directory (`b'5'`).
fn header(
    name: &str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    kind: u8,
) -> Result<[u8; 512], UstarError> {
    if name.len() >= NAME_LEN {
        return Err(UstarError::PathTooLong(name.to_string()));
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], uid as u64);
    octal(&mut h[116..124], gid as u64);
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
    Ok(h)
}

fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[digits.len()] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn gnu_tar_lists_owners_modes_and_kinds() {
        let tar = archive([
            Entry::Dir {
                path: "/home/u/app/",
                mode: 0o750,
                uid: 1000,
                gid: 1001,
            },
            Entry::File {
                path: "/home/u/app/.secret",
                mode: 0o600,
                uid: 1000,
                gid: 1000,
                content: b"odd length",
            },
            Entry::File {
                path: "etc/x.conf",
                mode: 0o644,
                uid: 0,
                gid: 0,
                content: &[b'x'; 513],
            },
        ])
        .unwrap();
        assert_eq!(tar.len() % 512, 0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        std::fs::write(&path, &tar).unwrap();
        let out = Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<Vec<&str>> = listing
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines.len(), 3, "{listing}");
        assert_eq!(
            (lines[0][0], lines[0][1], lines[0][5]),
            ("drwxr-x---", "1000/1001", "home/u/app/")
        );
        assert_eq!(
            (lines[1][0], lines[1][1], lines[1][2]),
            ("-rw-------", "1000/1000", "10")
        );
        assert_eq!(
            (lines[2][0], lines[2][2], lines[2][5]),
            ("-rw-r--r--", "513", "etc/x.conf")
        );
    }

    #[test]
    fn long_paths_are_refused_not_truncated() {
        let long = "d/".repeat(50);
        let err = archive([Entry::Dir {
            path: &long,
            mode: 0o755,
            uid: 0,
            gid: 0,
        }])
        .unwrap_err();
        assert!(matches!(err, UstarError::PathTooLong(_)), "{err}");
        assert!(err.to_string().contains("too long"), "{err}");
    }
}
