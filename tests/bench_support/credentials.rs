//! What a GitHub App costs next to a personal access token. In process, against the
//! simulator on loopback: a first call that has to trade a JWT for an installation
//! token, the same call on a token the cache file already holds, and the key's parse
//! and signature alone. On the test daemon: a settled pool on a PAT, then one on an App,
//! their steady reconciles' GitHub requests and the exchanges among them.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ghr_types::proxy::ProxyConfig;
use ghr_types::{GithubPath, Secret};
use github_client::{AppKey, ClientOptions, Credential, GithubClient};
use github_sim::{SimConfig, SimServer};
use serde_json::{json, Value};
use test_support::app_key::AppKeyPair;

use super::median;
use crate::firewall_support::{poll, Lxd};
use crate::lab::{permissive_policy, Policy, Sim, Unit};
use crate::{github_requests, reset_counters, REPO};

const POOL: usize = 2;
const SETTLE: Duration = Duration::from_secs(180);
const APP_ID: u64 = 515151;
const CLIENT_ID: &str = "Iv23liBenchApp0001";
const INSTALLATION: u64 = 88001;
const EXCHANGE: &str = "POST /app/installations/:installation_id/access_tokens";
/// The in-process simulator's token: no client here sends it.
const UNUSED_PAT: &str = "ghp_benchCredentialsUnused0001";

/// `GHR_BENCH_ONLY=credentials`: this section alone, printed, and written to
/// `GHR_BENCH_OUT` when set (never BENCHMARKS.md).
pub fn only(out: &mut String, lxd: &Lxd, quick: bool) {
    section(out, lxd, quick);
    if let Ok(path) = std::env::var("GHR_BENCH_OUT") {
        std::fs::write(path, &*out).unwrap();
    }
    println!("{out}");
}

/// The "GitHub App credentials" section. It starts its own simulator and policy
/// service: the caller's policy service, if any, must be stopped (one port).
pub fn section(out: &mut String, lxd: &Lxd, quick: bool) {
    let (n, k) = if quick { (5, 2) } else { (50, 5) };
    let timings = in_process(n);
    let sim = Sim::start(&["acme"], &[REPO]);
    let _policy = Policy::start(&sim, permissive_policy());
    let key = sim.add_app(APP_ID, CLIENT_ID, INSTALLATION);
    let pat = on_pat(lxd, &sim, k);
    let app = on_app(lxd, &sim, &key.pkcs1_pem, k);
    write_in_process(out, n, &timings);
    write_testbed(out, k, &pat, &app);
}

/// Milliseconds per sample of each kind, samples interleaved.
struct Timings {
    exchange: Vec<f64>,
    cached: Vec<f64>,
    sign: Vec<f64>,
}

fn millis(act: impl FnOnce()) -> f64 {
    let t = Instant::now();
    act();
    t.elapsed().as_secs_f64() * 1000.0
}

fn acme() -> GithubPath {
    GithubPath::Org {
        org: "acme".into(),
        group: "default".into(),
    }
}

/// A client on the App, its tokens kept in `cache`. Building it parses the key and
/// signs once; that is outside every timed call.
fn app_client(url: &str, key: &AppKey, cache: PathBuf) -> GithubClient {
    let credential = Credential::App {
        key: key.clone(),
        cache: Some(cache),
    };
    let options = ClientOptions::default();
    GithubClient::with_credential(url, credential, &ProxyConfig::default(), options).unwrap()
}

