//! Scale sets the unit left (back to a fixed pool, another path or group) and has not
//! deleted yet, because some of their runners were busy. They are kept in a file so that
//! a restarted manager, or `remove`, still deletes them: left on GitHub, a set labelled
//! like the application's runners keeps taking its jobs for runners that never come.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::GithubPath;
use crate::runner::registry::ScaleSetLink;
use github_client::scaleset::ActionsService;
use github_client::GithubClient;

/// A scale set to delete, and where it is (enough to connect again after a restart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredSet {
    pub id: u64,
    /// The path as the `path` option names it (`acme`, `owner/repo`).
    pub path: String,
    /// The path's web URL (`https://github.com/acme`).
    pub url: String,
    /// Which set it was (URL, group, name), as the listener names it.
    pub identity: String,
}

/// The first pause after a set could not be deleted (busy, or GitHub unreachable), and
/// the longest: each try costs requests, made on the worker's thread.
const FIRST_PAUSE: Duration = Duration::from_secs(15);
const LONGEST_PAUSE: Duration = Duration::from_secs(600);

/// The unit's retired scale sets, as its file keeps them.
pub struct Retired {
    file: PathBuf,
    sets: Vec<RetiredSet>,
    /// Connections already made, by scale-set id.
    services: HashMap<u64, Arc<ActionsService>>,
    /// When to try each set again, and the pause after that.
    pauses: HashMap<u64, (Instant, Duration)>,
}

impl Retired {
    pub fn load(file: PathBuf) -> Self {
        let sets = kept(&file);
        Retired {
            file,
            sets,
            services: HashMap::new(),
            pauses: HashMap::new(),
        }
    }

    /// Remembers a set the unit just left, `identity` as its listener named it.
    pub fn add(&mut self, link: ScaleSetLink, identity: &str) {
        let (path, url) = link.service.path();
        let set = RetiredSet {
            id: link.id,
            path: path.to_string(),
            url: url.to_string(),
            identity: identity.to_string(),
        };
        if !self.sets.contains(&set) {
            self.sets.push(set);
            self.save();
        }
        // Left anew: tried at once, whatever an earlier retirement's pause was.
        self.pauses.remove(&link.id);
        self.services.insert(link.id, link.service);
    }

    /// Forgets the set of `identity` (GitHub's names ignore case): the unit serves it
    /// again (back on demand before it was deleted), and its listener finds it again.
    pub fn take_back(&mut self, identity: &str) {
        self.forget(|s| s.identity.eq_ignore_ascii_case(identity));
    }

    /// Deletes the sets none of whose runners is busy (their idle runners go with them),
    /// each tried again after a growing pause while it cannot be. `live` is the set the
    /// unit's listener serves now, never deleted: the same set under another spelling.
    /// `github` gives a client for the sets known only from the file (after a restart).
    pub fn delete_idle(
        &mut self,
        live: Option<u64>,
        github: impl FnOnce() -> Option<GithubClient>,
    ) {
        self.forget(|s| Some(s.id) == live);
        let now = Instant::now();
        if !self.sets.iter().any(|s| self.due(s.id, now)) {
            return;
        }
        let mut github = Some(github);
        let mut client = None;
        let before = self.sets.len();
        for set in std::mem::take(&mut self.sets) {
            if !self.due(set.id, now) {
                self.sets.push(set);
                continue;
            }
            let service = self.services.get(&set.id).cloned().or_else(|| {
                if let Some(make) = github.take() {
                    client = make();
                }
                client.as_ref().and_then(|g| connect(g, &set)).map(Arc::new)
            });
            if service.is_some_and(|service| self.deleted(&set, service)) {
                continue;
            }
            let pause = self.pauses.get(&set.id).map_or(FIRST_PAUSE, |(_, p)| *p);
            self.pauses
                .insert(set.id, (now + pause, (pause * 2).min(LONGEST_PAUSE)));
            self.sets.push(set);
        }
        if self.sets.len() != before {
            self.save();
        }
    }

    /// Whether set `id`'s pause since its last try is over.
    fn due(&self, id: u64, now: Instant) -> bool {
        self.pauses.get(&id).is_none_or(|(at, _)| *at <= now)
    }

    /// Whether `set` is gone now; its connection kept for the next try otherwise.
    fn deleted(&mut self, set: &RetiredSet, service: Arc<ActionsService>) -> bool {
        if delete_if_idle(&service, set.id) {
            self.services.remove(&set.id);
            self.pauses.remove(&set.id);
            return true;
        }
        self.services.insert(set.id, service);
        false
    }

