//! The hourly request budget behind the simulated primary rate limit: the API guard
//! spends it on every authorized request but `/rate_limit`, the admin API sets it.

use chrono::{DateTime, Utc};

use super::state::World;

/// The hourly request budget shared by all accepted PATs.
#[derive(Clone, Debug)]
pub struct Budget {
    pub limit: u64,
    pub used: u64,
    pub reset: DateTime<Utc>,
}

impl Budget {
    pub fn new(limit: u64, now: DateTime<Utc>) -> Self {
        Budget {
            limit,
            used: 0,
            reset: now + chrono::Duration::hours(1),
        }
    }
    fn roll(&mut self, now: DateTime<Utc>) {
        if now >= self.reset {
            self.used = 0;
            self.reset = now + chrono::Duration::hours(1);
        }
    }
    /// Spends one request; false when the budget is exhausted.
    pub fn spend(&mut self, now: DateTime<Utc>) -> bool {
        self.roll(now);
        if self.used >= self.limit {
            return false;
        }
        self.used += 1;
        true
    }
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

impl World {
    pub fn spend(&mut self, now: DateTime<Utc>) -> bool {
        self.budget.spend(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_runs_out_and_resets_hourly() {
        let mut w = World::for_tests(3);
        let now = Utc::now();
        assert!(w.spend(now) && w.spend(now) && w.spend(now));
        assert!(!w.spend(now));
        assert_eq!(w.budget.remaining(), 0);
        assert!(w.spend(now + chrono::Duration::minutes(61)));
    }
}
