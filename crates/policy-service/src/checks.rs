//! The policy rules, as functions over [`RepoApi`]: which GitHub facts make a job's
//! repository and pull request safe to run on a self-hosted runner. The outcome is a
//! value ([`Outcome`]) that the server maps to a status; failure texts name the rule
//! and say how to fix it.

use std::collections::HashMap;

use super::document::Policy;
use super::github::{ApiError, Permission, PullRequest, RepoApi, RepoName};

/// The comment a maintainer leaves on a fork's pull request to approve one commit.
pub const RUN_WORKFLOWS_COMMAND: &str = "/canonical/self-hosted-runners/run-workflows";

/// A check's result: 204, 403 or 500 on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every enabled rule holds.
    Pass,
    /// A rule does not hold; the text names it and says how to fix it.
    Fail(String),
    /// The rules could not be evaluated (rate limit, GitHub error).
    Error(String),
}

/// The events that only check the repository (not a pull request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepositoryEvent {
    WorkflowDispatch,
    Push,
    Schedule,
}

/// What a `pull_request` check-run is asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestInput {
    pub repository: RepoName,
    pub source_repository: RepoName,
    pub target_branch: String,
    pub source_branch: String,
    pub commit_sha: String,
}

impl PullRequestInput {
    /// A pull request whose head lives in another repository.
    pub fn is_fork(&self) -> bool {
        !self.source_repository.same_as(&self.repository)
    }
}

/// One check-run request, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckRequest {
    PullRequest(PullRequestInput),
    /// An event that names its pull request only by number (a comment on it): the
    /// open pull request of that number is looked up, then checked as above.
    PullRequestNumber {
        repository: RepoName,
        number: u64,
    },
    Repository {
        event: RepositoryEvent,
        repository: RepoName,
    },
}

/// Evaluates the enabled rules for a request, stopping at the first that fails.
pub fn check(api: &dyn RepoApi, policy: &Policy, request: &CheckRequest) -> Outcome {
    let mut session = Session {
        api,
        permissions: HashMap::new(),
    };
    let result = match request {
        CheckRequest::PullRequest(input) => session.pull_request(policy, input),
        CheckRequest::PullRequestNumber { repository, number } => session
            .pull_request_input(repository, *number)
            .and_then(|input| session.pull_request(policy, &input)),
        CheckRequest::Repository { event, repository } => {
            let enabled = match event {
                RepositoryEvent::WorkflowDispatch => policy.workflow_dispatch_collaborators,
                RepositoryEvent::Push => policy.push_collaborators,
                RepositoryEvent::Schedule => policy.schedule_collaborators,
            };
            if enabled {
                session.collaborators(repository)
            } else {
                Ok(())
            }
        }
    };
    match result {
        Ok(()) => Outcome::Pass,
        Err(Stop::Fail(reason)) => Outcome::Fail(reason),
        Err(Stop::Error(reason)) => Outcome::Error(reason),
    }
}

/// Why the `default` check refuses an event outright, if it does: one whose name is a
/// pull-request event (`pull_request*`), or whose payload the caller says carries a
/// pull request. GitHub runs a pull request's code for those, and only the
/// pull-request check may pass that; a pre-job script that sends one here is out of
/// date or was bypassed.
pub fn default_refusal(event_name: &str, carries_pull_request: bool) -> Option<String> {
    if !event_name.starts_with("pull_request") && !carries_pull_request {
        return None;
    }
    Some(format!(
        "default: the {event_name} event carries a pull request, whose code only the pull_request \
         check may let run; fix: update the runner's pre-job script (replace the runner)"
    ))
}

/// Why a rule stopped the evaluation.
enum Stop {
    Fail(String),
    Error(String),
}

type RuleResult = Result<(), Stop>;

/// One request's GitHub reads, with permissions cached so the fork owner's permission
/// is fetched once for `disallow_fork` and `execute_job`.
struct Session<'a> {
    api: &'a dyn RepoApi,
    permissions: HashMap<String, Permission>,
}

/// Maps a GitHub error met while evaluating `rule` on `repo` to the request's outcome.
fn api_error(rule: &str, repo: &RepoName, error: ApiError) -> Stop {
    match error {
        ApiError::RateLimited(detail) => Stop::Error(format!(
            "{rule}: GitHub API rate limit exceeded ({detail}); the check can run again once the limit resets"
        )),
        ApiError::NotFound(_) => Stop::Fail(format!(
            "{rule}: repository {repo} not found with the charm's GitHub token: the repository is not set up \
             correctly for these runners; fix: check the repository name and give the token access to it"
        )),
        ApiError::Other(detail) => Stop::Error(format!("{rule}: GitHub API error: {detail}")),
    }
}

