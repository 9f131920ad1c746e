//! The provisioning journal: which instances a reconcile is still making, so that one
//! left half-made by a process that died is recognised and removed at once.

use crate::runner::RunnerName;
use reconcile::plan::ObservedInstance;
use reconcile::ports::{PortError, PortResult};

/// One empty file per instance while it is being made. The reconcile lock means only
/// one process makes instances at a time, so a marker that is still there when the
/// next reconcile lists the instances was left by a process that died (killed, host
/// reboot) half-way: its instance will never run a runner and can go at once instead
/// of waiting out the grace time given to runners that are still starting.
#[derive(Clone, Debug)]
pub struct Journal {
    pub dir: std::path::PathBuf,
}

impl Journal {
    fn marker(&self, name: &RunnerName) -> std::path::PathBuf {
        self.dir.join(name.as_str())
    }
    pub fn begin(&self, name: &RunnerName) -> PortResult<()> {
        fs_state::write_atomic(&self.marker(name), b"", 0o600).map_err(PortError::transient_from)
    }
    pub fn end(&self, name: &RunnerName) {
        let _ = std::fs::remove_file(self.marker(name));
    }
    /// Marks the instances left half-made as ended, and forgets markers of instances
    /// that are gone.
    pub fn settle(&self, instances: &mut [ObservedInstance]) {
        for inst in instances.iter_mut() {
            if self.marker(&inst.name).exists() {
                log::warn!(
                    "{} was left half-made by a reconcile that did not finish; removing it",
                    inst.name
                );
                inst.running = false;
            }
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !instances.iter().any(|i| i.name.as_str() == name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
