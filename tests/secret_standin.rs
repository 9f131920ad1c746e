//! The stand-in `secret-get` answers as Juju 3's does (revision tracking, output forms,
//! errors and exit codes), and the harness plays the operator's secret commands and
//! Juju's `secret-changed`: every test runs the real stand-in binary.

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use base64::Engine;
use harness::{Harness, MODEL_UUID};

/// `(exit code, stdout, stderr)` of `secret-get ARGS`.
fn get(h: &Harness, args: &[&str]) -> (i32, String, String) {
    let out: Output = h.secret_get(args);
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The value of `token` a plain read (no option) gets.
fn read_token(h: &Harness, uri: &str) -> String {
    let (code, out, err) = get(h, &[uri, "token"]);
    assert_eq!(code, 0, "secret-get {uri} token: {err}");
    out.trim_end().to_string()
}

/// A granted secret with `token` = `value`.
fn granted(h: &Harness, value: &str) -> String {
    let uri = h.add_secret(&[("token", value)]);
    h.grant_secret(&uri);
    uri
}

#[test]
fn first_read_tracks_the_latest_and_later_reads_stay_on_it() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    h.update_secret(&uri, &[("token", "v2")]);
    assert_eq!(h.tracked_revision(&uri), None, "nothing read yet");

    assert_eq!(read_token(&h, &uri), "v2");
    assert_eq!(h.tracked_revision(&uri), Some(2));

    h.update_secret(&uri, &[("token", "v3")]);
    assert_eq!(read_token(&h, &uri), "v2", "a rotation waits for --refresh");
    assert_eq!(h.tracked_revision(&uri), Some(2));
}

#[test]
fn refresh_reads_the_latest_and_tracks_it() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    assert_eq!(read_token(&h, &uri), "v1");
    h.update_secret(&uri, &[("token", "v2")]);

    let (code, out, _) = get(&h, &["--refresh", &uri, "token"]);
    assert_eq!((code, out.as_str()), (0, "v2\n"));
    assert_eq!(h.tracked_revision(&uri), Some(2));
    assert_eq!(
        read_token(&h, &uri),
        "v2",
        "later plain reads get the new one"
    );
}

#[test]
fn peek_reads_the_latest_and_leaves_the_tracking() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    assert_eq!(read_token(&h, &uri), "v1");
    h.update_secret(&uri, &[("token", "v2")]);

    let (code, out, _) = get(&h, &[&uri, "token", "--peek"]);
    assert_eq!((code, out.as_str()), (0, "v2\n"));
    assert_eq!(h.tracked_revision(&uri), Some(1));
    assert_eq!(read_token(&h, &uri), "v1");

    // A unit's first read starts the tracking, even a peek (Juju saves the consumer
    // the first time it reads).
    let fresh = granted(&h, "f1");
    assert_eq!(get(&h, &["--peek", &fresh, "token"]).1, "f1\n");
    assert_eq!(h.tracked_revision(&fresh), Some(1));
}

#[test]
fn output_is_the_map_or_one_value_in_yaml_or_json() {
    let h = Harness::new();
    let uri = h.add_secret(&[("token", "ghp_abc123"), ("user", "true")]);
    h.grant_secret(&uri);

    let (_, yaml, _) = get(&h, &[&uri]);
    let map: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    // "true" stays a string: the YAML is quoted where it must be.
    let want: serde_yaml::Value = serde_yaml::from_str("token: ghp_abc123\nuser: 'true'").unwrap();
    assert_eq!(map, want, "{yaml}");
    let (_, json, _) = get(&h, &["--format", "json", &uri]);
    assert_eq!(json, "{\"token\":\"ghp_abc123\",\"user\":\"true\"}\n");

    assert_eq!(get(&h, &[&uri, "token"]).1, "ghp_abc123\n");
    assert_eq!(
        get(&h, &["--format=json", &uri, "token"]).1,
        "\"ghp_abc123\"\n"
    );

    let (code, b64, _) = get(&h, &[&uri, "token#base64"]);
    assert_eq!(code, 0);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim_end())
        .unwrap();
    assert_eq!(decoded, b"ghp_abc123");
    let (_, b64_json, _) = get(&h, &["--format=json", &uri, "token#base64"]);
    assert_eq!(b64_json, format!("\"{}\"\n", b64.trim_end()));
}

