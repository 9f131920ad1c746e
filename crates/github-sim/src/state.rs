//! The simulator's world: orgs, repositories, runner groups, runners and their
//! liveness, jobs, accepted PATs and counters; it also holds the registration tokens
//! ([`super::runner_tokens`]), the rate-limit budget ([`super::budget`]), the
//! injected faults ([`super::faults`]), the runner scale sets
//! ([`super::scaleset::world`]) and the GitHub Apps ([`super::apps`]), whose rules
//! live with them. Pure data and rules; the HTTP modules lock it, call a method, and render the result.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::apps::Apps;
use super::budget::Budget;
use super::faults::Fault;
use super::jobs::Job;
use super::repo_state::RepoData;
use super::runner_tokens::IssuedToken;
use super::scaleset::world::ScaleSets;

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
    /// The scale set a runner made by its `generatejitconfig` belongs to: it takes only
    /// jobs assigned to that scale set.
    pub scale_set_id: Option<u64>,
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
    pub scalesets: ScaleSets,
    /// GitHub Apps, their installations and installation tokens.
    pub apps: Apps,
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
            scalesets: ScaleSets::default(),
            apps: Apps::default(),
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

    /// Removes a group of `org` (never `default`); its runners move to `default`, as
    /// on GitHub. Whether there was such a group.
    pub fn remove_group(&mut self, org: &str, name: &str) -> bool {
        let Some(groups) = self.orgs.get_mut(org) else {
            return false;
        };
        let Some(at) = groups.iter().position(|g| g.name == name && g.id != 1) else {
            return false;
        };
        let id = groups.remove(at).id;
        let scope = Scope::Org(org.to_string());
        for runner in self.runners.values_mut() {
            if runner.scope == scope && runner.group_id == id {
                runner.group_id = 1;
            }
        }
        true
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
    /// fails and the runner is idle (and, not polling, offline). Whether any job was.
    pub fn expire_lost_jobs(&mut self, now: Instant, wall: DateTime<Utc>) -> bool {
        let lost_after = self.timing.lost_job_after;
        let mut lost = Vec::new();
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
                lost.push((job.id, runner.id, runner.name.clone()));
            }
        }
        let any = !lost.is_empty();
        for (job, runner_id, runner_name) in lost {
            self.job_completed(job, runner_id, &runner_name);
        }
        any
    }
}

#[cfg(test)]
impl World {
    /// A world for the unit tests of its rules, with a budget of `rate_limit` requests.
    pub(super) fn for_tests(rate_limit: u64) -> World {
        World::new(
            Timing {
                offline_after: Duration::from_secs(5),
                lost_job_after: Duration::from_secs(10),
            },
            rate_limit,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_removed_group_is_gone_and_never_the_default() {
        let mut w = World::for_tests(3);
        w.add_org("acme");
        let id = w.add_group("acme", "ci").unwrap();
        let org = Scope::Org("acme".into());
        assert!(w.group_exists(&org, id));
        assert!(!w.remove_group("acme", "default"));
        assert!(w.remove_group("acme", "ci"));
        assert!(!w.group_exists(&org, id));
        assert_eq!(w.group_id(&org, Some("ci")), None);
        assert!(!w.remove_group("acme", "ci"));
    }
}