    fn forget(&mut self, which: impl Fn(&RetiredSet) -> bool) {
        let before = self.sets.len();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sets)
            .into_iter()
            .partition(|s| which(s));
        self.sets = kept;
        for set in gone {
            self.pauses.remove(&set.id);
            self.services.remove(&set.id);
        }
        if self.sets.len() != before {
            log::info!("the unit serves the scale set it had left again");
            self.save();
        }
    }

    fn save(&self) {
        let written = serde_json::to_vec(&self.sets)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                fs_state::write_atomic(&self.file, &bytes, 0o600).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            log::warn!("retired scale sets {}: {e}", self.file.display());
        }
    }
}

/// What `remove` does once the unit's runners are gone: every set in `file` deleted.
/// Best effort: GitHub may be unreachable, and the unit must still go.
pub fn delete_all(file: &Path, github: &GithubClient) {
    for set in kept(file) {
        let deleted = connect(github, &set).map(|service| service.delete_scale_set(set.id));
        match deleted {
            Some(Ok(())) => log::info!("deleted runner scale set {} the unit left", set.id),
            Some(Err(e)) => log::warn!("runner scale set {} stays on GitHub: {e}", set.id),
            None => log::warn!("runner scale set {} stays on GitHub", set.id),
        }
    }
}

fn kept(file: &Path) -> Vec<RetiredSet> {
    std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn connect(github: &GithubClient, set: &RetiredSet) -> Option<ActionsService> {
    // The group does not matter here: the connection is made for the path alone.
    let path = GithubPath::parse(&set.path, "default")
        .map_err(|e| log::warn!("runner scale set {}: path {:?}: {e}", set.id, set.path))
        .ok()?;
    ActionsService::connect(github, &path, &set.url)
        .map_err(|e| log::warn!("runner scale set {}: {e}", set.id))
        .ok()
}

/// Whether the set is gone: deleted now, as none of its runners is busy.
fn delete_if_idle(service: &ActionsService, id: u64) -> bool {
    match service.scale_set_by_id(id) {
        Ok(Some(s)) if s.statistics.is_some_and(|x| x.busy_runners > 0) => false,
        Ok(Some(s)) if s.statistics.is_none() => {
            // Busy runners cannot be ruled out: kept, and said, as it may stay for good.
            log::warn!("runner scale set {id}: GitHub gave no statistics; kept for now");
            false
        }
        Ok(_) => match service.delete_scale_set(id) {
            Ok(()) => {
                log::info!("deleted runner scale set {id} the unit left");
                true
            }
            Err(e) => {
                log::warn!("deleting runner scale set {id}: {e}");
                false
            }
        },
        Err(e) => {
            log::warn!("runner scale set {id}: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set of unit `u/0` on `path` (an org or a repository on github.com).
    fn set(id: u64, path: &str) -> RetiredSet {
        let url = format!("https://github.com/{path}");
        RetiredSet {
            id,
            path: path.into(),
            identity: format!("{url}|default|u-0"),
            url,
        }
    }

    #[test]
    fn the_file_keeps_the_sets_across_a_restart_until_served_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("retired.json");
        let set = set(7, "acme/widgets");
        let retired = Retired {
            file: file.clone(),
            sets: vec![set.clone()],
            services: HashMap::new(),
            pauses: HashMap::new(),
        };
        retired.save();
        assert_eq!(Retired::load(file.clone()).sets, std::slice::from_ref(&set));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut back = Retired::load(file.clone());
        back.take_back("https://github.com/acme/widgets|default|other-0");
        assert_eq!(Retired::load(file.clone()).sets.len(), 1, "another set");
        back.take_back(&set.identity);
        assert!(
            Retired::load(file).sets.is_empty(),
            "served again, not deleted"
        );
    }

    #[test]
    fn a_set_it_cannot_reach_is_kept_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("retired.json");
        let set = set(9, "acme");
        std::fs::write(&file, serde_json::to_vec(&[&set]).unwrap()).unwrap();
        let mut retired = Retired::load(file.clone());
        retired.delete_idle(None, || None);
        assert_eq!(retired.sets, std::slice::from_ref(&set));
        assert_eq!(Retired::load(file.clone()).sets, [set]);
        // The set the listener serves now is never deleted: it is taken back.
        retired.delete_idle(Some(9), || panic!("no connection needed"));
        assert!(Retired::load(file).sets.is_empty());
    }
}
