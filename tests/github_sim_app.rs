//! The simulator as a GitHub App authority: `POST /app/installations/{id}/access_tokens`
//! takes an RS256 JWT signed by a registered App's key and answers an installation
//! token that works on the REST routes of its account until it expires. JWTs are
//! signed here with `jsonwebtoken`, and by the `scaleset` crate (its own aws-lc-rs
//! signer: JWTs nobody here wrote); the 201 body is checked against GitHub's OpenAPI
//! description through Prism. Keys are generated per run; none is committed.

mod prism;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use github_sim::jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use github_sim::{SimConfig, SimServer};
use serde_json::{json, Value};
use test_support::app_key::AppKeyPair;

const PAT: &str = "ghp_appTestPersonalToken000001";
const CLIENT_ID: &str = "Iv23liSimAppTest01";
const APP_ID: u64 = 1001;
const INSTALLATION: u64 = 5001;
const ROUTE: &str = "POST /app/installations/:installation_id/access_tokens";

/// A simulator with orgs `acme` and `other`, App 1001 installed on `acme` (5001), and
/// App 1002, with a key of its own, installed on `other` (5002).
struct Lab {
    server: SimServer,
    key: AppKeyPair,
    other_key: AppKeyPair,
}

impl Lab {
    fn start() -> Lab {
        let mut config = SimConfig::new(PAT);
        config.orgs = vec!["acme".into(), "other".into()];
        config.repos = vec!["acme/web".into()];
        let server = SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let lab = Lab {
            server,
            key: AppKeyPair::generate(),
            other_key: AppKeyPair::generate(),
        };
        lab.add_app(APP_ID, CLIENT_ID, &lab.key.public_pem, INSTALLATION, "acme");
        let other = lab.other_key.public_pem.clone();
        lab.add_app(1002, "Iv23liOtherApp0002", &other, 5002, "other");
        lab
    }

    fn add_app(&self, app_id: u64, client_id: &str, pem: &str, installation: u64, account: &str) {
        let body = json!({"app_id": app_id, "client_id": client_id, "public_key_pem": pem,
            "installations": [{"id": installation, "account": account}]});
        let (status, view) = self.call("POST", "/_sim/apps", None, Some(body));
        assert_eq!(status, 201, "{view}");
    }

    /// Any request: status and JSON body (`Null` when there is none).
    fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = ureq::request(method, &format!("{}{path}", self.server.url));
        if let Some(auth) = auth {
            request = request.set("Authorization", auth);
        }
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        let response = match response {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        (status, response.into_json().unwrap_or(Value::Null))
    }

    /// Asks for a token of `installation` with `jwt`.
    fn exchange(&self, installation: u64, jwt: &str) -> (u16, Value) {
        let path = format!("/app/installations/{installation}/access_tokens");
        self.call("POST", &path, Some(&format!("Bearer {jwt}")), None)
    }