fn sim_tokens_issued(server: &SimServer) -> u64 {
    let apps: Value = ureq::get(&format!("{}/_sim/apps", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    apps[0]["tokens_issued"].as_u64().unwrap()
}

/// `n` first calls on an empty cache, `n` on a cached token, `n` parse-and-sign.
fn in_process(n: usize) -> Timings {
    let pair = AppKeyPair::generate();
    let mut config = SimConfig::new(UNUSED_PAT);
    config.orgs = vec!["acme".into()];
    let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let app = json!({"app_id": APP_ID, "client_id": CLIENT_ID,
        "public_key_pem": pair.public_pem,
        "installations": [{"id": INSTALLATION, "account": "acme"}]});
    ureq::post(&format!("{}/_sim/apps", server.url))
        .send_json(app)
        .unwrap();
    let key = AppKey {
        issuer: CLIENT_ID.into(),
        installation_id: INSTALLATION,
        private_key: Secret::new(&pair.pkcs1_pem),
    };
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared-token.json");
    // One exchange fills the cache file every "cached" client reads.
    app_client(&server.url, &key, shared.clone())
        .list_runners(&acme())
        .unwrap();
    let issued = sim_tokens_issued(&server);
    let mut t = Timings {
        exchange: Vec::new(),
        cached: Vec::new(),
        sign: Vec::new(),
    };
    for i in 0..n {
        let empty = app_client(
            &server.url,
            &key,
            dir.path().join(format!("empty-{i}.json")),
        );
        t.exchange
            .push(millis(|| drop(empty.list_runners(&acme()).unwrap())));
        let cached = app_client(&server.url, &key, shared.clone());
        t.cached
            .push(millis(|| drop(cached.list_runners(&acme()).unwrap())));
        t.sign.push(millis(|| key.validate().unwrap()));
    }
    // What was timed is what was meant: one exchange per empty cache, none otherwise.
    assert_eq!(sim_tokens_issued(&server), issued + n as u64);
    t
}

/// What one unit's pool cost: settling it, then two rounds of steady reconciles.
struct Pool {
    settle: Cost,
    rounds: [Cost; 2],
}

/// GitHub requests (the bench's usual count, the exchange route included), the
/// exchange route's own count, and installation tokens the App was issued.
#[derive(Clone, Copy)]
struct Cost {
    requests: u64,
    exchanges: u64,
    issued: u64,
}

/// What `act` cost at the simulator.
fn cost(sim: &Sim, act: impl FnOnce()) -> Cost {
    let issued = sim.tokens_issued(APP_ID);
    reset_counters(sim);
    act();
    Cost {
        requests: github_requests(sim),
        exchanges: sim.route_count(EXCHANGE),
        issued: sim.tokens_issued(APP_ID) - issued,
    }
}

/// From `config-changed` to a pool of 2 at rest (both online and idle, no other
/// instance) with one reconcile done since; then two rounds of `k` reconciles.
fn measure(sim: &Sim, unit: &Unit, k: usize) -> Pool {
    let settle = cost(sim, || {
        unit.run("hooks/config-changed");
        unit.wait_pool(sim, POOL, SETTLE);
        poll(SETTLE, "the pool at rest", || {
            (unit.instances().len() == POOL).then_some(())
        });
        unit.run("reconcile-runners");
    });
    let round = || {
        cost(sim, || {
            for _ in 0..k {
                unit.run("reconcile-runners");
            }
        })
    };
    Pool {
        settle,
        rounds: [round(), round()],
    }
}

fn on_pat(lxd: &Lxd, sim: &Sim, k: usize) -> Pool {
    let unit = Unit::new(
        lxd,
        "ghr-credpat",
        0,
        sim,
        json!({"path": REPO, "virtual-machines": POOL}),
    );
    measure(sim, &unit, k)
}

/// The App's key from a Juju secret, and no token.
fn on_app(lxd: &Lxd, sim: &Sim, pem: &str, k: usize) -> Pool {
    let unit = Unit::new(lxd, "ghr-credapp", 0, sim, json!({}));
    let uri = unit.h.add_secret(&[("private-key", pem)]);
    unit.h.grant_secret(&uri);
    unit.configure(
        sim,
        json!({"path": REPO, "virtual-machines": POOL, "token": "",
               "github-app-client-id": CLIENT_ID, "github-app-installation-id": INSTALLATION,
               "github-app-private-key": uri}),
    );
    measure(sim, &unit, k)
}

/// Median and 95th percentile (nearest rank).
fn spread(v: &[f64]) -> (f64, f64) {
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((sorted.len() as f64 * 0.95).ceil() as usize).max(1) - 1;
    (median(v.to_vec()), sorted[rank])
}

fn write_in_process(out: &mut String, n: usize, t: &Timings) {
    writeln!(out, "## GitHub App credentials\n").unwrap();
    writeln!(
        out,
        "In process, against the simulator on loopback (`github_sim::SimServer`), with an \
         RSA 2048 App key, {n} samples of each, interleaved: the first call (`list_runners` \
         on an org) of a client whose cache file is empty (a JWT signed, traded at \
         `POST /app/installations/{{id}}/access_tokens`, then the call), the same first call \
         of a client whose cache file already holds a valid installation token, and \
         `AppKey::validate()` alone (the key parsed and one JWT signed, which every client \
         does once when it is built, outside the two calls' times).\n"
    )
    .unwrap();
    writeln!(out, "| operation | median | p95 |\n|---|---|---|").unwrap();
    let rows = [
        (
            "first call, empty cache: JWT + exchange + call",
            &t.exchange,
        ),
        (
            "first call, token in the cache file: the call alone",
            &t.cached,
        ),
        (
            "key parsed and one JWT signed (`AppKey::validate`)",
            &t.sign,
        ),
    ];
    for (what, v) in rows {
        let (p50, p95) = spread(v);
        writeln!(out, "| {what} | {p50:.2} ms | {p95:.2} ms |").unwrap();
    }
    let added = median(t.exchange.clone()) - median(t.cached.clone());
    writeln!(
        out,
        "\nAn exchange adds {added:.2} ms to the first call at the median; the simulator \
         issued {n} tokens for the {n} empty caches and none for the cached token.\n"
    )
    .unwrap();
}

fn write_testbed(out: &mut String, k: usize, pat: &Pool, app: &Pool) {
    writeln!(
        out,
        "On the test daemon: a static pool of {POOL} on a personal access token, removed, then \
         one on the App (its key from a Juju secret, no token); each settled (`config-changed` \
         until both runners are online and idle, then one reconcile), then two rounds of {k} \
         `reconcile-runners`. GitHub requests as under \"GitHub requests\" (API routes, \
         `GET /rate_limit` aside, the exchange included); exchanges: the simulator's count of \
         `{EXCHANGE}`, and tokens the App was issued.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| credential, round of {k} reconciles | GitHub requests | exchanges | tokens issued |\n\
         |---|---|---|---|"
    )
    .unwrap();
    for (who, pool) in [("PAT", pat), ("App", app)] {
        for (i, c) in pool.rounds.iter().enumerate() {
            let round = i + 1;
            writeln!(
                out,
                "| {who}, round {round} | {} | {} | {} |",
                c.requests, c.exchanges, c.issued
            )
            .unwrap();
        }
    }
    let same = pat
        .rounds
        .iter()
        .zip(&app.rounds)
        .all(|(p, a)| p.requests == a.requests);
    let (s_pat, s_app) = (pat.settle, app.settle);
    writeln!(
        out,
        "\nSettling the pool took {} GitHub requests on the PAT and {} on the App; exchanges \
         among the App's: {} (tokens issued: {}).\n\n\
         The App's rounds cost the same GitHub requests as the PAT's: {}. Exchanges during \
         the App's rounds: {} (tokens issued: {}).\n",
        s_pat.requests,
        s_app.requests,
        s_app.exchanges,
        s_app.issued,
        if same { "yes" } else { "NO" },
        app.rounds.iter().map(|c| c.exchanges).sum::<u64>(),
        app.rounds.iter().map(|c| c.issued).sum::<u64>(),
    )
    .unwrap();
}
