//! Property-based fuzzing of every parser of outside input: charm config, denylist,
//! sizes, GitHub's `Link` and rate-limit headers, LXD's answer envelope, and the policy
//! service's documents and request bodies over HTTP. (What serde derives alone is not
//! fuzzed here: it cannot fail in a way of ours; the planner's properties live in
//! crates/reconcile.) Bounded case counts keep the whole file
//! to seconds; a crash found here becomes a named regression test at the bottom.

mod policy_support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use github_client::client::next_link;
use github_client::retry::{
    decide, parse_rate_limit, rate_limit_hit, Attempt, RawResponse, RetryPolicy,
};
use github_runner::config::{parse_denylist, ByteSize, CharmConfig, GithubPath, GithubUrl};
use lxd_client::request::{parse_answer, parse_raw, Answer};
use policy_service::document::PolicyDocument;
use proptest::prelude::*;
use serde_json::{json, Value};

const TOKEN: &str = "ghp_fuzzTokenThatMustNeverShow0123456789";

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings that look almost like what a parser wants: digits, units, separators,
/// slashes, dots, whitespace, control and non-ASCII characters.
fn near_miss() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-zA-Z./:,_ \\-]{0,40}",
        "[0-9]{1,25}(B|kB|KB|MB|GB|TB|PB|EB|KiB|MiB|GiB|TiB|PiB|EiB|XB|)",
        "([0-9]{1,4}\\.){0,5}[0-9]{0,4}(/[0-9]{0,3})?(,[ 0-9./]{0,20})*",
        "(https?|ftp|gopher)://[a-z0-9.:@\\[\\]/%?#]{0,30}",
        "\\PC{0,60}",
        ".{0,300}",
    ]
}

const OPTIONS: &[&str] = &[
    "path",
    "group",
    "token",
    "virtual-machines",
    "vm-cpu",
    "vm-memory",
    "vm-disk",
    "reconcile-interval",
    "denylist",
    "dockerhub-mirror",
    "experimental-use-aproxy",
    "test-mode",
    "labels",
    "github-url",
    "runner-instance-type",
    "runner-image",
];

/// A config-get answer: every option present, mostly of the right JSON type (so the
/// value checks run), sometimes anything at all.
fn any_config() -> impl Strategy<Value = Value> {
    let string = prop_oneof![
        4 => near_miss().prop_map(Value::from),
        // The token pasted into the wrong option must not show either.
        1 => Just(json!(TOKEN)),
    ];
    let values = (
        prop::collection::vec(string, OPTIONS.len()),
        prop::collection::vec(-5i64..2000, 3),
        any::<bool>(),
        prop::option::weighted(0.1, (0..OPTIONS.len(), any_json())),
    );
    values.prop_map(|(strings, ints, aproxy, junk)| {
        let mut map = serde_json::Map::new();
        for (option, value) in OPTIONS.iter().zip(strings) {
            map.insert(option.to_string(), value);
        }
        for (option, n) in ["virtual-machines", "vm-cpu", "reconcile-interval"]
            .iter()
            .zip(ints)
        {
            map.insert(option.to_string(), json!(n));
        }
        map.insert("experimental-use-aproxy".into(), json!(aproxy));
        map.insert("token".into(), json!(TOKEN));
        if let Some((i, v)) = junk {
            map.insert(OPTIONS[i].to_string(), v);
        }
        Value::Object(map)
    })
}

