//! The simulator's world: orgs, repositories, runner groups, runners, registration
//! tokens, jobs, faults, counters and the rate-limit budget. Pure data and rules; the
//! HTTP modules lock it, call a method, and render the result.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::jobs::Job;
use super::repo_state::RepoData;

/// Where a runner or token belongs: an organisation or one `owner/name` repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Scope {
    Org(String),
    Repo(String),
}

impl Scope {
    /// The scope from a runner `--url` path: `org` or `owner/repo`.
    pub fn from_url_path(path: &str) -> Option<Scope> {
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        match parts.as_slice() {
            [org] => Some(Scope::Org(org.to_string())),
            [owner, repo] => Some(Scope::Repo(format!("{owner}/{repo}"))),
            _ => None,
        }
    }
    /// Whether a job of `repository` may run on a runner of this scope.
    pub fn serves(&self, repository: &str) -> bool {
        match self {
            Scope::Org(org) => repository.split('/').next() == Some(org.as_str()),
            Scope::Repo(full) => full == repository,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SimRunner {
    pub id: u64,
    pub name: String,
    pub scope: Scope,
    pub labels: Vec<String>,
    /// Labels GitHub adds itself (`self-hosted`, OS, arch) are read-only.
    pub default_labels: usize,
    pub group_id: u64,
    pub ephemeral: bool,
    pub jit: bool,
    pub busy: bool,
    pub job_id: Option<u64>,
    #[serde(skip)]
    pub credential: String,
    /// A JIT config is single use: set once its runner has started a session.
    pub session_started: bool,
    #[serde(skip)]
    pub last_contact: Option<Instant>,
    /// Long polls in flight: a runner waiting for a job is online however long it waits.
    #[serde(skip)]
    pub polls: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Registration,
    Remove,
}

#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub scope: Scope,
    pub kind: TokenKind,
    pub expires_at: DateTime<Utc>,
}

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

/// Liveness settings.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub offline_after: Duration,
    pub lost_job_after: Duration,
}

pub struct World {
    pub tokens: BTreeSet<String>,
    pub orgs: BTreeMap<String, Vec<Group>>,
    pub repos: BTreeSet<String>,
    /// Settings and content of the repositories in `repos`, made on first use.
    pub repo_data: BTreeMap<String, RepoData>,
    pub runners: BTreeMap<u64, SimRunner>,
    pub jobs: BTreeMap<u64, Job>,
    pub issued: HashMap<String, IssuedToken>,
    pub faults: Vec<Fault>,
    pub counters: BTreeMap<String, u64>,
    pub budget: Budget,
    pub timing: Timing,
    next_id: u64,
}

impl World {
    pub fn new(timing: Timing, rate_limit: u64) -> Self {
        World {
            tokens: BTreeSet::new(),
            orgs: BTreeMap::new(),
            repos: BTreeSet::new(),
            repo_data: BTreeMap::new(),
            runners: BTreeMap::new(),
            jobs: BTreeMap::new(),
            issued: HashMap::new(),
            faults: Vec::new(),
            counters: BTreeMap::new(),
            budget: Budget::new(rate_limit, Utc::now()),
            timing,
            next_id: 1,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds an org with its `default` group (id 1); idempotent.
    pub fn add_org(&mut self, name: &str) {
        self.orgs.entry(name.to_string()).or_insert_with(|| {
            vec![Group {
                id: 1,
                name: "default".into(),
            }]
        });
    }

    pub fn add_group(&mut self, org: &str, name: &str) -> Option<u64> {
        let id = self.next_id();
        let groups = self.orgs.get_mut(org)?;
        if let Some(g) = groups.iter().find(|g| g.name == name) {
            return Some(g.id);
        }
        groups.push(Group {
            id,
            name: name.to_string(),
        });
        Some(id)
    }

    pub fn scope_exists(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Org(org) => self.orgs.contains_key(org),
            Scope::Repo(full) => self.repos.contains(full),
        }
    }

    /// A repository's data; `create` adds the repository first when it is unknown.
    pub fn repo_data(&mut self, full: &str, create: bool) -> Option<&mut RepoData> {
        if create {
            self.repos.insert(full.to_string());
        }
        if !self.repos.contains(full) {
            return None;
        }
        if !self.repo_data.contains_key(full) {
            let id = self.next_id();
            self.repo_data.insert(full.to_string(), RepoData::new(id));
        }
        self.repo_data.get_mut(full)
    }

    pub fn group_id(&self, scope: &Scope, name: Option<&str>) -> Option<u64> {
        let name = name.filter(|n| !n.is_empty()).unwrap_or("default");
        match scope {
            Scope::Org(org) => self
                .orgs
                .get(org)?
                .iter()
                .find(|g| g.name.eq_ignore_ascii_case(name))
                .map(|g| g.id),
            Scope::Repo(_) => (name.eq_ignore_ascii_case("default")).then_some(1),
        }
    }

    pub fn group_exists(&self, scope: &Scope, id: u64) -> bool {
        match scope {
            Scope::Org(org) => self
                .orgs
                .get(org)
                .is_some_and(|gs| gs.iter().any(|g| g.id == id)),
            Scope::Repo(_) => id == 1,
        }
    }

    pub fn issue_token(
        &mut self,
        scope: Scope,
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let token = random_token(29);
        let expires_at = now + chrono::Duration::hours(1);
        self.issued.insert(
            token.clone(),
            IssuedToken {
                scope,
                kind,
                expires_at,
            },
        );
        (token, expires_at)
    }

    /// Whether `token` is an unexpired token of `kind` for `scope`.
    pub fn token_valid(
        &self,
        token: &str,
        kind: TokenKind,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> bool {
        self.issued
            .get(token)
            .is_some_and(|t| t.kind == kind && &t.scope == scope && now < t.expires_at)
    }

    pub fn runner_by_name(&self, scope: &Scope, name: &str) -> Option<&SimRunner> {
        self.runners
            .values()
            .find(|r| &r.scope == scope && r.name == name)
    }

    pub fn runner_by_credential(&self, credential: &str) -> Option<u64> {
        self.runners
            .values()
            .find(|r| r.credential == credential)
            .map(|r| r.id)
    }

    pub fn online(&self, runner: &SimRunner, now: Instant) -> bool {
        runner.polls > 0
            || runner
                .last_contact
                .is_some_and(|t| now.duration_since(t) < self.timing.offline_after)
    }

    /// GitHub gives up a job whose runner went silent: after `lost_job_after`, the job
    /// fails and the runner is idle (and, not polling, offline).
    pub fn expire_lost_jobs(&mut self, now: Instant, wall: DateTime<Utc>) {
        let lost_after = self.timing.lost_job_after;
        for runner in self.runners.values_mut() {
            let silent = runner.polls == 0
                && runner
                    .last_contact
                    .is_none_or(|t| now.duration_since(t) >= lost_after);
            if !(runner.busy && silent) {
                continue;
            }
            runner.busy = false;
            if let Some(job) = runner.job_id.take().and_then(|id| self.jobs.get_mut(&id)) {
                job.finish("failure", wall);
                job.lost = true;
            }
        }
    }

    pub fn spend(&mut self, now: DateTime<Utc>) -> bool {
        self.budget.spend(now)
    }

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

pub fn random_token(len: usize) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect::<String>()
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(
            Timing {
                offline_after: Duration::from_secs(5),
                lost_job_after: Duration::from_secs(10),
            },
            3,
        )
    }

    #[test]
    fn scopes_from_urls_and_job_matching() {
        assert_eq!(
            Scope::from_url_path("/acme"),
            Some(Scope::Org("acme".into()))
        );
        assert_eq!(
            Scope::from_url_path("/o/r/"),
            Some(Scope::Repo("o/r".into()))
        );
        assert_eq!(Scope::from_url_path("/a/b/c"), None);
        assert!(Scope::Org("acme".into()).serves("acme/web"));
        assert!(!Scope::Org("acme".into()).serves("other/web"));
        assert!(Scope::Repo("o/r".into()).serves("o/r"));
    }

    #[test]
    fn tokens_are_bound_to_scope_and_kind_and_expire() {
        let mut w = world();
        let now = Utc::now();
        let acme = Scope::Org("acme".into());
        let (token, _) = w.issue_token(acme.clone(), TokenKind::Registration, now);
        assert!(w.token_valid(&token, TokenKind::Registration, &acme, now));
        assert!(!w.token_valid(&token, TokenKind::Remove, &acme, now));
        assert!(!w.token_valid(
            &token,
            TokenKind::Registration,
            &Scope::Org("x".into()),
            now
        ));
        assert!(!w.token_valid(
            &token,
            TokenKind::Registration,
            &acme,
            now + chrono::Duration::minutes(61)
        ));
    }

    #[test]
    fn budget_runs_out_and_resets_hourly() {
        let mut w = world();
        let now = Utc::now();
        assert!(w.spend(now) && w.spend(now) && w.spend(now));
        assert!(!w.spend(now));
        assert_eq!(w.budget.remaining(), 0);
        assert!(w.spend(now + chrono::Duration::minutes(61)));
    }

    #[test]
    fn faults_count_down_and_match_routes() {
        let mut w = world();
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
