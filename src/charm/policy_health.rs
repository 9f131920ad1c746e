//! The policy service's health around each reconcile: what systemd and `GET /health`
//! say ([`Seen`]), what to do about it ([`decide`], pure), and the check that asks,
//! restarts the unit through [`Commands`] and waits for it to answer ([`HealthCheck`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::deps::Deps;
use crate::host::site::UnitSite;
use crate::host::units::{policy_service_active, restart_policy_service};
use crate::host::{Clock, Commands, HostPaths};
use policy_service::client::{ClientError, PolicyClient};

/// A restart over a failing `/health` (the unit running, the port answering) happens
/// at most this often.
pub const GITHUB_RESTART_INTERVAL: Duration = Duration::from_secs(3600);
/// How long one `GET /health` may take: a healthy service answers in one GitHub round
/// trip, and the check must not hold the hook when the service hangs.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a restarted service has to start listening again.
pub const RESTART_DEADLINE: Duration = Duration::from_secs(15);
/// How long an active unit whose port is closed gets before it counts as dead: one
/// just (re)started by install, upgrade or a token change binds within milliseconds.
pub const START_GRACE: Duration = Duration::from_secs(5);
const POLL_EVERY: Duration = Duration::from_millis(200);

/// What one `GET /health` got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 204: the service runs and GitHub answers it with its token.
    Healthy,
    /// The service took the connection but is not healthy: a 500 (GitHub did not answer
    /// it with its token), another status, or no answer in time.
    Failing(String),
    /// Nothing listens on the port (connection refused).
    Down(String),
}

/// One look at the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `systemctl is-active` said so.
    pub unit_active: bool,
    pub answer: Answer,
}

/// What the charm's own GitHub calls have shown so far in this reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GithubEvidence {
    /// Not known yet: the look before the reconcile.
    Unknown,
    /// The reconcile just read GitHub's runner list with the same token.
    Answered,
}

/// What to do about what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Healthy,
    /// Restart the unit now; `rate_limited` restarts count against
    /// [`GITHUB_RESTART_INTERVAL`].
    Restart {
        why: String,
        rate_limited: bool,
    },
    /// Look again once the reconcile has talked to GitHub.
    AskAfterReconcile(String),
    /// Leave the service alone; the status says why.
    Unhealthy(String),
}

/// The policy.
///
/// A stopped unit or a closed port is a dead service, and only a restart brings it
/// back: restart at once, every time.
///
/// A running service that answers 500 (or too late, or oddly) most likely cannot reach
/// GitHub with its token, and a restart does not fix GitHub being down or slow: every
/// restart would only cut short the pre-job checks in flight. So such a service is
/// restarted only when (1) the charm's own reconcile has just read GitHub with the same
/// token, which rules out GitHub being down or the token being bad, and (2) no restart
/// of this kind happened within [`GITHUB_RESTART_INTERVAL`], so a cause a restart does
/// not cure (a proxy only the charm gets, say) costs one restart an hour, not a loop.
pub fn decide(
    seen: &Seen,
    evidence: GithubEvidence,
    last_github_restart: Option<u64>,
    now: u64,
) -> Decision {
    let restart = |why: String, rate_limited| Decision::Restart { why, rate_limited };
    if !seen.unit_active {
        return restart("its unit was not active".into(), false);
    }
    let why = match &seen.answer {
        Answer::Healthy => return Decision::Healthy,
        Answer::Down(why) => return restart(format!("nothing answered: {why}"), false),
        Answer::Failing(why) => why.clone(),
    };
    match evidence {
        GithubEvidence::Unknown => Decision::AskAfterReconcile(why),
        GithubEvidence::Answered => {
            let recent = last_github_restart
                .is_some_and(|at| now.saturating_sub(at) < GITHUB_RESTART_INTERVAL.as_secs());
            if recent {
                Decision::Unhealthy(format!("{why} (restarted within the last hour)"))
            } else {
                restart(why, true)
            }
        }
    }
}

/// `GET /health` as the check sees it.
pub trait HealthProbe {
    fn ask(&self) -> Answer;
}

impl HealthProbe for PolicyClient {
    fn ask(&self) -> Answer {
        match self.health() {
            Ok(()) => Answer::Healthy,
            Err(ClientError::Unreachable {
                message,
                connect_failed: true,
                ..
            }) => Answer::Down(message),
            Err(ClientError::Status {
                status, message, ..
            }) => Answer::Failing(format!("/health answered {status}: {}", short(&message))),
            Err(e) => Answer::Failing(e.to_string()),
        }
    }
}

/// At most one line of 160 characters of what the service said, for the status.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(160) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

/// The service's health as the status reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy(String),
}

impl Health {
    /// What is wrong, if anything.
    pub fn problem(&self) -> Option<String> {
        match self {
            Health::Healthy => None,
            Health::Unhealthy(why) => Some(why.clone()),
        }
    }
}

/// The check before the reconcile either settles the question or leaves it for after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    Done(Health),
    AskAfterReconcile,
}

/// The persisted time of the last rate-limited restart (unix seconds).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    last_github_restart: Option<u64>,
}

