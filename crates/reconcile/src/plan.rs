//! The pure planner: from what was observed and what is wanted, the list of actions
//! that brings the pool to the wanted state. No I/O, no clock: `now` is an input.

use std::collections::{HashMap, HashSet};

use ghr_types::RunnerName;

/// An LXD instance of ours, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedInstance {
    pub name: RunnerName,
    /// Running; anything else means the runner inside has ended (the start script
    /// powers the instance off when the runner exits).
    pub running: bool,
    /// Seconds since the instance was created.
    pub age_secs: u64,
}

/// A GitHub registration of ours, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRegistration {
    pub id: u64,
    pub name: RunnerName,
    pub online: bool,
    pub busy: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub instances: Vec<ObservedInstance>,
    pub registrations: Vec<ObservedRegistration>,
}

/// Which runners a flush removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    None,
    Idle,
    /// Busy ones too: their jobs are lost.
    All,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub runners: u32,
    /// How long a new instance may stay unregistered or offline before it is judged dead.
    pub grace_secs: u64,
    /// An idle runner older than this is replaced: its one-time policy token expires
    /// a while later, and a runner must never take a job it can no longer pass.
    pub max_idle_secs: u64,
    pub flush: Flush,
    /// Instances to leave alone entirely: busy runners of a previous path finishing
    /// their job.
    pub keep: HashSet<RunnerName>,
}

/// Why a runner is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Its instance stopped: the runner finished or died.
    Ended,
    /// Registered on GitHub, but its instance is gone.
    NoInstance,
    /// Its instance never registered, or its registration vanished, past the grace time.
    NoRegistration,
    /// Offline on GitHub past the grace time.
    Offline,
    /// More idle runners than wanted.
    Surplus,
    /// Idle past the age bound, before its policy token expires.
    Aged,
    Flushed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ended => "ended",
            Reason::NoInstance => "no-instance",
            Reason::NoRegistration => "no-registration",
            Reason::Offline => "offline",
            Reason::Surplus => "surplus",
            Reason::Aged => "aged",
            Reason::Flushed => "flushed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Create,
    /// Delete the registration first (GitHub refuses while a job runs, which keeps a
    /// runner that just took a job), then the instance.
    Remove {
        name: RunnerName,
        registration: Option<u64>,
        instance: bool,
        reason: Reason,
    },
    /// Busy on GitHub with no instance: GitHub will give the job up as lost; a later
    /// reconcile removes it. Recorded so the report says why it is still there.
    WaitForGithub {
        name: RunnerName,
    },
}

/// What a runner the plan keeps is doing, for the manager's lifecycle events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveState {
    Starting,
    Idle,
    Busy,
}

/// A runner the plan keeps, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRunner {
    pub name: RunnerName,
    pub state: LiveState,
    /// Seconds since its instance was created.
    pub age_secs: u64,
    /// GitHub lists a registration of it (online or not).
    pub registered: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub idle: u32,
    pub busy: u32,
    pub starting: u32,
    /// Registrations GitHub listed offline past their grace, or without an instance:
    /// the ones this plan removes as `offline` or `no-instance`.
    pub offline: u32,
    /// Every runner the plan keeps (surplus and flushed ones are in `steps`).
    pub live: Vec<LiveRunner>,
    /// Runners removed (surplus, flushed) while running with no registration at all.
    /// One that was online before has finished its job (GitHub drops an ephemeral
    /// runner's registration after it).
    pub removed_starting: Vec<RunnerName>,
}

impl Plan {
    pub fn creates(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Create))
            .count()
    }
    pub fn removals(&self) -> impl Iterator<Item = (&RunnerName, Reason)> {
        self.steps.iter().filter_map(|s| match s {
            Step::Remove { name, reason, .. } => Some((name, *reason)),
            _ => None,
        })
    }
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

enum Health {
    Busy,
    Idle,
    Starting,
    Dead(Reason),
}

fn health(
    inst: &ObservedInstance,
    reg: Option<&ObservedRegistration>,
    desired: &Desired,
) -> Health {
    let grace = desired.grace_secs;
    if !inst.running {
        return Health::Dead(Reason::Ended);
    }
    match reg {
        Some(r) if r.busy => Health::Busy,
        Some(r) if r.online && inst.age_secs > desired.max_idle_secs => Health::Dead(Reason::Aged),
        Some(r) if r.online => Health::Idle,
        Some(_) if inst.age_secs <= grace => Health::Starting,
        Some(_) => Health::Dead(Reason::Offline),
        None if inst.age_secs <= grace => Health::Starting,
        None => Health::Dead(Reason::NoRegistration),
    }
}

