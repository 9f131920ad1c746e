//! Injected faults: set through the admin API, taken by the API guard, which makes the
//! matching requests misbehave (a status, latency, a dropped connection, an exhausted
//! rate limit).

use serde::Serialize;

use super::state::World;

/// An injected fault: the next `count` requests matching `route` misbehave.
#[derive(Clone, Debug, Default, serde::Deserialize, Serialize)]
#[serde(default)]
pub struct Fault {
    /// `METHOD /template` (e.g. `GET /orgs/:org/actions/runners`), `/template` for any
    /// method, or `*` for every API route.
    pub route: String,
    pub count: u32,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub latency_ms: u64,
    pub drop: bool,
    /// Answer as an exhausted primary rate limit resetting this many seconds from now.
    pub rate_limit_reset_in: Option<u64>,
    pub message: Option<String>,
}

impl Fault {
    pub fn matches(&self, method: &str, template: &str) -> bool {
        match self.route.split_once(' ') {
            _ if self.route == "*" => true,
            Some((m, t)) => m.eq_ignore_ascii_case(method) && t == template,
            None => self.route == template,
        }
    }
}

impl World {
    /// Takes the first fault matching the route, counting it down.
    pub fn take_fault(&mut self, method: &str, template: &str) -> Option<Fault> {
        let index = self
            .faults
            .iter()
            .position(|f| f.count > 0 && f.matches(method, template))?;
        let fault = &mut self.faults[index];
        fault.count -= 1;
        let taken = fault.clone();
        if fault.count == 0 {
            self.faults.remove(index);
        }
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_count_down_and_match_routes() {
        let mut w = World::for_tests(3);
        w.faults.push(Fault {
            route: "GET /orgs/:org/actions/runners".into(),
            count: 2,
            status: Some(503),
            ..Default::default()
        });
        assert!(w.take_fault("POST", "/orgs/:org/actions/runners").is_none());
        assert!(w.take_fault("GET", "/orgs/:org/actions/runners").is_some());
        assert!(w.take_fault("GET", "/orgs/:org/actions/runners").is_some());
        assert!(w.take_fault("GET", "/orgs/:org/actions/runners").is_none());
    }
}
