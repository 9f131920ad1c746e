//! Client options for tests against a local server: three quick tries and short waits,
//! so a fault case ends in seconds while still exercising the retry path.

use std::time::Duration;

use github_client::{ClientOptions, RetryPolicy};

pub fn quick(request_timeout: Duration) -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            max_total: Duration::from_secs(5),
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_rate_limit_wait: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(2),
        },
        connect_timeout: Duration::from_secs(2),
        request_timeout,
        ..ClientOptions::default()
    }
}