impl Session<'_> {
    fn pull_request(&mut self, policy: &Policy, input: &PullRequestInput) -> RuleResult {
        let rules = &policy.pull_request;
        if rules.target_branch_protection {
            self.target_branch_protection(input)?;
        }
        if rules.collaborators {
            self.collaborators(&input.repository)?;
        }
        if rules.disallow_fork {
            self.disallow_fork(input)?;
        }
        if rules.execute_job {
            self.execute_job(input)?;
        }
        Ok(())
    }

    /// The open pull request `number` of `repo`, as a pull-request check's input.
    fn pull_request_input(
        &mut self,
        repo: &RepoName,
        number: u64,
    ) -> Result<PullRequestInput, Stop> {
        const RULE: &str = "pull_request";
        let pulls = self
            .api
            .open_pull_requests(repo)
            .map_err(|e| api_error(RULE, repo, e))?;
        let Some(pull) = pulls.into_iter().find(|p| p.number == number) else {
            return Err(Stop::Fail(format!(
                "{RULE}: pull request #{number} of {repo} is not open; fix: run the workflow on an open pull request"
            )));
        };
        let head = pull
            .head
            .repo
            .as_ref()
            .and_then(|r| RepoName::parse(&r.full_name).ok());
        let Some(source_repository) = head else {
            return Err(Stop::Fail(format!(
                "{RULE}: the head repository of pull request #{number} of {repo} is gone (a deleted fork), \
                 so its code cannot be checked"
            )));
        };
        Ok(PullRequestInput {
            repository: repo.clone(),
            source_repository,
            target_branch: pull.base.ref_name,
            source_branch: pull.head.ref_name,
            commit_sha: pull.head.sha.to_ascii_lowercase(),
        })
    }

    fn permission(&mut self, rule: &str, repo: &RepoName, user: &str) -> Result<Permission, Stop> {
        let key = user.to_ascii_lowercase();
        if let Some(p) = self.permissions.get(&key) {
            return Ok(*p);
        }
        let p = self
            .api
            .collaborator_permission(repo, user)
            .map_err(|e| api_error(rule, repo, e))?;
        self.permissions.insert(key, p);
        Ok(p)
    }

    /// The target branch is protected; for the default branch or a fork's pull request
    /// the protection requires reviews that nobody may bypass.
    fn target_branch_protection(&mut self, input: &PullRequestInput) -> RuleResult {
        const RULE: &str = "target_branch_protection";
        let repo = &input.repository;
        let branch = &input.target_branch;
        let err = |e| api_error(RULE, repo, e);
        let repository = self.api.repository(repo).map_err(err)?;
        let protected = match self.api.branch(repo, branch) {
            Ok(b) => b.protected,
            Err(ApiError::NotFound(_)) => {
                return Err(Stop::Fail(format!(
                    "{RULE}: target branch {branch:?} not found in {repo}; fix: run the workflow against an existing, protected branch"
                )))
            }
            Err(e) => return Err(err(e)),
        };
        let not_protected = || {
            Stop::Fail(format!(
                "{RULE}: target branch {branch:?} of {repo} is not protected; fix: add a branch protection rule for it"
            ))
        };
        if !protected {
            return Err(not_protected());
        }
        if *branch != repository.default_branch && !input.is_fork() {
            return Ok(());
        }
        let protection = match self.api.branch_protection(repo, branch) {
            Ok(Some(p)) => p,
            // The branch says it is protected, yet the rule cannot be read.
            Ok(None) | Err(ApiError::NotFound(_)) => {
                return Err(Stop::Fail(format!(
                    "{RULE}: the protection rule of branch {branch:?} of {repo} cannot be read; fix: give the \
                     charm's GitHub token permission to read the repository's administration settings"
                )))
            }
            Err(e) => return Err(err(e)),
        };
        let Some(reviews) = protection.required_pull_request_reviews else {
            return Err(Stop::Fail(format!(
                "{RULE}: the protection of branch {branch:?} of {repo} does not require pull request reviews; \
                 fix: enable \"Require a pull request before merging\" with required approvals in its protection rule"
            )));
        };
        let bypass = reviews.bypass_pull_request_allowances.unwrap_or_default();
        if !bypass.is_empty() {
            let mut who = Vec::new();
            let mut add = |kind: &str, names: Vec<String>| {
                if !names.is_empty() {
                    who.push(format!("{kind} {}", names.join(", ")));
                }
            };
            add("users", bypass.users.into_iter().map(|u| u.login).collect());
            add("teams", bypass.teams.into_iter().map(|t| t.slug).collect());
            add("apps", bypass.apps.into_iter().map(|a| a.slug).collect());
            return Err(Stop::Fail(format!(
                "{RULE}: {} can bypass the required pull request reviews of branch {branch:?} of {repo}; \
                 fix: remove them from \"Allow specified actors to bypass required pull requests\" in its protection rule",
                who.join("; ")
            )));
        }
        Ok(())
    }

    /// No outside collaborator has more than read permission.
    fn collaborators(&mut self, repo: &RepoName) -> RuleResult {
        const RULE: &str = "collaborators";
        let outside = self
            .api
            .outside_collaborators(repo)
            .map_err(|e| api_error(RULE, repo, e))?;
        let offenders: Vec<String> = outside
            .iter()
            .filter(|c| c.role_name != "read")
            .map(|c| format!("{} ({})", c.login, c.role_name))
            .collect();
        if offenders.is_empty() {
            return Ok(());
        }
        Err(Stop::Fail(format!(
            "{RULE}: outside collaborators with more than read permission on {repo}: {}; \
             fix: lower their role to read or make them members of the organisation",
            offenders.join(", ")
        )))
    }

    /// A fork's pull request fails unless the fork's owner may write to the target.
    fn disallow_fork(&mut self, input: &PullRequestInput) -> RuleResult {
        const RULE: &str = "disallow_fork";
        if !input.is_fork() {
            return Ok(());
        }
        let owner = input.source_repository.owner();
        if self.permission(RULE, &input.repository, owner)?.can_push() {
            return Ok(());
        }
        Err(Stop::Fail(format!(
            "{RULE}: the pull request comes from fork {} whose owner {owner} has no write permission on {}; \
             fix: open the pull request from a branch of {} (forks are not allowed by this policy)",
            input.source_repository, input.repository, input.repository
        )))
    }

    /// A fork's pull request runs only if its owner may write to the target, or a user
    /// with push permission approved this commit in a comment.
    fn execute_job(&mut self, input: &PullRequestInput) -> RuleResult {
        const RULE: &str = "execute_job";
        if !input.is_fork() {
            return Ok(());
        }
        let repo = &input.repository;
        let owner = input.source_repository.owner();
        if self.permission(RULE, repo, owner)?.can_push() {
            return Ok(());
        }
        let pulls = self
            .api
            .open_pull_requests(repo)
            .map_err(|e| api_error(RULE, repo, e))?;
        let Some(pull) = pulls.iter().find(|p| matches_input(p, input)) else {
            return Err(Stop::Fail(format!(
                "{RULE}: no open pull request from {}:{} to {} of {repo} was found; fix: open the pull request \
                 (fork pull requests need an approval comment on it)",
                input.source_repository, input.source_branch, input.target_branch
            )));
        };
        let comments = self
            .api
            .issue_comments(repo, pull.number)
            .map_err(|e| api_error(RULE, repo, e))?;
        for comment in &comments {
            let (Some(body), Some(user)) = (&comment.body, &comment.user) else {
                continue;
            };
            if approves(body, &input.commit_sha)
                && self.permission(RULE, repo, &user.login)?.can_push()
            {
                return Ok(());
            }
        }
        Err(Stop::Fail(format!(
            "{RULE}: pull request #{} comes from fork {} and commit {} is not approved; fix: a user with write \
             permission on {repo} reviews the changes and comments `{RUN_WORKFLOWS_COMMAND} {}` on the pull request",
            pull.number, input.source_repository, input.commit_sha, input.commit_sha
        )))
    }
}

