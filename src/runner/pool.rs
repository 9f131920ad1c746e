//! The RAM-backed storage pool runner disks live on: a tmpfs sized `vm-disk` x
//! `virtual-machines`, resized when either changes, under an LXD `dir` pool. It grows
//! before a reconcile (new runners need the room) and shrinks after one: tmpfs refuses
//! a size below what its files use, so it shrinks only once the surplus runners are gone.

use std::path::Path;

use crate::config::ByteSize;
use crate::host::{Cmd, CommandError, Commands};
use lxd_client::types::StoragePool;
use lxd_client::LxdClient;

/// What to do to the tmpfs mount, decided from `/proc/mounts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountStep {
    Mount,
    Grow,
    /// Larger than wanted, or unbounded: waits for [`shrink`], after the reconcile.
    Shrink,
    Keep,
}

/// The tmpfs at `dir` in a `/proc/mounts` text, and its size in bytes if it has one.
pub fn tmpfs_size(mounts: &str, dir: &Path) -> Option<Option<u64>> {
    let dir = dir.to_string_lossy();
    mounts.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 || fields[1] != dir || fields[2] != "tmpfs" {
            return None;
        }
        let size = fields[3]
            .split(',')
            .find_map(|o| o.strip_prefix("size="))
            .and_then(parse_kib);
        Some(size)
    })
}

fn parse_kib(raw: &str) -> Option<u64> {
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "" => n,
        "k" => n << 10,
        "m" => n << 20,
        "g" => n << 30,
        _ => return None,
    })
}

pub fn mount_step(mounts: &str, dir: &Path, size: ByteSize) -> MountStep {
    match tmpfs_size(mounts, dir) {
        None => MountStep::Mount,
        // tmpfs rounds to pages; compare in KiB.
        Some(Some(current)) if current >> 10 == size.0 >> 10 => MountStep::Keep,
        Some(Some(current)) if current < size.0 => MountStep::Grow,
        Some(_) => MountStep::Shrink,
    }
}

/// Whether the tmpfs can take `size` now: the kernel refuses (EINVAL) a size below the
/// blocks in use, which busy runners (or ones whose removal failed) still hold.
pub fn can_shrink(used: u64, size: ByteSize) -> bool {
    used <= size.0
}

/// Total pool size: room for every runner's disk, at least 1 GiB.
pub fn pool_size(disk: ByteSize, runners: u32) -> ByteSize {
    ByteSize(
        disk.0
            .saturating_mul(u64::from(runners.max(1)))
            .max(1 << 30),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// mount/umount could not run, or was killed at its timeout.
    #[error("storage pool tmpfs at {dir}: {source}")]
    Mount { dir: String, source: CommandError },
    /// mount/umount ran and refused; the message is what it printed.
    #[error("storage pool tmpfs at {dir}: {stderr}")]
    Refused { dir: String, stderr: String },
    /// The pool's directory could not be created or measured.
    #[error("storage pool tmpfs at {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("storage pool {name}: {source}")]
    Lxd {
        name: String,
        source: lxd_client::LxdError,
    },
}

fn run(commands: &dyn Commands, args: &[&str], dir: &Path) -> Result<(), PoolError> {
    let dir = dir.display().to_string();
    let out = match commands.run(&Cmd::new(args[0], &args[1..])) {
        Ok(out) => out,
        Err(source) => return Err(PoolError::Mount { dir, source }),
    };
    if out.success() {
        Ok(())
    } else {
        let stderr = out.stderr.trim().to_string();
        Err(PoolError::Refused { dir, stderr })
    }
}

fn dir_error(dir: &Path) -> impl FnOnce(std::io::Error) -> PoolError + '_ {
    move |source| PoolError::Dir {
        dir: dir.display().to_string(),
        source,
    }
}

fn resize(commands: &dyn Commands, dir: &Path, size: ByteSize) -> Result<(), PoolError> {
    let option = format!("remount,size={}k", size.0 >> 10);
    run(
        commands,
        &["mount", "-o", &option, &dir.to_string_lossy()],
        dir,
    )
}

