//! The bad-input corpus: each case's event, its config overrides or action parameters,
//! and the words its blocked message or action failure must hold.

use serde_json::{json, Value};

/// One bad input: which event sees it, the config overrides or action parameters, and
/// the words the blocked message or action failure must contain.
pub struct Case {
    pub event: &'static str,
    pub config: Value,
    pub params: Option<Value>,
    pub want: &'static [&'static str],
}

fn hook(option: &str, value: Value, want: &'static [&'static str]) -> Case {
    Case {
        event: "hooks/config-changed",
        config: json!({ option: value }),
        params: None,
        want,
    }
}

fn action(name: &'static str, params: Value, want: &'static [&'static str]) -> Case {
    Case {
        event: name,
        config: json!({}),
        params: Some(params),
        want,
    }
}

/// A private key pasted into the option itself: refused, and never shown.
const PASTED_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpastedKeyBodyNeverShown0123456789\n-----END RSA PRIVATE KEY-----\n";

fn several(config: Value, want: &'static [&'static str]) -> Case {
    Case {
        event: "hooks/config-changed",
        config,
        params: None,
        want,
    }
}

fn long(c: char, n: usize) -> String {
    c.to_string().repeat(n)
}

pub fn corpus() -> Vec<Case> {
    vec![
        // path
        hook("path", json!(""), &["Missing", "path"]),
        hook("path", json!("   "), &["Missing", "path"]),
        hook(
            "path",
            json!("a/b/c"),
            &["path", "organisation or owner/repo"],
        ),
        hook("path", json!("/"), &["path"]),
        hook("path", json!("acme/"), &["path"]),
        hook("path", json!("/widgets"), &["path"]),
        hook("path", json!("ac me"), &["path"]),
        hook("path", json!("acme/.."), &["path"]),
        hook("path", json!("../../etc/passwd"), &["path"]),
        hook("path", json!("org\nname"), &["path"]),
        hook("path", json!(long('a', 5000)), &["path", "too long"]),
        hook("path", json!("ünïcødé/répö"), &["path"]),
        hook("path", json!(42), &["path", "wrong type"]),
        // group (only meaningful for an organisation path)
        hook("group", json!(""), &["group"]),
        hook("group", json!("g\u{0}x"), &["group"]),
        hook("group", json!(long('g', 101)), &["group"]),
        // token
        hook("token", json!(""), &["Missing", "token"]),
        hook(
            "token",
            json!("ghp_with space_0123456789"),
            &["token", "whitespace"],
        ),
        hook("token", json!("ghp_newline0123\nsecondline"), &["token"]),
        hook("token", json!("ghp_tab0123456789\tx"), &["token"]),
        hook("token", json!(long('t', 600)), &["token", "too long"]),
        hook("token", json!(12345), &["token", "wrong type"]),
        hook(
            "token",
            json!("secret:"),
            &["token", "not a Juju secret URI"],
        ),
        // A secret this unit was never given: secret-get finds none.
        hook(
            "token",
            json!("secret:d3k8b0r2v7s1m4q6p5c0"),
            &["token \"secret:d3k8b0r2v7s1m4q6p5c0\"", "no such secret"],
        ),
        // the GitHub App
        several(
            json!({"github-app-client-id": "Iv23liAbc"}),
            &["token", "not both"],
        ),
        several(
            json!({"token": "", "github-app-client-id": "Iv23liAbc"}),
            &[
                "Missing",
                "github-app-installation-id",
                "github-app-private-key",
            ],
        ),
        several(
            json!({"token": "", "github-app-installation-id": 5, "github-app-private-key": "secret:d3k8b0r2v7s1m4q6p5c0"}),
            &["Missing", "github-app-client-id or github-app-id"],
        ),
        several(
            json!({"token": "", "github-app-client-id": "Iv23liAbc", "github-app-installation-id": 5,
                   "github-app-private-key": PASTED_KEY}),
            &["github-app-private-key \"<redacted>\"", "Juju secret"],
        ),
        several(
            json!({"token": "", "github-app-client-id": "Iv 23", "github-app-installation-id": -5,
                   "github-app-private-key": "secret:d3k8b0r2v7s1m4q6p5c0"}),
            &["github-app-client-id", "github-app-installation-id \"-5\""],
        ),
        hook(
            "github-app-id",
            json!("12"),
            &["github-app-id", "wrong type"],
        ),
        // virtual-machines
        hook(
            "virtual-machines",
            json!(-1),
            &["virtual-machines", "at least 0"],
        ),
        hook(
            "virtual-machines",
            json!(501),
            &["virtual-machines", "at most"],
        ),
        hook(
            "virtual-machines",
            json!(1_000_000_000_000i64),
            &["virtual-machines"],
        ),
        hook(
            "virtual-machines",
            json!("3"),
            &["virtual-machines", "wrong type"],
        ),
        hook(
            "virtual-machines",
            json!(2.5),
            &["virtual-machines", "wrong type"],
        ),
        hook("virtual-machines", json!(u64::MAX), &["virtual-machines"]),
        // vm-cpu
        hook("vm-cpu", json!(0), &["vm-cpu", "at least 1"]),
        hook("vm-cpu", json!(-2), &["vm-cpu"]),
        hook("vm-cpu", json!(1025), &["vm-cpu", "at most"]),
        hook("vm-cpu", json!("two"), &["vm-cpu", "wrong type"]),
        // vm-memory
        hook("vm-memory", json!(""), &["vm-memory"]),
        hook("vm-memory", json!("7XB"), &["vm-memory", "unknown unit"]),
        hook("vm-memory", json!("-1GiB"), &["vm-memory"]),
        hook("vm-memory", json!("1KiB"), &["vm-memory", "at least 64MiB"]),
        hook(
            "vm-memory",
            json!("99999999999999999999GiB"),
            &["vm-memory"],
        ),
        hook(
            "vm-memory",
            json!("18446744073709551615TiB"),
            &["vm-memory"],
        ),
        hook("vm-memory", json!("7 gigs"), &["vm-memory"]),
        hook("vm-memory", json!("1.5.2GiB"), &["vm-memory"]),
        hook("vm-memory", json!(7), &["vm-memory", "wrong type"]),
        // vm-disk
        hook("vm-disk", json!("lots"), &["vm-disk"]),
        hook("vm-disk", json!("0"), &["vm-disk"]),
        hook("vm-disk", json!("18446744073709551616"), &["vm-disk"]),
        hook("vm-disk", json!("10GiB\u{202e}"), &["vm-disk"]),
        // reconcile-interval
        hook(
            "reconcile-interval",
            json!(0),
            &["reconcile-interval", "at least 1"],
        ),
        hook("reconcile-interval", json!(-5), &["reconcile-interval"]),
        hook(
            "reconcile-interval",
            json!(1441),
            &["reconcile-interval", "at most"],
        ),
        hook(
            "reconcile-interval",
            json!(1_000_000),
            &["reconcile-interval"],
        ),
        // denylist
        hook("denylist", json!("10.0.0.0/99"), &["denylist", "IPv4 CIDR"]),
        hook("denylist", json!("10.0.0"), &["denylist"]),
        hook("denylist", json!("not-an-ip"), &["denylist"]),
        hook(
            "denylist",
            json!("10.0.0.0/8,300.1.1.1"),
            &["denylist", "300.1.1.1"],
        ),
        hook("denylist", json!("::1"), &["denylist"]),
        hook("denylist", json!("10.0.0.0/8 10.1.0.0/16"), &["denylist"]),
        hook("denylist", json!("10.0.0.0/-1"), &["denylist"]),
        // dockerhub-mirror
        hook(
            "dockerhub-mirror",
            json!("http://mirror.example"),
            &["dockerhub-mirror", "https"],
        ),
        hook(
            "dockerhub-mirror",
            json!("mirror.example"),
            &["dockerhub-mirror"],
        ),
        hook("dockerhub-mirror", json!("https://"), &["dockerhub-mirror"]),
        hook(
            "dockerhub-mirror",
            json!("ftp://mirror.example"),
            &["dockerhub-mirror"],
        ),
        hook(
            "dockerhub-mirror",
            json!("javascript:alert(1)"),
            &["dockerhub-mirror"],
        ),
        // test-mode
        hook("test-mode", json!("sometimes"), &["test-mode"]),
        hook("test-mode", json!("INSECURE"), &["test-mode"]),
        // labels
        hook("labels", json!("a b"), &["labels"]),
        hook("labels", json!("ok,bad\nlabel"), &["labels"]),
        hook("labels", json!(long('l', 300)), &["labels"]),
        // github-url
        hook("github-url", json!("gopher://x"), &["github-url"]),
        hook("github-url", json!("not a url"), &["github-url"]),
        hook("github-url", json!(""), &["github-url"]),
        // The token would travel in clear text.
        hook(
            "github-url",
            json!("http://ghes.example.com"),
            &["github-url", "https://"],
        ),
        // runner-instance-type
        hook(
            "runner-instance-type",
            json!("vm"),
            &["runner-instance-type"],
        ),
        hook("runner-instance-type", json!(""), &["runner-instance-type"]),
        hook(
            "runner-instance-type",
            json!("VIRTUAL-MACHINE"),
            &["runner-instance-type"],
        ),
        // runner-image
        hook(
            "runner-image",
            json!("no spaces allowed"),
            &["runner-image"],
        ),
        hook("runner-image", json!("img;rm -rf /"), &["runner-image"]),
        hook("runner-image", json!(long('i', 5000)), &["runner-image"]),
        hook(
            "runner-image",
            json!("\u{1F600}\u{200B}"),
            &["runner-image"],
        ),
        // experimental-use-aproxy
        hook(
            "experimental-use-aproxy",
            json!("maybe"),
            &["experimental-use-aproxy"],
        ),
        hook(
            "experimental-use-aproxy",
            json!(1),
            &["experimental-use-aproxy"],
        ),
        // action parameters
        action(
            "actions/flush-runners",
            json!({"flush-busy": "yes"}),
            &["flush-busy"],
        ),
        action(
            "actions/flush-runners",
            json!({"flush-busy": "true"}),
            &["flush-busy"],
        ),
        action(
            "actions/flush-runners",
            json!({"flush-busy": 1}),
            &["flush-busy"],
        ),
        action(
            "actions/flush-runners",
            json!({"flush-busy": []}),
            &["flush-busy"],
        ),
        action(
            "actions/flush-runners",
            json!({"flush-busy": {"a": 1}}),
            &["flush-busy"],
        ),
        action(
            "actions/destroy-everything",
            json!({}),
            &["unknown action", "destroy-everything"],
        ),
        // an action run with a bad config fails naming the option
        Case {
            event: "actions/reconcile-runners",
            config: json!({"vm-cpu": -1}),
            params: Some(json!({})),
            want: &["vm-cpu"],
        },
        Case {
            event: "actions/check-runners",
            config: json!({"path": "a/b/c"}),
            params: Some(json!({})),
            want: &["path"],
        },
    ]
}