/// The open pull request the check-run is about: same head repository, head and base branch.
fn matches_input(pull: &PullRequest, input: &PullRequestInput) -> bool {
    let head_repo = pull
        .head
        .repo
        .as_ref()
        .and_then(|r| RepoName::parse(&r.full_name).ok());
    head_repo.is_some_and(|r| r.same_as(&input.source_repository))
        && pull.head.ref_name == input.source_branch
        && pull.base.ref_name == input.target_branch
}

/// Whether a comment body approves `sha`: an unquoted line contains the command, blanks,
/// then the whole commit id, wherever it sits (in backticks, mid-sentence, before a full
/// stop). Quoted (`>`) lines are someone repeating an approval, not giving one.
pub fn approves(body: &str, sha: &str) -> bool {
    body.lines()
        .filter(|line| !line.trim_start().starts_with('>'))
        .any(|line| {
            line.match_indices(RUN_WORKFLOWS_COMMAND)
                .any(|(at, command)| names_commit(&line[at + command.len()..], sha))
        })
}

/// Whether `rest`, what follows the command, is blanks then `sha` and no further hex
/// digit: a prefix of the id could name another commit, so it approves nothing.
fn names_commit(rest: &str, sha: &str) -> bool {
    let argument = rest.trim_start_matches([' ', '\t']);
    if argument.len() == rest.len() {
        return false;
    }
    let Some(named) = argument.get(..sha.len()) else {
        return false;
    };
    named.eq_ignore_ascii_case(sha)
        && !argument[sha.len()..].starts_with(|c: char| c.is_ascii_hexdigit())
}

#[cfg(test)]
#[path = "checks_approves_tests.rs"]
mod approves_tests;
#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
