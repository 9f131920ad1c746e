//! GitHub's timestamps on a job event: the source of the pickup and job duration
//! figures (GitHub's clock on both ends, so the host's clock does not skew them).

use serde_json::Value;

/// When a job was queued, given a runner and finished, as GitHub stamped it (each
/// absent when the event carries none or one that does not parse).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobTimes {
    pub queued: Option<chrono::DateTime<chrono::Utc>>,
    pub runner_assigned: Option<chrono::DateTime<chrono::Utc>>,
    pub finished: Option<chrono::DateTime<chrono::Utc>>,
}

impl JobTimes {
    pub(crate) fn of(entry: &Value) -> Self {
        let at = |key: &str| {
            let text = entry.get(key)?.as_str()?;
            let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
            // The service writes 0001-01-01 for "not yet".
            (time.timestamp() > 0).then(|| time.with_timezone(&chrono::Utc))
        };
        JobTimes {
            queued: at("queueTime"),
            runner_assigned: at("runnerAssignTime"),
            finished: at("finishTime"),
        }
    }

    /// Queued to given a runner, when both are stamped.
    pub fn pickup_seconds(&self) -> Option<f64> {
        seconds_between(self.queued?, self.runner_assigned?)
    }

    /// Given a runner to finished, when both are stamped.
    pub fn run_seconds(&self) -> Option<f64> {
        seconds_between(self.runner_assigned?, self.finished?)
    }
}

fn seconds_between(
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Option<f64> {
    let millis = (to - from).num_milliseconds();
    (millis >= 0).then(|| millis as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pickup_and_run_come_from_the_stamps_and_unset_ones_are_none() {
        let t = JobTimes::of(&json!({
            "queueTime": "2026-01-01T00:00:00Z",
            "runnerAssignTime": "2026-01-01T00:00:02.5Z",
            "finishTime": "0001-01-01T00:00:00Z",
        }));
        assert_eq!(t.pickup_seconds(), Some(2.5));
        assert_eq!(t.finished, None);
        assert_eq!(t.run_seconds(), None);
        assert_eq!(
            JobTimes::of(&json!({"queueTime": "soon"})),
            JobTimes::default()
        );
    }
}