/// 512 cases per property in `make test`; `PROPTEST_CASES` asks for a longer hunt.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_never_panics_and_never_shows_the_token(raw in any_config()) {
        // The junk value may replace the token itself; then TOKEN elsewhere is just text
        // to the charm, which has no secret to hide.
        let secret = raw["token"] == json!(TOKEN);
        match CharmConfig::from_json(&raw) {
            Ok(c) => {
                prop_assert!(c.virtual_machines <= 500);
                prop_assert!(c.vm_cpu >= 1);
                prop_assert!(c.vm_memory.0 >= 64 << 20 && c.vm_disk.0 >= 64 << 20);
                prop_assert!((1..=1440).contains(&c.reconcile_interval_minutes));
                let shown = format!("{:?}", c);
                prop_assert!(!secret || !shown.contains(TOKEN));
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!secret || !message.contains(TOKEN), "{}", message);
                prop_assert!(!message.is_empty());
            }
        }
    }

    #[test]
    fn app_options_never_panic_and_never_show_a_pasted_secret(
        strings in prop::collection::vec(prop_oneof![
            3 => near_miss().prop_map(Value::from),
            1 => Just(json!(TOKEN)),
            1 => Just(json!(format!("-----BEGIN RSA PRIVATE KEY-----\n{TOKEN}\n-----END RSA PRIVATE KEY-----"))),
        ], 3),
        ids in prop::collection::vec(-5i64..100, 2),
    ) {
        let raw = json!({"path": "acme", "token": strings[0], "github-app-client-id": strings[1],
            "github-app-private-key": strings[2], "github-app-id": ids[0], "github-app-installation-id": ids[1]});
        // With no secret source, any URI fails to read: every path ends in a message.
        let shown = CharmConfig::from_json(&raw).map_or_else(|e| e.to_string(), |c| format!("{:?}", c));
        prop_assert!(!shown.is_empty() && !shown.contains(TOKEN), "{}", shown);
    }

    #[test]
    fn config_from_any_json_never_panics(raw in any_json()) {
        let _ = CharmConfig::from_json(&raw);
    }

    #[test]
    fn denylist_parses_or_names_the_item(raw in near_miss()) {
        match parse_denylist(&raw) {
            Ok(nets) => {
                for net in nets {
                    prop_assert!(net.prefix_len() <= 32);
                    prop_assert_eq!(net, net.trunc());
                }
            }
            Err(reason) => prop_assert!(reason.to_string().contains("IPv4 CIDR"), "{}", reason),
        }
    }

    #[test]
    fn byte_sizes_parse_exactly_or_fail(raw in near_miss()) {
        if let Ok(size) = ByteSize::parse(&raw) {
            prop_assert!(size.0 > 0);
            prop_assert_eq!(ByteSize::parse(&size.to_lxd()), Ok(size));
        }
    }

    #[test]
    fn byte_sizes_round_trip(n in 1u64..(1 << 34), unit in 0usize..7) {
        let (suffix, factor) = [("B", 1u64), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
            ("TiB", 1 << 40), ("kB", 1000), ("GB", 1_000_000_000)][unit];
        let want = n.checked_mul(factor);
        let got = ByteSize::parse(&format!("{n}{suffix}")).ok().map(|s| s.0);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn paths_and_urls_never_panic(raw in near_miss(), group in near_miss()) {
        if let Ok(p) = GithubPath::parse(&raw, &group) {
            // A name may hold dots (".github"), but no segment may walk the URL path.
            let prefix = p.api_prefix();
            prop_assert!(prefix.split('/').all(|seg| seg != "." && seg != ".."), "{}", prefix);
        }
        if let Ok(u) = GithubUrl::parse(&raw) {
            prop_assert!(u.api_base().starts_with("http"));
        }
    }

    #[test]
    fn link_headers_never_panic(header in "(<[ -~]{0,40}>; ?rel=\"?(next|last|prev)\"?,? ?){0,4}|.{0,80}") {
        let _ = next_link(&header);
    }

    #[test]
    fn rate_limit_headers_never_panic(
        status in prop_oneof![Just(403u16), Just(429), Just(500), Just(200), any::<u16>()],
        headers in prop::collection::btree_map(
            prop_oneof![Just("x-ratelimit-remaining"), Just("x-ratelimit-reset"),
                Just("x-ratelimit-limit"), Just("x-ratelimit-used"), Just("retry-after"),
                Just("x-ratelimit-resource")],
            prop_oneof!["[0-9]{0,22}", "-?[0-9]{1,20}", ".{0,12}"], 0..6),
        body in ".{0,80}",
        attempt in 1u32..10,
        elapsed in 0u64..100_000,
        now in -9_000_000_000i64..9_000_000_000,
    ) {
        let response = RawResponse {
            status,
            headers: headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            body,
        };
        let now = Utc.timestamp_opt(now, 0).single().unwrap();
        let _ = rate_limit_hit(&response, now);
        let _ = parse_rate_limit(&response);
        let _ = response.message();
        let _ = decide(&RetryPolicy::default(), attempt, Duration::from_secs(elapsed),
            &Attempt::Response(response), now, 0.5);
    }

    /// LXD's envelope: an HTTP error is never a success, whatever the body says; a
    /// `sync` answer under 400 is its metadata; a raw success is the body untouched.
    #[test]
    fn lxd_answers_are_judged_by_status_and_envelope(
        status in prop_oneof![100u16..400, 400u16..600, any::<u16>()],
        body in any_json(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let failed = status >= 400;
        prop_assert!(!failed || parse_answer(status, &bytes).is_err());
        prop_assert_eq!(parse_raw(status, bytes.clone()).ok(), (!failed).then_some(bytes));
        // What LXD's bytes say (serde_json reads some floats back a last digit off).
        let sent: Value = serde_json::from_str(&body.to_string()).unwrap();
        for kind in ["sync", "async", "error", ""] {
            let envelope = json!({"type": kind, "status_code": 200, "error_code": status,
                "error": "boom", "metadata": body.clone()});
            let answer = parse_answer(status, envelope.to_string().as_bytes());
            match (kind, answer) {
                (_, Ok(_)) if failed => prop_assert!(false, "HTTP {} accepted", status),
                ("sync", Ok(answer)) => prop_assert_eq!(answer, Answer::Sync(sent.clone())),
                ("sync", Err(e)) => prop_assert!(failed, "{}", e),
                ("async", Ok(answer)) => prop_assert!(matches!(answer, Answer::Async(_))),
                (_, Ok(answer)) => prop_assert!(false, "{:?} envelope gave {:?}", kind, answer),
                (_, Err(_)) => {}
            }
        }
    }

    #[test]
    fn policy_documents_never_panic(doc in any_json(), text in ".{0,100}") {
        if let Ok(d) = PolicyDocument::from_value(doc) {
            let _ = d.resolve();
        }
        let _ = PolicyDocument::parse(&text);
    }
}

/// Request bodies the policy service gets from runners and the charm.
fn any_body() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,8}/[a-z]{0,8}".prop_map(Value::from),
        "[0-9a-f]{40}".prop_map(Value::from),
        ".{0,30}".prop_map(Value::from),
    ];
    let names = prop_oneof![
        Just("repository_name"),
        Just("source_repository_name"),
        Just("target_branch_name"),
        Just("source_branch_name"),
        Just("commit_sha"),
        Just("workflow_dispatch"),
        Just("pull_request"),
    ];
    prop_oneof![
        prop::collection::btree_map(names, field, 0..6)
            .prop_map(|m| json!(m.into_iter().collect::<BTreeMap<_, _>>()).to_string()),
        any_json().prop_map(|v| v.to_string()),
        ".{0,100}",
    ]
}