#[test]
fn a_secret_not_granted_or_revoked_is_denied() {
    let h = Harness::new();
    let uri = h.add_secret(&[("token", "v1")]);
    let denied = (1, String::new(), "ERROR permission denied\n".to_string());
    assert_eq!(get(&h, &[&uri, "token"]), denied, "not granted yet");
    assert_eq!(
        h.tracked_revision(&uri),
        None,
        "a denied read tracks nothing"
    );

    h.grant_secret(&uri);
    assert_eq!(read_token(&h, &uri), "v1");
    h.revoke_secret(&uri);
    assert_eq!(get(&h, &[&uri, "token"]), denied, "revoked");
    assert_eq!(
        get(&h, &["--refresh", &uri]),
        denied,
        "revoked, whole content"
    );
}

#[test]
fn a_missing_key_is_not_found() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    for key in ["nokey", "nokey#base64"] {
        let (code, out, err) = get(&h, &[&uri, key]);
        assert_eq!(code, 1, "{key}");
        assert_eq!(out, "");
        assert_eq!(err, "ERROR secret key value \"nokey\" not found\n");
    }
}

#[test]
fn a_removed_or_unknown_secret_is_not_found() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    let id = uri.strip_prefix("secret:").unwrap();
    assert_eq!(read_token(&h, &uri), "v1");
    h.remove_secret(&uri);
    let (code, out, err) = get(&h, &[&uri, "token"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, format!("ERROR secret \"{id}\" not found\n"));

    let unknown = "secret:aaaaaaaaaaaaaaaaaaa0";
    let want = (
        1,
        String::new(),
        "ERROR secret \"aaaaaaaaaaaaaaaaaaa0\" not found\n".into(),
    );
    assert_eq!(get(&h, &[unknown]), want);
}

#[test]
fn bad_arguments_exit_2_before_anything_is_read() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    let cases: [(&[&str], String); 6] = [
        (
            &["secret:abc"],
            "secret URI \"secret:abc\" not valid".into(),
        ),
        (
            &["secret:d3k8b0r2v7s1m4q6p5cz"],
            "secret URI \"secret:d3k8b0r2v7s1m4q6p5cz\" not valid".into(),
        ),
        (
            &[&uri, "--peek", "--refresh"],
            "specify one of --peek or --refresh but not both".into(),
        ),
        (&[], "require either a secret URI or label".into()),
        (
            &["--format=json"],
            "require either a secret URI or label".into(),
        ),
        (
            &[&uri, "token", "extra"],
            "unrecognized args: [\"extra\"]".into(),
        ),
    ];
    for (args, why) in cases {
        let want = (2, String::new(), format!("ERROR {why}\n"));
        assert_eq!(get(&h, args), want, "{args:?}");
    }
    let (code, _, err) = get(&h, &["--format=toml", &uri]);
    assert_eq!(code, 2);
    assert!(err.starts_with("ERROR invalid value \"toml\""), "{err}");
    assert_eq!(
        h.tracked_revision(&uri),
        None,
        "no refused call read the secret"
    );
}

#[test]
fn a_model_qualified_uri_names_the_same_secret() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    let id = uri.strip_prefix("secret:").unwrap();
    let long = format!("secret://{MODEL_UUID}/{id}");
    assert_eq!(read_token(&h, &long), "v1");
    assert_eq!(
        h.tracked_revision(&uri),
        Some(1),
        "tracked by id, whatever form"
    );

    h.update_secret(&uri, &[("token", "v2")]);
    assert_eq!(read_token(&h, &long), "v1");
    assert_eq!(get(&h, &["--refresh", &long, "token"]).1, "v2\n");
    assert_eq!(read_token(&h, &uri), "v2");
    let not_a_model = format!("secret://example.com/{id}");
    assert_eq!(get(&h, &[&not_a_model]).0, 2);
}

