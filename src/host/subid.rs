//! Root's subordinate id ranges (`/etc/subuid`, `/etc/subgid`) read as LXD reads them,
//! and whether they leave room for an id map of its own for every container runner.

use super::HostPaths;

/// The ids LXD gives each container with `security.idmap.isolated` (its default size).
pub const IDS_PER_CONTAINER: u64 = 65_536;

/// One `name:start:size` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubIdRange {
    pub start: u64,
    pub size: u64,
}

/// What a subordinate id file holds for root, as LXD sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootRange {
    /// No entry for root: LXD makes up its own map.
    Absent,
    /// Entries, but none of 65536 ids: LXD has no map to use.
    TooSmall,
    /// The range LXD uses: root's first entry of at least 65536 ids (LXD skips smaller
    /// ones and uses only one).
    Range(SubIdRange),
}

pub fn root_range(text: &str) -> RootRange {
    let mut any = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.trim().split(':');
        let (Some(name), Some(start), Some(size)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !name.eq_ignore_ascii_case("root") {
            continue;
        }
        let (Ok(start), Ok(size)) = (start.trim().parse(), size.trim().parse()) else {
            continue;
        };
        any = true;
        if size >= IDS_PER_CONTAINER {
            return RootRange::Range(SubIdRange { start, size });
        }
    }
    if any {
        RootRange::TooSmall
    } else {
        RootRange::Absent
    }
}

/// Why container runners cannot each get an isolated id map.
#[derive(Debug, thiserror::Error)]
pub enum NoRoom {
    #[error(
        "root's range in {file} holds {size} ids; {containers} runners with an id map each \
         need more than {needed}"
    )]
    RangeTooSmall {
        file: &'static str,
        size: u64,
        containers: u32,
        needed: u64,
    },
    #[error("root's ranges in {file} are all smaller than {IDS_PER_CONTAINER} ids")]
    NoLargeRange { file: &'static str },
    /// A file that cannot be read (other than missing) counts as no room.
    #[error("cannot read {}: {source}", .path.display())]
    Unreadable {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Whether `containers` runners can each get an isolated id map; `Err` says why not.
/// `subuid`/`subgid` are the files' contents, `None` when a file is missing.
///
/// LXD keeps the range's first 65536 ids for the shared map and hands out the rest in
/// blocks of 65536, one per isolated container, so the range must hold more than
/// `65536 * (containers + 1)` ids. Without a file, or without an entry for root, LXD
/// makes up a map of its own (a billion ids from 1000000 where it has the whole id
/// space), which leaves room for any pool.
pub fn isolated_room(
    subuid: Option<&str>,
    subgid: Option<&str>,
    containers: u32,
) -> Result<(), NoRoom> {
    let needed = IDS_PER_CONTAINER * (u64::from(containers) + 1);
    for (file, text) in [("/etc/subuid", subuid), ("/etc/subgid", subgid)] {
        let Some(text) = text else { continue };
        match root_range(text) {
            RootRange::Absent => {}
            RootRange::Range(range) if range.size > needed => {}
            RootRange::Range(range) => {
                return Err(NoRoom::RangeTooSmall {
                    file,
                    size: range.size,
                    containers,
                    needed,
                })
            }
            RootRange::TooSmall => return Err(NoRoom::NoLargeRange { file }),
        }
    }
    Ok(())
}

/// [`isolated_room`] over the host's files. A file that cannot be read (other than
/// missing) counts as no room: the shared map is the one that always works.
pub fn host_isolated_room(paths: &HostPaths, containers: u32) -> Result<(), NoRoom> {
    let read = |path: std::path::PathBuf| match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(NoRoom::Unreadable { path, source }),
    };
    let subuid = read(paths.subuid())?;
    let subgid = read(paths.subgid())?;
    isolated_room(subuid.as_deref(), subgid.as_deref(), containers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_range_is_the_first_large_enough_entry() {
        let text = "# comment\nubuntu:100000:65536\nroot:300000:1000\nROOT:1000000:655360 # big\nroot:5:99999999\n";
        assert_eq!(
            root_range(text),
            RootRange::Range(SubIdRange {
                start: 1_000_000,
                size: 655_360
            })
        );
        assert_eq!(root_range("ubuntu:100000:65536\n"), RootRange::Absent);
        assert_eq!(root_range(""), RootRange::Absent);
        assert_eq!(
            root_range("root:100000:1000\nbad line\nroot:x:y\n"),
            RootRange::TooSmall
        );
    }

    #[test]
    fn room_for_isolated_maps_follows_the_pool_size() {
        // 10 blocks: the shared one and room for 9 containers, minus LXD's strict end.
        let ten_blocks = format!("root:100000:{}\n", 10 * IDS_PER_CONTAINER);
        let ten_and_one = format!("root:100000:{}\n", 10 * IDS_PER_CONTAINER + 1);
        assert!(isolated_room(Some(&ten_and_one), Some(&ten_and_one), 9).is_ok());
        let short = isolated_room(Some(&ten_blocks), Some(&ten_and_one), 9).unwrap_err();
        assert!(
            matches!(
                short,
                NoRoom::RangeTooSmall {
                    file: "/etc/subuid",
                    size: 655_360,
                    containers: 9,
                    needed: 655_360
                }
            ),
            "{short:?}"
        );
        let said = short.to_string();
        assert!(
            said.contains("/etc/subuid") && said.contains("655360") && said.contains("9 runners"),
            "{said}"
        );
        let gid = isolated_room(Some(&ten_and_one), Some(&ten_blocks), 9).unwrap_err();
        assert!(gid.to_string().contains("/etc/subgid"), "{gid}");
        let tiny = isolated_room(Some("root:100000:65535\n"), None, 1).unwrap_err();
        assert!(matches!(
            tiny,
            NoRoom::NoLargeRange {
                file: "/etc/subuid"
            }
        ));
        assert!(tiny.to_string().contains("smaller than 65536"), "{tiny}");
    }

    #[test]
    fn without_files_or_root_entries_lxd_makes_room_itself() {
        assert!(isolated_room(None, None, 500).is_ok());
        let others = "ubuntu:100000:65536\n";
        assert!(isolated_room(Some(others), Some(others), 500).is_ok());
    }
}
