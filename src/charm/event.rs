//! What Juju asked for: `JUJU_DISPATCH_PATH` parsed into an [`Event`].

/// The hooks, actions and custom events this charm answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Install,
    Start,
    Stop,
    Remove,
    UpgradeCharm,
    ConfigChanged,
    /// A secret the config names has a new revision (`JUJU_SECRET_ID`): handled as a
    /// config change, which reads every secret's latest revision.
    SecretChanged,
    UpdateStatus,
    /// Sent by the reconcile timer through `juju-exec`.
    ReconcileTimer,
    /// `cos-agent-relation-joined` or `-changed`: the COS agent wants this unit's data.
    CosAgentRelation,
    Action(Action),
    /// Anything else Juju may send (relation hooks, leader-elected, ...): logged, ignored.
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    CheckRunners,
    ReconcileRunners,
    FlushRunners,
    UpdateDependencies,
    Unknown(String),
}

impl Event {
    /// `hooks/NAME`, `actions/NAME`, or a bare custom event name.
    pub fn from_dispatch_path(path: &str) -> Event {
        let path = path.trim_start_matches("./");
        if let Some(hook) = path.strip_prefix("hooks/") {
            return match hook {
                "install" => Event::Install,
                "start" => Event::Start,
                "stop" => Event::Stop,
                "remove" => Event::Remove,
                "upgrade-charm" => Event::UpgradeCharm,
                "config-changed" => Event::ConfigChanged,
                "secret-changed" => Event::SecretChanged,
                "update-status" => Event::UpdateStatus,
                "cos-agent-relation-joined" | "cos-agent-relation-changed" => {
                    Event::CosAgentRelation
                }
                other => Event::Unknown(other.to_string()),
            };
        }
        if let Some(action) = path.strip_prefix("actions/") {
            return Event::Action(match action {
                "check-runners" => Action::CheckRunners,
                "reconcile-runners" => Action::ReconcileRunners,
                "flush-runners" => Action::FlushRunners,
                "update-dependencies" => Action::UpdateDependencies,
                other => Action::Unknown(other.to_string()),
            });
        }
        match path {
            "reconcile-runners" => Event::ReconcileTimer,
            other => Event::Unknown(other.to_string()),
        }
    }

    /// `stop` and `remove`: the unit's runners go, whatever the config says now.
    pub fn tears_down(&self) -> bool {
        matches!(self, Event::Stop | Event::Remove)
    }

    pub fn is_action(&self) -> bool {
        matches!(self, Event::Action(_))
    }

    /// Events after which the `cos-agent` relation's data is written again (a new
    /// charm or config may change it), besides the relation's own.
    pub fn refreshes_cos_agent(&self) -> bool {
        matches!(self, Event::ConfigChanged | Event::UpgradeCharm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_known_path() {
        let cases = [
            ("hooks/install", Event::Install),
            ("hooks/start", Event::Start),
            ("hooks/stop", Event::Stop),
            ("hooks/remove", Event::Remove),
            ("hooks/upgrade-charm", Event::UpgradeCharm),
            ("hooks/config-changed", Event::ConfigChanged),
            ("hooks/secret-changed", Event::SecretChanged),
            ("hooks/update-status", Event::UpdateStatus),
            ("reconcile-runners", Event::ReconcileTimer),
            ("hooks/cos-agent-relation-joined", Event::CosAgentRelation),
            ("hooks/cos-agent-relation-changed", Event::CosAgentRelation),
            ("actions/check-runners", Event::Action(Action::CheckRunners)),
            (
                "actions/reconcile-runners",
                Event::Action(Action::ReconcileRunners),
            ),
            ("actions/flush-runners", Event::Action(Action::FlushRunners)),
            (
                "actions/update-dependencies",
                Event::Action(Action::UpdateDependencies),
            ),
            ("./hooks/install", Event::Install),
        ];
        for (path, want) in cases {
            assert_eq!(Event::from_dispatch_path(path), want, "{path}");
        }
    }

    #[test]
    fn unknown_paths_are_kept_for_the_log() {
        assert_eq!(
            Event::from_dispatch_path("hooks/leader-elected"),
            Event::Unknown("leader-elected".into())
        );
        assert_eq!(
            Event::from_dispatch_path("actions/dance"),
            Event::Action(Action::Unknown("dance".into()))
        );
        assert_eq!(
            Event::from_dispatch_path("something"),
            Event::Unknown("something".into())
        );
    }
}