    fn tokens_issued(&self, app_id: u64) -> u64 {
        let (_, apps) = self.call("GET", "/_sim/apps", None, None);
        let app = apps
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["app_id"] == app_id);
        app.unwrap()["tokens_issued"].as_u64().unwrap()
    }

    fn counter(&self, route: &str) -> u64 {
        let (_, counters) = self.call("GET", "/_sim/counters", None, None);
        counters[route].as_u64().unwrap_or(0)
    }

    fn settings(&self, body: Value) {
        let (status, _) = self.call("POST", "/_sim/apps/settings", None, Some(body));
        assert_eq!(status, 200);
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An RS256 JWT from `pem` (a private key) with `iss` and times relative to now.
fn jwt(pem: &str, iss: &str, iat: i64, exp: i64) -> String {
    let claims = json!({"iss": iss, "iat": now() + iat, "exp": now() + exp});
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

/// An HS256 JWT keyed with `secret`: no App signs so, whatever the secret.
fn hs256(secret: &[u8]) -> String {
    let claims = json!({"iss": CLIENT_ID, "iat": now() - 60, "exp": now() + 480});
    let key = EncodingKey::from_secret(secret);
    encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

/// An unsigned JWT (`alg: none`).
fn unsigned() -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({"iss": CLIENT_ID, "iat": now() - 60, "exp": now() + 480});
    format!("{}.{}.", part(json!({"alg": "none"})), part(claims))
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[test]
fn a_valid_jwt_gets_a_token_that_expires_after_the_lifetime() {
    let lab = Lab::start();
    let by_client_id = jwt(&lab.key.pkcs1_pem, CLIENT_ID, -60, 540);
    let (status, body) = lab.exchange(INSTALLATION, &by_client_id);
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("ghs_") && token.len() == 40, "{token}");
    assert!(token[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap());
    let lifetime = expires_at.unwrap().timestamp() - now();
    assert!((3595..=3600).contains(&lifetime), "{body}");
    assert_eq!(body["repository_selection"], "all");
    assert_eq!(
        body["permissions"]["organization_self_hosted_runners"],
        "write"
    );

    // The numeric app id is an issuer too, a PKCS#8 key signs alike, and GHES's prefix
    // serves the route.
    let by_app_id = jwt(&lab.key.pkcs8_pem, &APP_ID.to_string(), -60, 540);
    let path = format!("/api/v3/app/installations/{INSTALLATION}/access_tokens");
    let (status, body) = lab.call("POST", &path, Some(&format!("Bearer {by_app_id}")), None);
    assert_eq!(status, 201, "{body}");
    assert_eq!((lab.tokens_issued(APP_ID), lab.tokens_issued(1002)), (2, 0));
    assert_eq!(lab.counter(ROUTE), 2, "counted like any route");

    // Lifetime 2 s: good on the installation's org and repository, then refused.
    lab.settings(json!({"token_lifetime_secs": 2}));
    let (_, body) = lab.exchange(INSTALLATION, &by_client_id);
    let auth = format!("token {}", body["token"].as_str().unwrap());
    for path in [
        "/orgs/acme/actions/runners",
        "/api/v3/repos/acme/web/actions/runners",
    ] {
        let (status, body) = lab.call("GET", path, Some(&auth), None);
        assert_eq!(
            (status, body["total_count"].as_u64()),
            (200, Some(0)),
            "{path}"
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let (status, body) = lab.call("GET", "/orgs/acme/actions/runners", Some(&auth), None);
    assert_eq!((status, message(&body)), (401, "Bad credentials"));
    let docs = body["documentation_url"].as_str().unwrap();
    assert!(docs.starts_with("https://docs.github.com/"), "{body}");
}

#[test]
fn jwts_github_would_refuse_get_its_messages() {
    let lab = Lab::start();
    let key = &lab.key.pkcs1_pem;
    let undecodable = "A JSON web token could not be decoded";
    let expired = "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
    let too_far = "'Expiration time' claim ('exp') is too far in the future";
    let cases = [
        ("another App's key", jwt(&lab.other_key.pkcs1_pem, CLIENT_ID, -60, 540), undecodable),
        ("HS256", hs256(b"a secret"), undecodable),
        // The classic algorithm confusion: HS256 keyed with the App's public key.
        ("HS256 public key", hs256(lab.key.public_pem.as_bytes()), undecodable),
        ("alg none", unsigned(), undecodable),
        ("a PAT", PAT.to_string(), undecodable),
        ("an unknown issuer", jwt(key, "Iv23liNobody", -60, 540), "Integration not found"),
        ("expired", jwt(key, CLIENT_ID, -700, -60), expired),
        ("20 minutes ahead", jwt(key, CLIENT_ID, -60, 1200), too_far),
        ("issued in 5 minutes", jwt(key, CLIENT_ID, 300, 540), "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"),
    ];
    for (what, token, want) in &cases {
        let (status, body) = lab.exchange(INSTALLATION, token);
        assert_eq!((status, message(&body)), (401, *want), "{what}: {body}");
    }
    // Installations: unknown, or another App's, are not found.
    let good = jwt(key, CLIENT_ID, -60, 540);
    for installation in [9999, 5002] {
        let (status, body) = lab.exchange(installation, &good);
        assert_eq!(
            (status, message(&body)),
            (404, "Not Found"),
            "{installation}"
        );
    }

    // GitHub's clock 2 minutes behind: the honest 9-minute JWT now reaches too far.
    let nine_minutes = jwt(key, CLIENT_ID, 0, 540);
    lab.settings(json!({"clock_offset_secs": -120}));
    let (status, body) = lab.exchange(INSTALLATION, &nine_minutes);
    assert_eq!((status, message(&body)), (401, too_far));
    lab.settings(json!({"clock_offset_secs": 0}));
    assert_eq!(lab.exchange(INSTALLATION, &nine_minutes).0, 201);
    assert_eq!(
        lab.tokens_issued(APP_ID),
        1,
        "only the last exchange issued one"
    );
    assert_eq!(lab.counter(ROUTE) as usize, cases.len() + 4);
}

#[test]
fn an_installation_token_acts_only_on_its_account() {
    let lab = Lab::start();
    let (_, body) = lab.exchange(INSTALLATION, &jwt(&lab.key.pkcs1_pem, CLIENT_ID, -60, 540));
    let auth = format!("Bearer {}", body["token"].as_str().unwrap());
    for path in [
        "/orgs/other/actions/runners",
        "/api/v3/orgs/other/actions/runners",
    ] {
        let (status, body) = lab.call("GET", path, Some(&auth), None);
        assert_eq!((status, message(&body)), (404, "Not Found"), "{path}");
    }
    // The registration token the scale-set side starts from, as with a PAT.
    let path = "/orgs/acme/actions/runners/registration-token";
    let (status, body) = lab.call("POST", path, Some(&auth), None);
    assert_eq!(status, 201, "{body}");
    let registration = json!({"url": "http://github.test/acme", "runner_event": "register"});
    let remote = format!("RemoteAuth {}", body["token"].as_str().unwrap());
    let (status, body) = lab.call(
        "POST",
        "/actions/runner-registration",
        Some(&remote),
        Some(registration),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["url"].as_str().unwrap().ends_with("/_services/acme/"),
        "{body}"
    );
    // A PAT is not bound to an account; an expired-by-admin token is refused.
    assert_eq!(
        lab.call(
            "GET",
            "/orgs/other/actions/runners",
            Some(&format!("token {PAT}")),
            None
        )
        .0,
        200
    );
    lab.call("POST", "/_sim/apps/expire-tokens", None, Some(json!({})));
    let (status, body) = lab.call("GET", "/orgs/acme/actions/runners", Some(&auth), None);
    assert_eq!((status, message(&body)), (401, "Bad credentials"));
}

/// The `scaleset` crate's client for `org` with App credentials from `pem`.
fn app_client(lab: &Lab, org: &str, issuer: &str, pem: &str) -> scaleset::Client {
    let credentials = scaleset::Credentials::github_app(issuer, INSTALLATION as i64, pem).unwrap();
    let retry = scaleset::RetryPolicy::default()
        .min_wait(Duration::from_millis(20))
        .max_wait(Duration::from_millis(200));
    scaleset::Client::builder(format!("{}/{org}", lab.server.url), credentials)
        .allow_http(true)
        .retry_policy(retry)
        .build()
        .unwrap()
}

#[test]
fn the_scaleset_crate_signs_jwts_the_simulator_accepts() {
    let lab = Lab::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = app_client(&lab, "acme", CLIENT_ID, &lab.key.pkcs1_pem);
    let group = scaleset::RunnerGroupId::DEFAULT;
    let made = runtime.block_on(async {
        let spec = scaleset::RunnerScaleSetSpec::new("app-made").labels(["app"]);
        let made = client.create_runner_scale_set(&spec).await.unwrap();
        let listed = client.list_runner_scale_sets(group).await.unwrap();
        assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [made.id]);
        made
    });
    assert_eq!(made.name, "app-made");
    assert_eq!(
        lab.tokens_issued(APP_ID),
        1,
        "one exchange, admin token cached after"
    );

    // PKCS#8 and the numeric app id as issuer; the crate's client is accepted alike.
    let by_id = app_client(&lab, "acme", &APP_ID.to_string(), &lab.key.pkcs8_pem);
    let found = runtime.block_on(by_id.get_runner_scale_set_by_name(group, "app-made"));
    assert_eq!(found.unwrap().map(|s| s.id), Some(made.id));

    // The installation covers acme only: for `other` the registration token is 404.
    let outside = app_client(&lab, "other", CLIENT_ID, &lab.key.pkcs1_pem);
    let err = runtime
        .block_on(outside.list_runner_scale_sets(group))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(lab.counter(ROUTE), 3);
}

/// GitHub's description of the one path, with the components it references, for
/// Prism: the shared trimmed spec (scripts/trim-openapi.js) does not carry it.
fn access_token_spec(full: &std::path::Path, out: &std::path::Path) {
    let spec: Value = serde_json::from_slice(&std::fs::read(full).unwrap()).unwrap();
    let path = "/app/installations/{installation_id}/access_tokens";
    let paths = json!({path: spec["paths"][path].clone()});
    let mut components = json!({});
    let mut pending = vec![paths.clone()];
    while let Some(node) = pending.pop() {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let parts: Vec<&str> = reference.split('/').collect();
                    let (kind, name) = (parts[2], parts[3]);
                    if components[kind].get(name).is_none() {
                        let target = spec["components"][kind][name].clone();
                        assert!(!target.is_null(), "dangling {reference}");
                        components[kind][name] = target.clone();
                        pending.push(target);
                    }
                }
                pending.extend(map.into_values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    let mut trimmed = spec;
    trimmed["paths"] = paths;
    trimmed["components"] = components;
    let top = trimmed.as_object_mut().unwrap();
    // Webhooks reference components left out: Prism refuses a dangling reference.
    top.remove("webhooks");
    top.remove("x-webhooks");
    std::fs::write(out, trimmed.to_string()).unwrap();
}

#[test]
fn the_token_response_matches_githubs_description() {
    let Some((bin, shared)) = prism::installed() else {
        eprintln!("skipping: Prism not installed (run scripts/prism-setup.sh)");
        return;
    };
    let full = shared
        .parent()
        .unwrap()
        .join("openapi/generated/api.github.com.json");
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("access-tokens.json");
    access_token_spec(&full, &spec);
    let lab = Lab::start();
    let prism = prism::Prism::start(&bin, &spec, &lab.server.url);
    let url = format!(
        "{}/app/installations/{INSTALLATION}/access_tokens",
        prism.url
    );
    let token = jwt(&lab.key.pkcs1_pem, CLIENT_ID, -60, 540);
    let response = ureq::post(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.header("sl-violations"), None);
    let violations = prism.violations();
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert_eq!(
        lab.tokens_issued(APP_ID),
        1,
        "the request reached the simulator"
    );
}