/// The check's I/O: systemd through [`Commands`], `/health` through a [`HealthProbe`],
/// time through a [`Clock`] (waits, and the persisted restart time).
pub struct HealthCheck<'a> {
    pub commands: &'a dyn Commands,
    pub probe: &'a dyn HealthProbe,
    pub clock: &'a dyn Clock,
    pub paths: &'a HostPaths,
    /// The unit's policy service, as systemd names it.
    pub unit: &'a str,
}

impl HealthCheck<'_> {
    /// Before the reconcile: healthy, restarted (and how that went), or to be decided
    /// after the reconcile's GitHub calls.
    pub fn before_reconcile(&self) -> Checked {
        match self.act(GithubEvidence::Unknown) {
            Some(health) => Checked::Done(health),
            None => Checked::AskAfterReconcile,
        }
    }

    /// After a reconcile that read GitHub with the token the service also uses.
    pub fn after_github_answered(&self) -> Health {
        self.act(GithubEvidence::Answered)
            .expect("decide never defers once GitHub answered")
    }

    fn act(&self, evidence: GithubEvidence) -> Option<Health> {
        let seen = self.look();
        let last = self.load().last_github_restart;
        match decide(&seen, evidence, last, self.clock.unix_now()) {
            Decision::Healthy => Some(Health::Healthy),
            Decision::AskAfterReconcile(why) => {
                log::info!("policy service: {why}; deciding after the reconcile");
                None
            }
            Decision::Unhealthy(why) => {
                log::warn!("policy service unhealthy, not restarting it: {why}");
                Some(Health::Unhealthy(why))
            }
            Decision::Restart { why, rate_limited } => Some(self.restart(&why, rate_limited)),
        }
    }

    fn look(&self) -> Seen {
        // A systemctl that cannot run says nothing about the service: /health decides.
        let unit_active = policy_service_active(self.commands, self.unit).unwrap_or_else(|e| {
            log::warn!("policy service: {e}");
            true
        });
        let answer = if unit_active {
            self.ask_until_listening(START_GRACE)
        } else {
            self.probe.ask()
        };
        Seen {
            unit_active,
            answer,
        }
    }

    /// Asks until the port takes the connection or `limit` has passed: polled, no fixed
    /// wait.
    fn ask_until_listening(&self, limit: Duration) -> Answer {
        let deadline = self.clock.now() + limit;
        loop {
            match self.probe.ask() {
                Answer::Down(_) if self.clock.now() < deadline => self.clock.sleep(POLL_EVERY),
                answer => return answer,
            }
        }
    }

    fn restart(&self, why: &str, rate_limited: bool) -> Health {
        log::warn!("policy service unhealthy ({why}): restarting it");
        if rate_limited {
            self.save(&Record {
                last_github_restart: Some(self.clock.unix_now()),
            });
        }
        if let Err(e) = restart_policy_service(self.commands, self.unit) {
            log::warn!("policy service restart failed: {e}");
            return Health::Unhealthy(format!("{why}; restart failed: {e}"));
        }
        // The first answer of the new process is fresh (no cached health), so only a
        // closed port is waited out.
        match self.ask_until_listening(RESTART_DEADLINE) {
            Answer::Healthy => {
                log::info!("policy service healthy again after the restart");
                Health::Healthy
            }
            Answer::Failing(e) | Answer::Down(e) => {
                log::warn!("policy service still unhealthy after the restart: {e}");
                Health::Unhealthy(format!("restarted, still failing: {e}"))
            }
        }
    }

    fn load(&self) -> Record {
        std::fs::read(self.paths.policy_health_file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, record: &Record) {
        let body = serde_json::to_vec(record).expect("serializable");
        let written = fs_state::ensure_private_dir(&self.paths.state_dir())
            .and_then(|()| fs_state::write_atomic(&self.paths.policy_health_file(), &body, 0o600));
        if let Err(e) = written {
            log::warn!("policy service restart record: {e}");
        }
    }
}

/// The check on this host: systemctl through the hook's commands, and the service at
/// `url` (on loopback).
pub struct LocalCheck<'a> {
    client: PolicyClient,
    unit: String,
    deps: &'a Deps<'a>,
}

impl<'a> LocalCheck<'a> {
    /// `/health` needs no credential; the charm token goes along when there is one.
    pub fn new(deps: &'a Deps<'a>, site: &UnitSite) -> Self {
        let token = std::fs::read_to_string(deps.paths.charm_token()).unwrap_or_default();
        let token = crate::config::Token::new(token.trim());
        let url = policy_service::local_url(site.policy_port());
        LocalCheck {
            client: PolicyClient::with_timeout(&url, token, HEALTH_TIMEOUT),
            unit: site.policy_unit(),
            deps,
        }
    }

    pub fn check(&self) -> HealthCheck<'_> {
        HealthCheck {
            commands: self.deps.commands,
            probe: &self.client,
            clock: self.deps.clock.as_ref(),
            paths: &self.deps.paths,
            unit: &self.unit,
        }
    }
}

#[cfg(test)]
#[path = "policy_health_tests.rs"]
mod tests;
