//! The GitHub and LXD clients' calls, as the process-wide observer
//! (`ghr_types::telemetry`) hands them to the manager's families.

use ghr_types::telemetry::{Api, Call, CallObserver, RateLimit};

use crate::labels::{Route, RouteError, Word};
use crate::manager::ManagerMetrics;

impl CallObserver for ManagerMetrics {
    fn call(&self, call: &Call<'_>) {
        let (calls, errors) = match call.api {
            Api::Github => (&self.github_calls, &self.github_errors),
            Api::Lxd => (&self.lxd_calls, &self.lxd_errors),
        };
        let route = Route {
            method: call.method.to_string(),
            route: call.route.to_string(),
        };
        calls.get_or_create(&route).inc();
        if let Some(class) = call.outcome.error_class() {
            errors
                .get_or_create(&RouteError {
                    method: route.method,
                    route: route.route,
                    class,
                })
                .inc();
        }
    }

    fn rate_limit(&self, limit: &RateLimit) {
        self.rate_limit
            .get_or_create(&Word { kind: "limit" })
            .set(limit.limit as i64);
        self.rate_limit
            .get_or_create(&Word { kind: "remaining" })
            .set(limit.remaining as i64);
        self.rate_limit_reset.set(limit.reset_epoch_secs as i64);
    }
}
