//! In-memory [`RunnerHost`] and [`RunnerRegistry`] for testing the engine without I/O.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use super::plan::{ObservedInstance, ObservedRegistration};
use super::ports::*;
use ghr_types::RunnerName;

#[derive(Default)]
pub struct FakeHost {
    pub instances: Mutex<BTreeMap<RunnerName, ObservedInstance>>,
    pub fail_provision: Mutex<HashSet<usize>>,
    pub provisions: Mutex<usize>,
    pub list_error: Mutex<Option<String>>,
    /// Runners whose credentials were revoked, in order.
    pub revoked: Mutex<Vec<RunnerName>>,
}

impl RunnerHost for FakeHost {
    async fn list(&self) -> PortResult<Vec<ObservedInstance>> {
        if let Some(e) = self.list_error.lock().unwrap().clone() {
            return Err(PortError::transient(e));
        }
        Ok(self.instances.lock().unwrap().values().cloned().collect())
    }
    async fn provision(&self, name: &RunnerName, _c: &Credential) -> PortResult<()> {
        let n = {
            let mut p = self.provisions.lock().unwrap();
            *p += 1;
            *p
        };
        self.instances.lock().unwrap().insert(
            name.clone(),
            ObservedInstance {
                name: name.clone(),
                running: true,
                age_secs: 0,
            },
        );
        if self.fail_provision.lock().unwrap().contains(&n) {
            return Err(PortError::transient("image missing"));
        }
        Ok(())
    }
    async fn delete(&self, name: &RunnerName) -> PortResult<()> {
        self.instances.lock().unwrap().remove(name);
        Ok(())
    }
    async fn revoke(&self, name: &RunnerName) {
        self.revoked.lock().unwrap().push(name.clone());
    }
}

#[derive(Default)]
pub struct FakeRegistry {
    pub runners: Mutex<BTreeMap<u64, ObservedRegistration>>,
    pub next_id: Mutex<u64>,
    pub list_error: Mutex<Option<String>>,
    pub calls: Mutex<Vec<String>>,
}

impl FakeRegistry {
    pub fn set_busy(&self, name: &RunnerName, busy: bool) {
        for r in self.runners.lock().unwrap().values_mut() {
            if &r.name == name {
                r.busy = busy;
            }
        }
    }
    pub fn set_all_online(&self) {
        for r in self.runners.lock().unwrap().values_mut() {
            r.online = true;
        }
    }
}

impl RunnerRegistry for FakeRegistry {
    fn list(&self) -> PortResult<Vec<ObservedRegistration>> {
        self.calls.lock().unwrap().push("list".into());
        if let Some(e) = self.list_error.lock().unwrap().clone() {
            return Err(PortError::transient(e));
        }
        Ok(self.runners.lock().unwrap().values().cloned().collect())
    }
    fn register(&self, name: &RunnerName) -> PortResult<Credential> {
        self.calls.lock().unwrap().push("register".into());
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            *n
        };
        self.runners.lock().unwrap().insert(
            id,
            ObservedRegistration {
                id,
                name: name.clone(),
                online: false,
                busy: false,
            },
        );
        Ok(Credential::Jit {
            id,
            encoded: ghr_types::Secret::new("secret-jit"),
        })
    }
    fn delete(&self, id: u64) -> PortResult<Deletion> {
        self.calls.lock().unwrap().push("delete".into());
        let mut runners = self.runners.lock().unwrap();
        match runners.get(&id) {
            None => Ok(Deletion::NotFound),
            Some(r) if r.busy => Ok(Deletion::Busy),
            Some(_) => {
                runners.remove(&id);
                Ok(Deletion::Deleted)
            }
        }
    }
}
