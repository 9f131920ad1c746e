//! The policy service's families: its checks by endpoint and result, and how long each
//! took.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::PREFIX;

/// How a check ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum PolicyResult {
    Allowed,
    Refused,
    /// Not a check at all: turned away before any rule ran (token, body, method).
    Rejected,
    Error,
}

impl PolicyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyResult::Allowed => "allowed",
            PolicyResult::Refused => "refused",
            PolicyResult::Rejected => "rejected",
            PolicyResult::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    /// The route's template (`/pull_request/check-run`, ...).
    endpoint: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

fn latency() -> Histogram {
    Histogram::new(
        [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]
        .into_iter(),
    )
}

pub struct PolicyMetrics {
    registry: Registry,
    checks: Family<CheckLabels, Counter>,
    duration: Family<EndpointLabel, Histogram, fn() -> Histogram>,
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicyMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let checks = Family::<CheckLabels, Counter>::default();
        registry.register(
            "policy_checks",
            "Pre-job policy checks answered, by endpoint and result",
            checks.clone(),
        );
        let duration =
            Family::<EndpointLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        registry.register_with_unit(
            "policy_check_duration",
            "Time to answer a pre-job policy check, by endpoint",
            Unit::Seconds,
            duration.clone(),
        );
        PolicyMetrics {
            registry,
            checks,
            duration,
        }
    }

    /// Every result of each of `endpoints` at zero: a counter that appears only at its
    /// first count hides that count from `increase()` (and the error alert).
    pub fn zero(&self, endpoints: &[&str]) {
        use PolicyResult::*;
        for endpoint in endpoints {
            for result in [Allowed, Refused, Rejected, Error] {
                let labels = CheckLabels {
                    endpoint: endpoint.to_string(),
                    result: result.as_str(),
                };
                self.checks.get_or_create(&labels).inc_by(0);
            }
        }
    }

    /// One check at `endpoint` (a route template) that ended in `result` after `seconds`.
    pub fn check(&self, endpoint: &str, result: PolicyResult, seconds: f64) {
        let endpoint = endpoint.to_string();
        self.checks
            .get_or_create(&CheckLabels {
                endpoint: endpoint.clone(),
                result: result.as_str(),
            })
            .inc();
        self.duration
            .get_or_create(&EndpointLabel { endpoint })
            .observe(seconds);
    }

    pub fn exposition(&self) -> String {
        crate::exposition(&self.registry)
    }
}
