//! The last reconcile's counts, kept in a file so that `update-status` can report them
//! without any I/O beyond the hook tools.

use serde::{Deserialize, Serialize};

use crate::host::machine::Admission;
use crate::host::HostPaths as Paths;
use crate::juju::Status;
use reconcile::execute::Report;

/// The last reconcile's counts, for `update-status` (which does no I/O of its own).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub idle: u32,
    pub busy: u32,
    pub starting: u32,
    pub failed: Vec<String>,
    /// Registrations still busy on GitHub whose instance is gone (a lost job).
    #[serde(default)]
    pub lost: u32,
    /// Why the policy service was unhealthy after this reconcile's check, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_problem: Option<String>,
    /// Runners wanted and admitted, when the machine's memory admitted fewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<(u32, u32)>,
    /// On demand: the jobs GitHub assigned to the unit's scale set and the most runners
    /// the config allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<OnDemand>,
    /// How many of the unit's runners the machine's memory held (check-runners and
    /// the manager's capacity read it after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<u32>,
    pub at: u64,
}

/// What a reconcile on demand was for.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnDemand {
    pub assigned: u64,
    /// The most runners the unit may hold: the config's, or fewer when memory holds fewer.
    pub max: u32,
    /// Whether memory, not the config, sets that maximum.
    #[serde(default)]
    pub host_limited: bool,
}

impl Summary {
    /// The counts of `r`, a reconcile that ended at `at` (unix seconds).
    pub fn from_report(r: &Report, at: u64) -> Self {
        Summary {
            idle: r.idle,
            busy: r.busy,
            starting: r.starting,
            failed: r.failed.iter().map(ToString::to_string).collect(),
            lost: r.waiting_for_github,
            policy_problem: None,
            capacity: None,
            on_demand: None,
            room: None,
            at,
        }
    }
    /// Says that host capacity, not the config, limits the pool (on demand: its
    /// maximum).
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.room = Some(admission.room);
        if let Some(d) = &mut self.on_demand {
            d.host_limited = admission.room < d.max;
            d.max = d.max.min(admission.room);
        }
        self.capacity = admission
            .capped()
            .then_some((admission.wanted, admission.admitted));
        self
    }
    /// The status stays `active` when the policy service is unhealthy: the pool is kept
    /// and the pre-job checks fail closed, and it may be GitHub's fault; the message
    /// leads with the problem so that the operator sees it.
    pub fn with_policy_problem(mut self, problem: Option<String>) -> Self {
        self.policy_problem = problem;
        self
    }
    pub fn message(&self) -> String {
        let total = self.idle + self.busy + self.starting;
        let mut m = String::new();
        if let Some(problem) = &self.policy_problem {
            m += &format!("policy service unhealthy: {problem}; ");
        }
        if let Some(d) = self.on_demand {
            let why = if d.host_limited {
                " (host capacity: memory holds no more)"
            } else {
                ""
            };
            m += &format!(
                "on demand: {} jobs assigned, at most {} runners{why}; ",
                d.assigned, d.max
            );
        }
        if let Some((wanted, admitted)) = self.capacity {
            m += &format!(
                "host capacity: memory holds {admitted} of {wanted} runners \
                 beside the other units' claims; "
            );
        }
        m += &format!("{total} runners: {} idle, {} busy", self.idle, self.busy);
        if self.starting > 0 {
            m += &format!(", {} starting", self.starting);
        }
        if self.lost > 0 {
            m += &format!(
                "; {} lost mid-job, removed once GitHub gives the job up",
                self.lost
            );
        }
        if let Some(first) = self.failed.first() {
            m += &format!("; {} failed ({first})", self.failed.len());
        }
        m
    }
    pub fn load(paths: &Paths) -> Option<Self> {
        read_json(&paths.summary_file())
    }
    /// Saved by a successful reconcile, which also settles any earlier problem.
    pub fn save(&self, paths: &Paths) {
        write_json(paths, &paths.summary_file(), self);
        Problem::clear(paths);
    }
}

/// The status a failed hook left (`blocked`: the token was rejected; `waiting`: LXD is
/// down), kept so that `update-status` repeats it rather than bringing back the counts
/// of an older, successful reconcile. The next successful reconcile removes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Problem {
    pub status: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: Status, message: &str) -> Self {
        Problem {
            status: status.as_str().into(),
            message: message.into(),
        }
    }
    pub fn status(&self) -> Status {
        match self.status.as_str() {
            "blocked" => Status::Blocked,
            "waiting" => Status::Waiting,
            "active" => Status::Active,
            _ => Status::Maintenance,
        }
    }
    pub fn load(paths: &Paths) -> Option<Self> {
        read_json(&paths.problem_file())
    }
    pub fn save(&self, paths: &Paths) {
        write_json(paths, &paths.problem_file(), self);
    }
    fn clear(paths: &Paths) {
        let _ = std::fs::remove_file(paths.problem_file());
    }
}

/// What update-status reads; an unreadable file is as good as none.
fn read_json<T: for<'de> Deserialize<'de>>(file: &std::path::Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

/// Best effort: a file that cannot be written costs update-status its detail, not the
/// hook its result.
fn write_json<T: Serialize>(paths: &Paths, file: &std::path::Path, value: &T) {
    let body = serde_json::to_vec(value).expect("serializable");
    let _ = fs_state::ensure_private_dir(&paths.state_dir())
        .and_then(|()| fs_state::write_atomic(file, &body, 0o600));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_and_explains() {
        let mut s = Summary {
            idle: 2,
            busy: 1,
            ..Summary::default()
        };
        assert_eq!(s.message(), "3 runners: 2 idle, 1 busy");
        s.starting = 1;
        s.lost = 1;
        s.failed = vec!["create x: image missing".into()];
        assert_eq!(
            s.message(),
            "4 runners: 2 idle, 1 busy, 1 starting; 1 lost mid-job, removed once GitHub gives \
             the job up; 1 failed (create x: image missing)"
        );
    }

    #[test]
    fn message_leads_with_an_unhealthy_policy_service() {
        let s = Summary {
            idle: 1,
            ..Summary::default()
        }
        .with_policy_problem(Some("nothing answered: connection refused".into()));
        assert_eq!(
            s.message(),
            "policy service unhealthy: nothing answered: connection refused; 1 runners: 1 \
             idle, 0 busy"
        );
    }

    #[test]
    fn an_older_file_without_the_policy_field_still_loads() {
        let s: Summary =
            serde_json::from_str(r#"{"idle":1,"busy":0,"starting":0,"failed":[],"at":5}"#).unwrap();
        assert_eq!(s.policy_problem, None);
    }

    #[test]
    fn survives_a_round_trip_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert_eq!(Summary::load(&paths), None);
        let s = Summary {
            idle: 1,
            at: 7,
            ..Summary::default()
        };
        s.save(&paths);
        assert_eq!(Summary::load(&paths), Some(s));
    }

    #[test]
    fn state_files_are_private_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        Problem::new(Status::Blocked, "bad token").save(&paths);
        Summary::default().save(&paths);
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&paths.summary_file()) & 0o777, 0o600);
        assert_eq!(mode(&paths.state_dir()) & 0o777, 0o700);
        let names: Vec<_> = std::fs::read_dir(paths.state_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["last-reconcile.json"],
            "no temporary file, no problem"
        );
    }
}
