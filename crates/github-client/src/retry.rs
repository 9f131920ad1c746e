//! Retry, backoff and rate-limit decisions as pure functions, and the loop that applies
//! them through an injected [`Clock`] so they are tested without sleeping for real.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::error::GithubError;
use super::models::RateLimit;

pub use ghr_types::clock::{Clock, SystemClock};

/// How hard to try. Every bound is there so that no hook can hang on GitHub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// No retry is started if its wait would end later than this after the first attempt.
    pub max_total: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A primary rate limit whose reset is further away than this fails at once.
    pub max_rate_limit_wait: Duration,
    /// A secondary rate limit whose retry-after is longer than this fails at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            max_total: Duration::from_secs(30),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_rate_limit_wait: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// A response read in full (API bodies are small).
#[derive(Clone, Debug, Default)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// GitHub's `{"message": ...}`, or the start of the body.
    pub fn message(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| self.body.chars().take(200).collect())
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt {
    Response(RawResponse),
    /// No response: connection refused/reset, timeout, TLS; the message is safe to show.
    Transport(String),
}

#[derive(Debug)]
pub enum Decision {
    /// Hand the response to the endpoint (success, or a status it interprets).
    Accept,
    Retry(Duration),
    Fail(GithubError),
}

/// Which rate limit a 403/429 is, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateLimitHit {
    Primary { reset: DateTime<Utc> },
    Secondary { retry_after: Duration },
}

pub fn rate_limit_hit(response: &RawResponse, now: DateTime<Utc>) -> Option<RateLimitHit> {
    if !matches!(response.status, 403 | 429) {
        return None;
    }
    let retry_after = response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if response.header("x-ratelimit-remaining").map(str::trim) == Some("0") {
        let reset = response
            .header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
            .unwrap_or(now + chrono::Duration::seconds(60));
        return Some(RateLimitHit::Primary { reset });
    }
    let says_secondary = response
        .message()
        .to_ascii_lowercase()
        .contains("secondary rate limit");
    if retry_after.is_some() || says_secondary {
        // GitHub's advice without retry-after: wait at least a minute.
        let secs = retry_after.unwrap_or(60);
        return Some(RateLimitHit::Secondary {
            retry_after: Duration::from_secs(secs),
        });
    }
    None
}

/// Exponential backoff with "equal jitter": half fixed, half random (`jitter` in 0..=1).
pub fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(policy.max_delay);
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The decision after attempt number `attempt` (1-based), `elapsed` after the first.
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    elapsed: Duration,
    outcome: &Attempt,
    now: DateTime<Utc>,
    jitter: f64,
) -> Decision {
    let (wait, error) = match outcome {
        Attempt::Transport(message) => (
            backoff(policy, attempt, jitter),
            GithubError::Transport {
                message: message.clone(),
                attempts: attempt,
            },
        ),
        Attempt::Response(r) if r.status >= 500 => (
            backoff(policy, attempt, jitter),
            GithubError::Server {
                status: r.status,
                attempts: attempt,
            },
        ),
        Attempt::Response(r) => match rate_limit_hit(r, now) {
            None => return Decision::Accept,
            Some(RateLimitHit::Primary { reset }) => {
                // One second of slack: GitHub's reset is rounded to whole seconds.
                let wait = (reset - now).to_std().unwrap_or_default() + Duration::from_secs(1);
                if wait > policy.max_rate_limit_wait {
                    return Decision::Fail(GithubError::RateLimited { until: reset });
                }
                (wait, GithubError::RateLimited { until: reset })
            }
            Some(RateLimitHit::Secondary { retry_after }) => {
                let error = GithubError::SecondaryRateLimited { retry_after };
                if retry_after > policy.max_retry_after {
                    return Decision::Fail(error);
                }
                (retry_after, error)
            }
        },
    };
    if attempt >= policy.max_attempts || elapsed + wait > policy.max_total {
        return Decision::Fail(error);
    }
    Decision::Retry(wait)
}

/// Runs `send` until a response is accepted or the policy gives up.
pub fn run_with_retry(
    policy: &RetryPolicy,
    clock: &dyn Clock,
    jitter: &mut dyn FnMut() -> f64,
    what: &str,
    send: &mut dyn FnMut() -> Attempt,
) -> Result<RawResponse, GithubError> {
    let start = clock.now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = send();
        let elapsed = clock.now() - start;
        // Rate-limit resets are stated in wall-clock time.
        let now = DateTime::<Utc>::from(clock.wall());
        match decide(policy, attempt, elapsed, &outcome, now, jitter()) {
            Decision::Accept => match outcome {
                Attempt::Response(response) => return Ok(response),
                Attempt::Transport(_) => unreachable!("decide never accepts a transport failure"),
            },
            Decision::Retry(wait) => {
                let cause = match &outcome {
                    Attempt::Response(r) => format!("status {}", r.status),
                    Attempt::Transport(m) => m.clone(),
                };
                log::warn!("{what}: attempt {attempt} failed ({cause}); retrying in {wait:?}");
                clock.sleep(wait);
            }
            Decision::Fail(error) => return Err(error),
        }
    }
}

/// The `x-ratelimit-*` headers of a response, if it has them.
pub fn parse_rate_limit(response: &RawResponse) -> Option<RateLimit> {
    let num = |name: &str| response.header(name)?.trim().parse::<u64>().ok();
    Some(RateLimit {
        limit: num("x-ratelimit-limit")?,
        remaining: num("x-ratelimit-remaining")?,
        used: num("x-ratelimit-used").unwrap_or(0),
        reset: Utc
            .timestamp_opt(num("x-ratelimit-reset")? as i64, 0)
            .single()?,
        resource: response
            .header("x-ratelimit-resource")
            .unwrap_or("core")
            .to_string(),
    })
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
