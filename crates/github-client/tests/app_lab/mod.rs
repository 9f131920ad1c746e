//! A simulator with org `acme` and one GitHub App installed on it, for the tests of
//! the client on an App credential. The App's key pair is generated per run; the
//! simulator's own token is one these tests never hand a client.

use std::path::PathBuf;

use ghr_types::proxy::ProxyConfig;
use ghr_types::Secret;
use github_client::{AppKey, Credential, GithubClient};
use github_sim::{SimConfig, SimServer};
use serde_json::{json, Value};
use test_support::app_key::AppKeyPair;

pub struct AppSim {
    pub server: SimServer,
    pub key: AppKeyPair,
}

impl AppSim {
    /// App `app_id` (`client_id`) installed on `acme` as `installation`.
    pub fn start(pat: &str, app_id: u64, client_id: &str, installation: u64) -> AppSim {
        let mut config = SimConfig::new(pat);
        config.orgs = vec!["acme".into()];
        let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let sim = AppSim {
            server,
            key: AppKeyPair::generate(),
        };
        let app = json!({"app_id": app_id, "client_id": client_id,
            "public_key_pem": sim.key.public_pem,
            "installations": [{"id": installation, "account": "acme"}]});
        assert_eq!(sim.admin("POST", "/_sim/apps", app)["tokens_issued"], 0);
        sim
    }

    /// An admin call; its answer, or null when it has no JSON body.
    pub fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        ureq::request(method, &format!("{}{path}", self.server.url))
            .send_json(body)
            .unwrap()
            .into_json()
            .unwrap_or(Value::Null)
    }

    /// Installation tokens the App was given so far.
    pub fn tokens_issued(&self) -> u64 {
        let apps = self.admin("GET", "/_sim/apps", Value::Null);
        apps[0]["tokens_issued"].as_u64().unwrap()
    }

    pub fn key(&self, issuer: &str, installation_id: u64, pem: &str) -> AppKey {
        AppKey {
            issuer: issuer.into(),
            installation_id,
            private_key: Secret::new(pem),
        }
    }

    /// A client at `base` holding only `key`, its tokens kept in `cache` when given.
    pub fn client(&self, base: &str, key: AppKey, cache: Option<PathBuf>) -> GithubClient {
        let credential = Credential::App { key, cache };
        let options = crate::recorder::quick();
        GithubClient::with_credential(base, credential, &ProxyConfig::default(), options).unwrap()
    }
}