#[test]
fn a_label_given_with_the_uri_finds_the_secret_later() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    let (code, out, _) = get(&h, &["--label", "github-token", &uri, "token"]);
    assert_eq!((code, out.as_str()), (0, "v1\n"));
    let by_label = get(&h, &["--label=github-token", "--format=json"]);
    assert_eq!(by_label.1, "{\"token\":\"v1\"}\n");
    // As in Juju, the first positional is always the URI: a key needs one.
    let (code, _, err) = get(&h, &["--label", "github-token", "token"]);
    assert_eq!(
        (code, err.as_str()),
        (2, "ERROR secret URI \"token\" not valid\n")
    );
    let (code, _, err) = get(&h, &["--label", "other"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "ERROR consumer label \"other\" not found\n")
    );
}

#[test]
fn secret_files_are_owner_only() {
    let h = Harness::new();
    let uri = granted(&h, "v1");
    assert_eq!(read_token(&h, &uri), "v1");
    h.update_secret(&uri, &[("token", "v2")]);
    assert_eq!(get(&h, &["--refresh", "--label", "l", &uri]).0, 0);
    for file in ["secrets.json", "secret-tracking.json"] {
        let mode = std::fs::metadata(h.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn calls_record_the_uri_and_key_never_the_value() {
    let h = Harness::new();
    let uri = granted(&h, "ghp_value_only_in_secrets_json");
    assert_eq!(read_token(&h, &uri), "ghp_value_only_in_secrets_json");
    get(&h, &["--format=json", &uri]);

    let calls: Vec<(String, Vec<String>)> =
        h.calls().into_iter().map(|c| (c.tool, c.args)).collect();
    let want = |args: &[&str]| {
        (
            "secret-get".to_string(),
            args.iter().map(|a| a.to_string()).collect(),
        )
    };
    assert_eq!(
        calls,
        [want(&[&uri, "token"]), want(&["--format=json", &uri])]
    );
    let record = std::fs::read_to_string(h.path().join("calls.jsonl")).unwrap();
    assert!(!record.contains("ghp_value_only"), "{record}");
}

/// A hook that writes the environment it saw to `hook-env` and prints the token it
/// reads with `--refresh`, as a charm reacting to a rotation would.
const HOOK: &str = "#!/bin/sh\nenv > \"$HOOK_HARNESS_DIR/hook-env\"\n\
    [ -n \"$JUJU_SECRET_ID\" ] || exit 0\nexec secret-get --refresh \"$JUJU_SECRET_ID\" token\n";

/// Writes HOOK as an executable from another process: a file this (threaded) process
/// opened for writing could still be open in a child another test forks meanwhile,
/// and running it would then fail with "text file busy".
fn install_hook(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("dispatch");
    let status = Command::new("sh")
        .args([
            "-c",
            "printf '%s' \"$1\" > \"$2\" && chmod 755 \"$2\"",
            "sh",
            HOOK,
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

#[test]
fn secret_changed_gives_the_hook_the_uri_for_that_run_only() {
    let charm = tempfile::tempdir().unwrap();
    let h = Harness::with_binary(install_hook(charm.path()));
    let uri = granted(&h, "v1");
    assert_eq!(read_token(&h, &uri), "v1");
    h.update_secret(&uri, &[("token", "v2")]);

    let run = h.secret_changed(&uri);
    assert!(run.success(), "{}", run.stderr());
    assert_eq!(
        run.stdout(),
        "v2\n",
        "the hook found secret-get and read the rotation"
    );
    assert_eq!(h.tracked_revision(&uri), Some(2));
    let env = std::fs::read_to_string(h.path().join("hook-env")).unwrap();
    let lines: Vec<&str> = env.lines().collect();
    for want in [
        format!("JUJU_SECRET_ID={uri}"),
        "JUJU_SECRET_LABEL=".to_string(),
        "JUJU_DISPATCH_PATH=hooks/secret-changed".to_string(),
    ] {
        assert!(lines.contains(&want.as_str()), "{want} in {env}");
    }
    assert!(
        !env.contains("JUJU_SECRET_REVISION"),
        "Juju sets none: {env}"
    );

    assert!(h.run("hooks/update-status").success());
    let env = std::fs::read_to_string(h.path().join("hook-env")).unwrap();
    assert!(
        !env.contains("JUJU_SECRET_ID"),
        "not in the next run: {env}"
    );
    assert!(env.contains("JUJU_DISPATCH_PATH=hooks/update-status"));
}
