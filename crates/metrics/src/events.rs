//! The runner lifecycle log: one JSON object per line (created, online, job started,
//! job completed, removed with its reason, refused by policy), in a file the COS agent
//! tails for Loki. Rotated by size, written by one process only (the manager and the
//! policy service each have their own file). Hand-written: the rotation is a rename
//! chain of a few lines, and the crates that do it bring their own time-based schemes
//! and threads we do not need.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

/// One lifecycle event. Names of runners and repositories are values here, never labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Created {
        runner: String,
    },
    Online {
        runner: String,
        spawn_seconds: f64,
    },
    JobStarted {
        runner: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pickup_seconds: Option<f64>,
    },
    JobCompleted {
        runner: String,
        result: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_seconds: Option<f64>,
    },
    Removed {
        runner: String,
        reason: String,
    },
    RefusedByPolicy {
        repository: String,
        endpoint: String,
        reason: String,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    unit: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

/// Where events go, and when the file turns over.
pub struct EventLog {
    path: PathBuf,
    unit: String,
    max_bytes: u64,
    /// Rotated files kept beside the live one (`events.log.1` is the newest).
    keep: usize,
    file: Mutex<Option<File>>,
}

/// Readable by the log agent's group as well as root; the events hold no secret.
const MODE: u32 = 0o640;

impl EventLog {
    pub fn new(path: PathBuf, unit: &str, max_bytes: u64, keep: usize) -> Self {
        EventLog {
            path,
            unit: unit.to_string(),
            max_bytes,
            keep,
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event`; a failure is logged, never fatal (the pool matters more).
    pub fn record(&self, event: &Event) {
        let line = Line {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            unit: &self.unit,
            event,
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            return;
        };
        text.push('\n');
        if let Err(e) = self.append(text.as_bytes()) {
            log::warn!("lifecycle log {}: {e}", self.path.display());
        }
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let size = match file.as_ref() {
            Some(f) => f.metadata()?.len(),
            None => fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        };
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            *file = None;
            self.rotate()?;
        }
        if file.is_none() {
            *file = Some(self.open()?);
        }
        let f = file.as_mut().expect("opened above");
        f.write_all(line)
    }

    fn open(&self) -> std::io::Result<File> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(MODE)
            .open(&self.path)
    }

    /// `events.log.{keep-1}` -> `.{keep}`, ..., `events.log` -> `.1`; the oldest goes.
    fn rotate(&self) -> std::io::Result<()> {
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            return fs::remove_file(&self.path);
        }
        for n in (1..self.keep).rev() {
            match fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(&self.path, numbered(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn each_event_is_one_json_line_with_time_and_unit() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path().join("events.log"), "github-runner/0", 1 << 20, 2);
        log.record(&Event::Removed {
            runner: "github-runner-0-ab".into(),
            reason: "ended".into(),
        });
        let got = lines(log.path());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["event"], "removed");
        assert_eq!(got[0]["reason"], "ended");
        assert_eq!(got[0]["unit"], "github-runner/0");
        assert!(got[0]["time"].as_str().unwrap().ends_with('Z'));
        let mode = fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, MODE);
    }

    #[test]
    fn a_full_file_turns_over_and_only_keep_old_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let log = EventLog::new(path.clone(), "u/0", 300, 2);
        for i in 0..20 {
            log.record(&Event::Created {
                runner: format!("runner-{i:02}"),
            });
        }
        let mut files: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["events.log", "events.log.1", "events.log.2"]);
        for file in &files {
            assert!(fs::metadata(dir.path().join(file)).unwrap().len() <= 300);
        }
        let newest = lines(&path);
        let last = newest.last().unwrap();
        assert_eq!(last["runner"], "runner-19");
        let older = lines(&dir.path().join("events.log.1"));
        let first_new = newest[0]["runner"].as_str().unwrap().to_string();
        let last_old = older.last().unwrap()["runner"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(last_old < first_new, "{last_old} then {first_new}");
    }
}