/// Turns an observation into the steps that reach `desired`.
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    let regs: HashMap<&RunnerName, &ObservedRegistration> = observed
        .registrations
        .iter()
        .map(|r| (&r.name, r))
        .collect();
    let with_instance: HashSet<&RunnerName> = observed.instances.iter().map(|i| &i.name).collect();
    let mut out = Plan::default();
    let mut idle_names = Vec::new();
    let remove = |name: &RunnerName, reg: Option<&ObservedRegistration>, instance: bool, reason| {
        Step::Remove {
            name: name.clone(),
            registration: reg.map(|r| r.id),
            instance,
            reason,
        }
    };
    let mut steps = Vec::new();
    let mut instances: Vec<&ObservedInstance> = observed.instances.iter().collect();
    instances.sort_by(|a, b| a.name.cmp(&b.name));
    for inst in instances
        .into_iter()
        .filter(|i| !desired.keep.contains(&i.name))
    {
        let reg = regs.get(&inst.name).copied();
        let health = health(inst, reg, desired);
        if matches!(health, Health::Dead(Reason::Offline)) {
            out.offline += 1;
        }
        match health {
            Health::Dead(reason) => steps.push(remove(&inst.name, reg, true, reason)),
            Health::Busy if desired.flush == Flush::All => {
                steps.push(remove(&inst.name, reg, true, Reason::Flushed))
            }
            Health::Busy => {
                out.busy += 1;
                out.live.push(live(inst, reg, LiveState::Busy));
            }
            Health::Idle | Health::Starting if desired.flush != Flush::None => {
                if reg.is_none() {
                    out.removed_starting.push(inst.name.clone());
                }
                steps.push(remove(&inst.name, reg, true, Reason::Flushed))
            }
            Health::Idle => {
                out.idle += 1;
                idle_names.push((inst, reg));
            }
            Health::Starting => {
                out.starting += 1;
                idle_names.push((inst, reg));
            }
        }
    }
    let mut orphans: Vec<&ObservedRegistration> = observed
        .registrations
        .iter()
        .filter(|r| !with_instance.contains(&r.name))
        .collect();
    orphans.sort_by(|a, b| a.name.cmp(&b.name));
    for reg in orphans {
        if reg.busy {
            steps.push(Step::WaitForGithub {
                name: reg.name.clone(),
            });
        } else {
            out.offline += u32::from(!reg.online);
            steps.push(remove(&reg.name, Some(reg), false, Reason::NoInstance));
        }
    }
    let alive = out.busy + out.idle + out.starting;
    let wanted = desired.runners;
    if alive < wanted {
        steps.extend((0..wanted - alive).map(|_| Step::Create));
    } else {
        // Surplus: only idle ones, the ones still starting first (they have not taken a
        // job yet), and never a busy one.
        let surplus = (alive - wanted) as usize;
        idle_names.sort_by_key(|(inst, reg)| (reg.is_some_and(|r| r.online), inst.name.clone()));
        let kept = idle_names.split_off(surplus.min(idle_names.len()));
        for (inst, reg) in std::mem::replace(&mut idle_names, kept) {
            if reg.is_some_and(|r| r.online) {
                out.idle -= 1;
            } else {
                out.starting -= 1;
                if reg.is_none() {
                    out.removed_starting.push(inst.name.clone());
                }
            }
            steps.push(remove(&inst.name, reg, true, Reason::Surplus));
        }
    }
    for (inst, reg) in idle_names {
        let state = if reg.is_some_and(|r| r.online) {
            LiveState::Idle
        } else {
            LiveState::Starting
        };
        out.live.push(live(inst, reg, state));
    }
    out.steps = steps;
    out
}

fn live(
    inst: &ObservedInstance,
    reg: Option<&ObservedRegistration>,
    state: LiveState,
) -> LiveRunner {
    LiveRunner {
        registered: reg.is_some(),
        name: inst.name.clone(),
        state,
        age_secs: inst.age_secs,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
