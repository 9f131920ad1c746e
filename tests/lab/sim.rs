//! The GitHub simulator as the lab runs it: in a network namespace of its own, so that
//! runners reach it through the host as they would reach GitHub; and its admin routes.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use test_support::app_key::AppKeyPair;

use super::{Process, PAT};
use crate::firewall_support::{free_octet, poll, run, Netns};

/// The simulator, serving from its own namespace.
pub struct Sim {
    process: Process,
    _netns: Netns,
    pub url: String,
    agent: ureq::Agent,
}

impl Sim {
    pub fn start(orgs: &[&str], repos: &[&str]) -> Sim {
        run(&["ip", "route", "replace", "unreachable", "10.216.0.0/13"]).unwrap();
        let octet = free_octet(std::process::id() % 200 + 7);
        let host = Ipv4Addr::new(10, 217, octet, 1);
        let inside = Ipv4Addr::new(10, 217, octet, 2);
        let netns = Netns::create(
            &format!("ghrsim{octet}"),
            &format!("ghrsim{octet}"),
            host,
            inside,
        )
        .unwrap();
        let sim_binary = test_support::bins::path("github-sim");
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &netns.name,
            sim_binary.as_os_str().to_str().expect("utf-8 path"),
            "--listen",
            &format!("{inside}:0"),
        ])
        .args([
            "--token",
            PAT,
            "--offline-after",
            "15",
            "--lost-job-after",
            "20",
        ]);
        for o in orgs {
            cmd.args(["--org", o]);
        }
        for r in repos {
            cmd.args(["--repo", r]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let process = Process(child);
        assert!(line.starts_with("http://"), "sim printed {line:?}");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        Sim {
            process,
            _netns: netns,
            url: line.trim().to_string(),
            agent,
        }
    }

    pub fn get(&self, path: &str) -> Value {
        self.agent
            .get(&format!("{}{path}", self.url))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .agent
            .post(&format!("{}{path}", self.url))
            .send_json(body);
        let text = response.unwrap().into_string().unwrap();
        // Some admin calls answer 204 with no body.
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// An admin call that answers 204 (e.g. removing a runner group).
    pub fn delete(&self, path: &str) {
        self.agent
            .delete(&format!("{}{path}", self.url))
            .call()
            .unwrap();
    }

    /// Registers a GitHub App installed on `acme` as `installation`, with a key pair
    /// made for this run: the private key is the charm's to use.
    pub fn add_app(&self, app_id: u64, client_id: &str, installation: u64) -> AppKeyPair {
        let key = AppKeyPair::generate();
        self.post(
            "/_sim/apps",
            json!({"app_id": app_id, "client_id": client_id, "public_key_pem": key.public_pem,
                   "installations": [{"id": installation, "account": "acme"}]}),
        );
        key
    }

    /// Every App, with `tokens_issued` (installation tokens it was given so far).
    pub fn apps(&self) -> Vec<Value> {
        self.get("/_sim/apps").as_array().unwrap().clone()
    }

    /// Installation tokens App `app_id` was given so far.
    pub fn tokens_issued(&self, app_id: u64) -> u64 {
        let apps = self.apps();
        let app = apps.iter().find(|a| a["app_id"] == json!(app_id)).unwrap();
        app["tokens_issued"].as_u64().unwrap()
    }

    /// Requests the simulator counted on `route` (e.g. `GET /orgs/:org/actions/runners`)
    /// since its counters were last reset.
    pub fn route_count(&self, route: &str) -> u64 {
        self.get("/_sim/counters")[route].as_u64().unwrap_or(0)
    }

    /// Installation tokens' lifetime and the JWT clock offset (negative: the
    /// simulator's clock behind the charm's); `None` keeps a setting as it is.
    pub fn app_settings(
        &self,
        token_lifetime_secs: Option<u64>,
        clock_offset_secs: Option<i64>,
    ) -> Value {
        self.post(
            "/_sim/apps/settings",
            json!({"token_lifetime_secs": token_lifetime_secs, "clock_offset_secs": clock_offset_secs}),
        )
    }

    /// Runners registered under names starting with `prefix`.
    pub fn runners(&self, prefix: &str) -> Vec<Value> {
        let all = self.get("/_sim/runners");
        all.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"].as_str().unwrap_or("").starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn online_idle(&self, prefix: &str) -> usize {
        self.runners(prefix)
            .iter()
            .filter(|r| r["online"] == json!(true) && r["busy"] == json!(false))
            .count()
    }

    pub fn queue_job(&self, repository: &str, labels: &[&str], steps: &[&str]) -> u64 {
        let job = self.post(
            "/_sim/jobs",
            json!({"repository": repository, "labels": labels, "event_name": "push",
                   "event": {"ref": "refs/heads/main", "after": "0123456789abcdef0123456789abcdef01234567"},
                   "steps": steps}),
        );
        job["id"].as_u64().unwrap()
    }

    pub fn job(&self, id: u64) -> Value {
        self.get(&format!("/_sim/jobs/{id}"))
    }

    pub fn wait_job(&self, id: u64, state: &str, timeout: Duration) -> Value {
        poll(timeout, &format!("job {id} {state}"), || {
            let job = self.job(id);
            (job["state"] == json!(state)).then_some(job)
        })
    }
}

/// Every job of `done` (the simulator's job records) succeeded, each on a runner of its
/// own (ephemeral: one job per runner) named after one of `prefixes`.
pub fn each_once(done: &[Value], prefixes: &[&str]) {
    let mut runners: Vec<&str> = done
        .iter()
        .map(|j| {
            assert_eq!(j["conclusion"], "success", "{j}");
            j["runner_name"].as_str().unwrap()
        })
        .collect();
    for name in &runners {
        assert!(prefixes.iter().any(|p| name.starts_with(p)), "{name}");
    }
    runners.sort();
    runners.dedup();
    assert_eq!(
        runners.len(),
        done.len(),
        "a runner took two jobs: {done:#?}"
    );
}
