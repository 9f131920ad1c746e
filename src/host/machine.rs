//! What the units of this charm on one machine share, kept in one registry file
//! (`/var/lib/github-runner/units.json`, root only) under one lock: each unit's slot
//! (its policy port and runner MACs) and its memory claim, so that units together never
//! promise more runners than the machine's memory holds. Every unit reads and writes it
//! under the lock; a unit's entry is its own, and `remove` deletes it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::site::{UnitKey, UnitSite};
use super::HostPaths;
use crate::config::ByteSize;
use reconcile::lock::{LockError, ReconcileLock};

/// Memory the host keeps for itself: a tenth of it, at least 1 GiB.
pub fn reserve(total: u64) -> u64 {
    (total / 10).max(1 << 30)
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub slot: u8,
    #[serde(default)]
    pub legacy: bool,
    /// Runners admitted at the last reconcile, and what they hold of memory.
    #[serde(default)]
    pub runners: u32,
    #[serde(default)]
    pub claim_bytes: u64,
    /// Runners busy at the unit's last reconcile, and when that was (unix seconds):
    /// a reboot for a new kernel waits until no unit's runner is busy.
    #[serde(default)]
    pub busy: u32,
    #[serde(default)]
    pub busy_at: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    #[serde(default)]
    pub units: BTreeMap<String, Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("machine registry: {0}")]
    Lock(#[from] LockError),
    #[error("machine registry {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("machine registry {}: not valid JSON ({source}); repair it from the units' slots (the second byte of their runners' MACs), since a new file would hand slots out anew", .path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] fs_state::FileError),
    #[error("this machine already holds 256 units of this charm; no slot is free")]
    Full,
    /// Two units whose names shorten to one key would share every file and service.
    #[error(
        "units {0} and {1} share the name {2} on this machine (long application names are \
         shortened); deploy one of them with a shorter application name"
    )]
    KeyClash(String, String, String),
    #[error("host memory: {0}")]
    Memory(String),
}

/// How many runners a unit may have now, and why fewer than asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub wanted: u32,
    pub admitted: u32,
    /// How many runners of this unit the memory would hold now (the most it could ask).
    pub room: u32,
}

impl Admission {
    pub fn capped(&self) -> bool {
        self.admitted < self.wanted
    }
}

/// The lowest free slot, or the unit's own. Slot 0 goes to a unit that takes over the
/// single-unit layout, and to no one else while that layout is on the machine (its
/// policy service holds slot 0's port).
pub fn allocate(
    reg: &mut Registry,
    unit: &str,
    legacy_present: bool,
    legacy_owner: bool,
) -> Result<Entry, MachineError> {
    if let Some(entry) = reg.units.get(unit) {
        return Ok(entry.clone());
    }
    let key = UnitKey::from_unit(unit);
    if let Some(other) = reg.units.keys().find(|o| UnitKey::from_unit(o) == key) {
        return Err(MachineError::KeyClash(
            other.clone(),
            unit.to_string(),
            key.to_string(),
        ));
    }
    let taken: Vec<u8> = reg.units.values().map(|e| e.slot).collect();
    let slot = if legacy_owner && !taken.contains(&0) {
        0
    } else {
        let first = u8::from(legacy_present);
        (first..=u8::MAX)
            .find(|s| !taken.contains(s))
            .ok_or(MachineError::Full)?
    };
    let entry = Entry {
        slot,
        legacy: legacy_owner && slot == 0,
        ..Entry::default()
    };
    reg.units.insert(unit.to_string(), entry.clone());
    Ok(entry)
}

/// Admits as many of `wanted` runners as the memory left by the other units' claims
/// holds, and records the unit's claim.
pub fn admit(
    reg: &mut Registry,
    unit: &str,
    wanted: u32,
    per_runner: u64,
    total: u64,
) -> Admission {
    let others: u64 = reg
        .units
        .iter()
        .filter(|(name, _)| name.as_str() != unit)
        .map(|(_, e)| e.claim_bytes)
        .sum();
    let room = total.saturating_sub(reserve(total)).saturating_sub(others);
    let fits = room.checked_div(per_runner).unwrap_or(u64::MAX);
    let admitted = u64::from(wanted).min(fits) as u32;
    let room = fits.min(u64::from(u32::MAX)) as u32;
    let entry = reg.units.entry(unit.to_string()).or_default();
    entry.runners = admitted;
    entry.claim_bytes = u64::from(admitted) * per_runner;
    Admission {
        wanted,
        admitted,
        room,
    }
}

