//! The scale-set client on a GitHub App credential, against the simulator: the
//! registration token behind the Actions service connection comes through an
//! installation token (the simulator's PAT is one the client never has), one token
//! serves the connection and every service call, and when tokens expire mid-run only
//! the renewal the code intends happens: a dead installation token alone costs
//! nothing (service calls carry the admin token), a dead admin token renews the
//! connection on the kept installation token, and both dead cost exactly one new one.

mod app_lab;
mod recorder;

use app_lab::AppSim;
use ghr_types::telemetry::Outcome;
use ghr_types::GithubPath;
use github_client::{ActionsService, ScaleSetSpec};
use recorder::{assert_no_host_query_or_token, github, start, take_calls, Seen};
use serde_json::json;

const PAT: &str = "ghp_appScaleSetNeverGiven0001";
const CLIENT_ID: &str = "Iv23liScaleSetApp001";
const INSTALLATION: u64 = 6101;
const SET: &str = "/_apis/runtime/runnerscalesets/{}";
const REGISTRATION: &str = "/orgs/{}/actions/runners/registration-token";
const EXCHANGE: &str = "/app/installations/{}/access_tokens";
const SERVICE: &str = "/actions/runner-registration";

struct Lab {
    sim: AppSim,
}

impl Lab {
    /// App 2101 installed on `acme`.
    fn start() -> Lab {
        start();
        Lab {
            sim: AppSim::start(PAT, 2101, CLIENT_ID, INSTALLATION),
        }
    }

    fn tokens_issued(&self) -> u64 {
        self.sim.tokens_issued()
    }

    /// A scale-set connection for `acme` through a client holding only the App key.
    fn connect(&self) -> ActionsService {
        let (sim, url) = (&self.sim, &self.sim.server.url);
        let gh = sim.client(
            url,
            sim.key(CLIENT_ID, INSTALLATION, &sim.key.pkcs1_pem),
            None,
        );
        let path = GithubPath::Org {
            org: "acme".into(),
            group: "default".into(),
        };
        ActionsService::connect(&gh, &path, &format!("{url}/acme")).unwrap()
    }
}

fn ok(method: &str, route: &str, status: u16) -> Seen {
    github(method, route, Outcome::Status(status))
}

/// A scale set in the default group, made through `svc`.
fn scale_set(svc: &ActionsService) -> u64 {
    let group = svc.runner_group_id("default").unwrap().unwrap();
    let spec = ScaleSetSpec {
        name: "app-set".into(),
        runner_group_id: group,
        labels: vec![],
    };
    svc.ensure_scale_set(&spec).unwrap().id
}

/// Expires the tokens under each of `routes`, then reads scale set `set` once and
/// returns the requests that took.
fn read_after_expiring(lab: &Lab, svc: &ActionsService, set: u64, routes: &[&str]) -> Vec<Seen> {
    take_calls();
    for route in routes {
        lab.sim.admin("POST", route, json!({}));
    }
    assert_eq!(svc.scale_set_by_id(set).unwrap().unwrap().id, set);
    take_calls()
}

#[test]
fn one_installation_token_serves_the_connection_and_the_service_calls() {
    let lab = Lab::start();
    let svc = lab.connect();
    let set = scale_set(&svc);
    let jit = svc.jit_config(set, "app-runner", "_work").unwrap();
    assert!(!jit.encoded.expose().is_empty());
    let runner = svc.runner_by_name("app-runner").unwrap().unwrap();
    assert_eq!(runner.id, jit.runner_id);
    assert_eq!(lab.tokens_issued(), 1);

    let calls = take_calls();
    assert_no_host_query_or_token(&calls, "ghs_");
    let connection = [
        ok("POST", EXCHANGE, 201),
        ok("POST", REGISTRATION, 201),
        ok("POST", SERVICE, 200),
    ];
    assert_eq!(calls[..3], connection);
    assert_eq!(calls.iter().filter(|c| c.route == EXCHANGE).count(), 1);
}

#[test]
fn expired_tokens_mid_run_cost_only_the_renewals_they_need() {
    let lab = Lab::start();
    let svc = lab.connect();
    let set = scale_set(&svc);
    let read = || ok("GET", SET, 200);

    // The installation token dies: service calls carry the admin token, unaffected.
    let calls = read_after_expiring(&lab, &svc, set, &["/_sim/apps/expire-tokens"]);
    assert_eq!(calls, [read()]);
    assert_eq!(lab.tokens_issued(), 1);

    // Both die: the 401 renews the connection, whose registration token costs one new
    // installation token after the kept one is refused.
    let both = ["/_sim/scalesets/expire-tokens", "/_sim/apps/expire-tokens"];
    let calls = read_after_expiring(&lab, &svc, set, &both);
    let renewal = [
        ok("GET", SET, 401),
        ok("POST", REGISTRATION, 401),
        ok("POST", EXCHANGE, 201),
        ok("POST", REGISTRATION, 201),
        ok("POST", SERVICE, 200),
        read(),
    ];
    assert_eq!(calls, renewal);
    assert_eq!(lab.tokens_issued(), 2);

    // The admin token alone dies: renewed on the kept installation token.
    let calls = read_after_expiring(&lab, &svc, set, &["/_sim/scalesets/expire-tokens"]);
    let renewal = [
        ok("GET", SET, 401),
        ok("POST", REGISTRATION, 201),
        ok("POST", SERVICE, 200),
        read(),
    ];
    assert_eq!(calls, renewal);
    assert_eq!(lab.tokens_issued(), 2);
}