/// The real policy service on loopback, fed arbitrary bodies on every POST route: it
/// answers 2xx or 4xx, never a 5xx or a dropped connection.
#[test]
fn policy_request_bodies_never_break_the_service() {
    let service = policy_support::Service::start(policy_support::github(), None);
    let routes = [
        "/check-run",
        "/pull_request/check-run",
        "/workflow_dispatch/check-run",
        "/push/check-run",
        "/schedule/check-run",
        "/default/check-run",
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (any_body(), 0..routes.len() + 1, any::<bool>());
    runner
        .run(&strategy, |(body, route, as_json)| {
            let content_type = if as_json {
                "application/json"
            } else {
                "text/plain"
            };
            let reply = if route == routes.len() {
                // The charm's own route: replacing the policy document.
                policy_support::request(
                    service.charm_url(),
                    "POST",
                    "/policy",
                    Some(policy_support::CHARM_TOKEN),
                    Some((content_type, &body)),
                )
            } else {
                let token = service.one_time_token();
                policy_support::request(
                    service.url(),
                    "POST",
                    routes[route],
                    Some(&token),
                    Some((content_type, &body)),
                )
            };
            prop_assert!(
                reply.status < 500,
                "{} {:?}: {} {}",
                routes.get(route).unwrap_or(&"/policy"),
                body,
                reply.status,
                reply.body
            );
            Ok(())
        })
        .unwrap();
}

// Regression tests for what the fuzzing found.

/// The token pasted into another option was echoed in that option's error.
#[test]
fn a_token_in_another_option_is_not_echoed() {
    for option in [
        "denylist",
        "dockerhub-mirror",
        "runner-instance-type",
        "test-mode",
        "vm-disk",
    ] {
        let err = CharmConfig::from_json(&json!({"path": "acme", "token": TOKEN, option: TOKEN}))
            .unwrap_err()
            .to_string();
        assert!(err.contains(option), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
    }
}

/// A config option of the wrong JSON type used to block with only "invalid type
/// (an option has the wrong type)": now the option is named, and the token is not shown.
#[test]
fn a_wrong_type_names_the_option() {
    let err = CharmConfig::from_json(&json!({"path": "acme", "token": TOKEN,
        "virtual-machines": "3", "experimental-use-aproxy": "maybe"}))
    .unwrap_err()
    .to_string();
    assert!(err.contains("virtual-machines \"<a string>\""), "{err}");
    assert!(err.contains("experimental-use-aproxy"), "{err}");
    let err = CharmConfig::from_json(&json!({"path": "acme", "token": 12345}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("token \"<a number>\""), "{err}");
    assert!(!err.contains("12345"), "{err}");
}