/// Mounts or grows the tmpfs, then makes sure LXD has a `dir` pool on it. Never
/// shrinks it: the runners about to be removed still use the space (see [`shrink`]).
pub async fn ensure(
    commands: &dyn Commands,
    client: &LxdClient,
    name: &str,
    dir: &Path,
    size: ByteSize,
) -> Result<(), PoolError> {
    std::fs::create_dir_all(dir).map_err(dir_error(dir))?;
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let size_opt = format!("size={}k", size.0 >> 10);
    let d = dir.to_string_lossy();
    match mount_step(&mounts, dir, size) {
        MountStep::Mount => run(
            commands,
            &[
                "mount",
                "-t",
                "tmpfs",
                "-o",
                &format!("{size_opt},mode=0711"),
                "tmpfs",
                &d,
            ],
            dir,
        )?,
        MountStep::Grow => resize(commands, dir, size)?,
        MountStep::Shrink | MountStep::Keep => {}
    }
    let lxd = |source| PoolError::Lxd {
        name: name.to_string(),
        source,
    };
    match client.get_storage_pool(name).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => {
            let pool = StoragePool {
                name: name.to_string(),
                driver: "dir".into(),
                description: "RAM-backed disks of GitHub runners".into(),
                config: [("source".to_string(), d.to_string())]
                    .into_iter()
                    .collect(),
                status: String::new(),
            };
            client.create_storage_pool(&pool).await.map_err(lxd)
        }
        Err(e) => Err(lxd(e)),
    }
}

/// Removes the unit's pool when the unit goes: the LXD pool (none of its profiles may
/// still name it), then the tmpfs and its mount point.
pub async fn remove(
    commands: &dyn Commands,
    client: &LxdClient,
    name: &str,
    dir: &Path,
) -> Result<(), PoolError> {
    match client.delete_storage_pool(name).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(source) => {
            let name = name.to_string();
            return Err(PoolError::Lxd { name, source });
        }
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if tmpfs_size(&mounts, dir).is_some() {
        run(commands, &["umount", &dir.to_string_lossy()], dir)?;
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(dir_error(dir)(e)),
        _ => Ok(()),
    }
}

/// Shrinks the tmpfs to `size` when it is larger and its files fit; call it after a
/// reconcile removed the surplus runners. `Ok(false)`: nothing to do, or the space is
/// still used (busy runners finishing their job) and a later reconcile shrinks it.
pub fn shrink(commands: &dyn Commands, dir: &Path, size: ByteSize) -> Result<bool, PoolError> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mount_step(&mounts, dir, size) != MountStep::Shrink {
        return Ok(false);
    }
    let stat =
        nix::sys::statvfs::statvfs(dir).map_err(|e| dir_error(dir)(std::io::Error::from(e)))?;
    let used = (stat.blocks() - stat.blocks_free()) as u64 * stat.fragment_size() as u64;
    if !can_shrink(used, size) {
        log::info!(
            "storage pool tmpfs at {} keeps its size while {} MiB are in use",
            dir.display(),
            used >> 20
        );
        return Ok(false);
    }
    resize(commands, dir, size)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "proc /proc proc rw 0 0\n\
        tmpfs /var/lib/github-runner/pool tmpfs rw,relatime,size=2097152k,mode=711 0 0\n";

    #[test]
    fn decides_mount_grow_shrink_or_keep() {
        let dir = Path::new("/var/lib/github-runner/pool");
        assert_eq!(mount_step(MOUNTS, dir, ByteSize(2 << 30)), MountStep::Keep);
        assert_eq!(mount_step(MOUNTS, dir, ByteSize(4 << 30)), MountStep::Grow);
        assert_eq!(
            mount_step(MOUNTS, dir, ByteSize(1 << 30)),
            MountStep::Shrink
        );
        let unbounded = "tmpfs /var/lib/github-runner/pool tmpfs rw,mode=711 0 0\n";
        assert_eq!(
            mount_step(unbounded, dir, ByteSize(1 << 30)),
            MountStep::Shrink
        );
        assert_eq!(
            mount_step(MOUNTS, Path::new("/elsewhere"), ByteSize(1 << 30)),
            MountStep::Mount
        );
    }

    #[test]
    fn shrinks_only_when_the_files_fit() {
        assert!(can_shrink(1 << 30, ByteSize(1 << 30)));
        assert!(!can_shrink((1 << 30) + 4096, ByteSize(1 << 30)));
    }

    #[test]
    fn pool_holds_every_runner_disk() {
        assert_eq!(pool_size(ByteSize(10 << 30), 3), ByteSize(30 << 30));
        assert_eq!(pool_size(ByteSize(100 << 20), 0), ByteSize(1 << 30));
    }

    /// `mount` could not be started: its error stays the source, not only its words.
    #[test]
    fn a_mount_that_cannot_run_keeps_its_error() {
        use crate::host::CmdOutput;
        struct NoMount;
        impl Commands for NoMount {
            fn run(&self, cmd: &Cmd) -> Result<CmdOutput, CommandError> {
                Err(CommandError {
                    program: cmd.program.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })
            }
        }
        let dir = Path::new("/var/lib/github-runner/pool");
        let err = resize(&NoMount, dir, ByteSize(1 << 30)).unwrap_err();
        let source = std::error::Error::source(&err).expect("the command error under it");
        let command = source.downcast_ref::<CommandError>().unwrap();
        assert_eq!(command.program, "mount");
    }
}