/// The other units' busy runners: a report within `fresh` seconds of `now` counts as
/// it says; an older one (a unit blocked, slow, or removed without its hooks) counts 0
/// when `has_runners` says LXD holds none of that unit's, and makes the sum unknown
/// (None) otherwise.
pub fn others_busy(
    reg: &Registry,
    unit: &str,
    now: u64,
    fresh: u64,
    has_runners: impl Fn(&str) -> bool,
) -> Option<u32> {
    reg.units
        .iter()
        .filter(|(name, _)| name.as_str() != unit)
        .try_fold(0u32, |sum, (name, e)| {
            if e.busy_at.saturating_add(fresh) >= now {
                Some(sum.saturating_add(e.busy))
            } else {
                (!has_runners(name)).then_some(sum)
            }
        })
}

/// `MemTotal` in bytes from a `/proc/meminfo` text.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let kib: u64 = fields.next()?.parse().ok()?;
    (fields.next() == Some("kB")).then_some(kib << 10)
}

/// The registry on this machine, read and written under its lock.
pub struct Machine<'a> {
    pub paths: &'a HostPaths,
    pub wait: Duration,
}

impl Machine<'_> {
    fn locked<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> Result<T, MachineError> {
        fs_state::ensure_private_dir(&self.paths.machine_dir())?;
        let _lock = ReconcileLock::acquire(&self.paths.machine_lock(), self.wait)?;
        let path = self.paths.machine_registry();
        let mut reg = match std::fs::read(&path) {
            Ok(raw) => serde_json::from_slice(&raw).map_err(|source| MachineError::Parse {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Registry::default(),
            Err(source) => return Err(MachineError::Read { path, source }),
        };
        let before = reg.clone();
        let out = f(&mut reg);
        if reg != before {
            let json = serde_json::to_vec_pretty(&reg).expect("serializable");
            fs_state::write_atomic(&path, &json, 0o600)?;
        }
        Ok(out)
    }

    /// This unit's site: its slot from the registry, allocated on its first hook.
    /// `legacy_owner` says the unit made the single-unit layout still on the machine.
    pub fn register(&self, unit: &str, legacy_owner: bool) -> Result<UnitSite, MachineError> {
        let legacy_present = self.paths.legacy_layout_present();
        let legacy_owner = legacy_present && legacy_owner;
        let entry = self.locked(|reg| allocate(reg, unit, legacy_present, legacy_owner))??;
        Ok(UnitSite::new(unit, entry.slot, entry.legacy))
    }

    /// Records what the unit's last reconcile found busy.
    pub fn record_busy(&self, unit: &str, busy: u32, now: u64) -> Result<(), MachineError> {
        self.locked(|reg| {
            let entry = reg.units.entry(unit.to_string()).or_default();
            entry.busy = busy;
            entry.busy_at = now;
        })
    }

    /// The registry as it is now.
    pub fn read(&self) -> Result<Registry, MachineError> {
        self.locked(|reg| reg.clone())
    }

    /// Forgets the unit: its slot and claim are free for others.
    pub fn unregister(&self, unit: &str) -> Result<(), MachineError> {
        self.locked(|reg| {
            reg.units.remove(unit);
        })
    }

    /// The runners the other units on the machine were admitted at their last reconcile.
    pub fn others_runners(&self, unit: &str) -> Result<u32, MachineError> {
        self.locked(|reg| {
            reg.units
                .iter()
                .filter(|(name, _)| name.as_str() != unit)
                .map(|(_, e)| e.runners)
                .sum()
        })
    }

    /// Admits what fits of `wanted` runners of `memory` + `disk` each (both RAM).
    pub fn admit(
        &self,
        unit: &str,
        wanted: u32,
        memory: ByteSize,
        disk: ByteSize,
    ) -> Result<Admission, MachineError> {
        let meminfo = self.paths.meminfo();
        let text = std::fs::read_to_string(&meminfo)
            .map_err(|e| MachineError::Memory(format!("{}: {e}", meminfo.display())))?;
        let total = mem_total(&text)
            .ok_or_else(|| MachineError::Memory(format!("no MemTotal in {}", meminfo.display())))?;
        let per_runner = memory.0.saturating_add(disk.0).max(1);
        self.locked(|reg| admit(reg, unit, wanted, per_runner, total))
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
