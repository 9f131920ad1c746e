//! The client and the simulator against GitHub's own OpenAPI description: Prism
//! (`prism proxy --errors`) sits between them and reports any request or response that
//! breaks the description. Set up by scripts/prism-setup.sh; skipped when Prism is
//! missing unless CI=true. Statuses the description leaves out (401, 403, and 404 on
//! a runner or a path) are asserted directly against the simulator.

use std::time::{Duration, Instant};

use base64::Engine;
use github_client::{DeleteOutcome, GithubClient, GithubError, JitRequest, RunnerId, RunnerName};
use github_runner::config::{GithubPath, Token};
use github_runner::proxy::ProxyConfig;
use github_sim::{SimConfig, SimServer};
use serde_json::{json, Value};

mod prism;

const PAT: &str = "ghp_contractTestToken0000001";

fn sim() -> SimServer {
    let mut config = SimConfig::new(PAT);
    config.orgs = vec!["acme".into()];
    config.repos = vec!["acme/web".into()];
    SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn admin(server: &SimServer, path: &str, body: Value) -> Value {
    ureq::post(&format!("{}{path}", server.url))
        .send_json(body)
        .unwrap()
        .into_json()
        .unwrap_or(Value::Null)
}

fn client(base: &str, token: &str) -> GithubClient {
    GithubClient::new(base, Token::new(token), &ProxyConfig::default()).unwrap()
}

fn jit(name: &str, labels: &[&str]) -> JitRequest {
    JitRequest {
        name: RunnerName::new(name),
        runner_group_id: 1,
        labels: labels.iter().map(|l| l.to_string()).collect(),
        work_folder: "_work".into(),
    }
}

/// Makes a JIT runner busy by speaking the runner app's protocol: session, then a poll
/// that takes the queued job.
fn make_busy(server: &SimServer, encoded: &str, label: &str) -> (String, u64) {
    let config: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let credential = config["credential"].as_str().unwrap().to_string();
    let auth = format!("Bearer {credential}");
    ureq::post(&format!("{}/_sim/runner/session", server.url))
        .set("Authorization", &auth)
        .call()
        .unwrap();
    admin(
        server,
        "/_sim/jobs",
        json!({"repository": "acme/web", "labels": [label], "event_name": "push", "event": {}, "steps": []}),
    );
    let job: Value = ureq::get(&format!("{}/_sim/runner/poll?wait=5", server.url))
        .set("Authorization", &auth)
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    (auth, job["job_id"].as_u64().unwrap())
}

#[test]
fn client_repertoire_passes_prism_without_violations() {
    let Some((bin, spec)) = prism::installed() else {
        eprintln!("skipping: Prism not installed (run scripts/prism-setup.sh)");
        return;
    };
    let server = sim();
    let prism = prism::Prism::start(&bin, &spec, &server.url);
    let gh = client(&prism.url, PAT);
    let org = GithubPath::Org {
        org: "acme".into(),
        group: "default".into(),
    };
    let repo = GithubPath::Repo {
        owner: "acme".into(),
        repo: "web".into(),
    };

    for path in [&org, &repo] {
        let token = gh.registration_token(path).unwrap();
        assert!(token.expires_at > chrono::Utc::now() + chrono::Duration::minutes(55));
        gh.remove_token(path).unwrap();
        let downloads = gh.runner_downloads(path).unwrap();
        assert_eq!(downloads.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join(&downloads[0].filename);
        gh.download(
            &downloads[0].download_url,
            &dest,
            downloads[0].sha256_checksum.as_deref().unwrap(),
        )
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), server.sim.tarball.bytes);
    }

    // Pagination over more than 100 runners, following Link through Prism.
    for i in 0..130 {
        let config = gh
            .generate_jitconfig(&org, &jit(&format!("org-runner-{i:03}"), &["bulk"]))
            .unwrap();
        assert_eq!(config.runner.name.as_str(), format!("org-runner-{i:03}"));
    }
    for i in 0..3 {
        gh.generate_jitconfig(&repo, &jit(&format!("repo-runner-{i}"), &["r"]))
            .unwrap();
    }
    let before = gh.request_count();
    let runners = gh.list_runners(&org).unwrap();
    assert_eq!(runners.len(), 130);
    assert_eq!(gh.request_count() - before, 2, "two pages of 100");
    let mut names: Vec<_> = runners
        .iter()
        .map(|r| r.name.as_str().to_string())
        .collect();
    names.dedup();
    assert_eq!(names.len(), 130);
    assert_eq!(gh.list_runners(&repo).unwrap().len(), 3);

    let first = runners[0].id;
    assert_eq!(gh.get_runner(&org, first).unwrap().unwrap().id, first);
    assert_eq!(
        gh.delete_runner(&org, first).unwrap(),
        DeleteOutcome::Deleted
    );
    let repo_runner = gh.list_runners(&repo).unwrap()[0].id;
    assert_eq!(
        gh.delete_runner(&repo, repo_runner).unwrap(),
        DeleteOutcome::Deleted
    );

    assert_eq!(gh.runner_group_id("acme", "default").unwrap(), Some(1));
    admin(
        &server,
        "/_sim/orgs/acme/runner-groups",
        json!({"name": "big"}),
    );
    let big = gh.runner_group_id("acme", "big").unwrap().unwrap();
    assert!(big > 1);
    assert_eq!(gh.runner_group_id("acme", "missing").unwrap(), None);
    let grouped = JitRequest {
        runner_group_id: big,
        ..jit("in-big", &["x"])
    };
    assert_eq!(
        gh.generate_jitconfig(&org, &grouped)
            .unwrap()
            .runner
            .runner_group_id,
        Some(big)
    );

    // Declared error statuses: 409 on a duplicate JIT name, 422 deleting a busy runner,
    // 404 on generate-jitconfig (older GHES).
    let duplicate = gh
        .generate_jitconfig(&org, &jit("org-runner-001", &["bulk"]))
        .unwrap_err();
    assert!(
        matches!(duplicate, GithubError::Rejected { status: 409, .. }),
        "{duplicate:?}"
    );
    let busy = gh
        .generate_jitconfig(&org, &jit("busy-one", &["busy"]))
        .unwrap();
    let (auth, job) = make_busy(&server, busy.encoded_jit_config.expose(), "busy");
    assert!(gh.get_runner(&org, busy.runner.id).unwrap().unwrap().busy);
    assert_eq!(
        gh.delete_runner(&org, busy.runner.id).unwrap(),
        DeleteOutcome::Busy
    );
    ureq::post(&format!("{}/_sim/runner/jobs/{job}/complete", server.url))
        .set("Authorization", &auth)
        .send_json(json!({"conclusion": "success"}))
        .unwrap();
    admin(
        &server,
        "/_sim/faults",
        json!({"route": "POST /orgs/:org/actions/runners/generate-jitconfig", "count": 1, "status": 404, "message": "Not Found"}),
    );
    assert!(matches!(
        gh.generate_jitconfig(&org, &jit("old-ghes", &["x"])),
        Err(GithubError::JitUnavailable)
    ));

    let rate = gh.last_rate_limit().unwrap();
    assert_eq!(rate.limit, 5000);
    assert!(
        rate.used > 140 && rate.remaining == 5000 - rate.used,
        "{rate:?}"
    );

    let log = prism.log_text();
    let forwarded = log.matches("Forwarding").count();
    // All but the two tarball downloads, which go to the simulator's own address.
    assert!(
        forwarded as u64 >= gh.request_count() - 2,
        "Prism saw {forwarded} of {} calls",
        gh.request_count()
    );
    let violations = prism.violations();
    assert!(
        violations.is_empty(),
        "Prism reported violations:\n{}",
        violations.join("\n")
    );

    // The detector itself: a 401 is not in the description, so Prism must flag it.
    let _ = client(&prism.url, "ghp_wrong").list_runners(&org);
    let deadline = Instant::now() + Duration::from_secs(10);
    while prism.violations().is_empty() {
        assert!(
            Instant::now() < deadline,
            "Prism did not report an undeclared status"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn simulator_statuses_outside_the_description() {
    let server = sim();
    let api = format!("{}/api/v3", server.url);
    let gh = client(&api, PAT);
    let org = GithubPath::Org {
        org: "acme".into(),
        group: "default".into(),
    };

    // 401 for a wrong token, with either scheme.
    let wrong = client(&server.url, "ghp_wrong")
        .list_runners(&org)
        .unwrap_err();
    assert!(matches!(wrong, GithubError::TokenRejected));
    assert_eq!(wrong.to_string(), "token rejected by GitHub");
    for scheme in ["token", "Bearer"] {
        let status = match ureq::get(&format!("{api}/orgs/acme/actions/runners"))
            .set("Authorization", &format!("{scheme} {PAT}"))
            .call()
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(status, 200, "{scheme}");
    }

    // 404: unknown org or repository, unknown runner.
    let missing = GithubPath::Repo {
        owner: "acme".into(),
        repo: "nope".into(),
    };
    let err = gh.registration_token(&missing).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("org or repository not found or token lacks access"),
        "{err}"
    );
    assert!(gh.get_runner(&org, RunnerId(999_999)).unwrap().is_none());
    assert_eq!(
        gh.delete_runner(&org, RunnerId(999_999)).unwrap(),
        DeleteOutcome::NotFound
    );

    // per_page is clamped to 100.
    for i in 0..101 {
        gh.generate_jitconfig(&org, &jit(&format!("r{i}"), &["x"]))
            .unwrap();
    }
    let page: Value = ureq::get(&format!("{api}/orgs/acme/actions/runners?per_page=500"))
        .set("Authorization", &format!("Bearer {PAT}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(page["runners"].as_array().unwrap().len(), 100);
    assert_eq!(page["total_count"], 101);

    // Primary rate limit: a far reset fails at once with its time; a near one is waited for.
    admin(
        &server,
        "/_sim/rate-limit",
        json!({"remaining": 0, "reset_in_secs": 3600}),
    );
    let err = gh.list_runners(&org).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("GitHub rate limit exhausted until 20"),
        "{err}"
    );
    assert_eq!(gh.last_rate_limit().unwrap().remaining, 0);
    admin(
        &server,
        "/_sim/rate-limit",
        json!({"remaining": 0, "reset_in_secs": 1}),
    );
    let started = Instant::now();
    assert_eq!(gh.list_runners(&org).unwrap().len(), 101);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "waited for the reset"
    );
    assert!(gh.last_rate_limit().unwrap().remaining > 4990);

    // Secondary rate limit: retry-after honoured, then success.
    admin(
        &server,
        "/_sim/faults",
        json!({"route": "POST /orgs/:org/actions/runners/registration-token", "count": 1,
        "status": 403, "retry_after": 1, "message": "You have exceeded a secondary rate limit"}),
    );
    gh.registration_token(&org).unwrap();
    let counters: Value = ureq::get(&format!("{}/_sim/counters", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(
        counters["POST /orgs/:org/actions/runners/registration-token"],
        2
    );
}

/// `GET {url}` with `Authorization: Bearer {token}`: status, `x-ratelimit-remaining`
/// and the JSON body.
fn get_as(url: &str, token: &str) -> (u16, Option<u64>, Value) {
    let response = match ureq::get(url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let remaining = response
        .header("x-ratelimit-remaining")
        .and_then(|v| v.parse().ok());
    (
        response.status(),
        remaining,
        response.into_json().unwrap_or(Value::Null),
    )
}

#[test]
fn a_path_github_does_not_serve_answers_like_github() {
    let server = sim();
    for base in [server.url.clone(), format!("{}/api/v3", server.url)] {
        let (_, before, _) = get_as(&format!("{base}/orgs/acme/actions/runners"), PAT);
        let (status, after, body) = get_as(&format!("{base}/orgs/acme/no-such-thing"), PAT);
        assert_eq!(status, 404, "{base}");
        assert_eq!(body["message"], "Not Found", "{body}");
        assert!(
            body["documentation_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://docs.github.com/")),
            "{body}"
        );
        assert_eq!(
            after,
            before.map(|n| n - 1),
            "{base}: counted against the hourly budget"
        );
        let (status, _, body) = get_as(&format!("{base}/orgs/acme/no-such-thing"), "ghp_wrong");
        assert_eq!(
            (status, body["message"].as_str()),
            (401, Some("Bad credentials"))
        );
    }
    let counters: Value = ureq::get(&format!("{}/_sim/counters", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(counters["GET /orgs/acme/no-such-thing"], 4, "{counters}");

    admin(
        &server,
        "/_sim/rate-limit",
        json!({"remaining": 0, "reset_in_secs": 600}),
    );
    let (status, remaining, _) = get_as(&format!("{}/nowhere", server.url), PAT);
    assert_eq!((status, remaining), (403, Some(0)), "an exhausted budget");
}
