use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::host::fakes::FakeCommands;

fn unit(paths: &HostPaths) -> PolicyUnit {
    PolicyUnit {
        name: POLICY_UNIT.into(),
        port: policy_service::POLICY_PORT,
        state_directory: paths.policy_state_name(),
        logs_directory: paths.policy_state_name(),
        charm_unit: "github-runner/0".into(),
        binary: paths.host_view(&paths.policy_binary()),
        bridge_address: Ipv4Addr::new(10, 1, 2, 1),
        env_file: paths.host_view(&paths.policy_env_file()),
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/host/golden/github-runner-policy.service"
);

/// `UPDATE_GOLDEN=1 cargo test --lib host::units` rewrites the golden file.
#[test]
fn unit_matches_golden_file() {
    let rendered = render_policy_unit(&unit(&HostPaths::new("/")));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(Path::new(GOLDEN).parent().unwrap()).unwrap();
        fs::write(GOLDEN, &rendered).unwrap();
    }
    let golden = fs::read_to_string(GOLDEN).expect("golden file; UPDATE_GOLDEN=1 makes it");
    assert_eq!(rendered, golden);
}

#[test]
fn unit_serves_runners_on_the_bridge_and_the_charm_on_loopback_unprivileged() {
    let text = render_policy_unit(&unit(&HostPaths::new("/")));
    let lines: Vec<&str> = text.lines().collect();
    let exec_start = format!(
        "ExecStart=/usr/local/lib/github-runner/github-runner policy-server --bind 10.1.2.1:{port} --charm-bind 127.0.0.1:{port} --events-log /var/log/github-runner-policy/events.log --unit github-runner/0",
        port = policy_service::POLICY_PORT
    );
    for line in [
        exec_start.as_str(),
        "EnvironmentFile=/var/lib/github-runner/policy-server.env",
        "DynamicUser=yes",
        "StateDirectory=github-runner-policy",
        "LogsDirectory=github-runner-policy",
        "CapabilityBoundingSet=",
        "LimitNOFILE=512",
        "WantedBy=multi-user.target",
    ] {
        assert!(lines.contains(&line), "{line} missing from\n{text}");
    }
    assert!(!lines.iter().any(|l| l.starts_with("User=")));
}

/// The service writes its events where the unit's `LogsDirectory=` lets it, at the path
/// `HostPaths::policy_events_log` names, one per unit.
#[test]
fn events_log_is_the_units_own_in_its_logs_directory() {
    let dir = tempfile::tempdir().unwrap();
    for unit_name in ["runners-a/0", "runners-b/3"] {
        let paths = HostPaths::for_unit(dir.path(), unit_name);
        let policy = PolicyUnit {
            charm_unit: unit_name.into(),
            ..unit(&paths)
        };
        let text = render_policy_unit(&policy);
        let events = paths.host_view(&paths.policy_events_log());
        let key = crate::host::site::UnitKey::from_unit(unit_name);
        let directory = format!("github-runner-policy-{key}");
        assert_eq!(
            events,
            Path::new("/var/log").join(&directory).join("events.log")
        );
        let option = format!("--events-log {} --unit {unit_name}", events.display());
        assert!(text.contains(&option), "{option} missing from\n{text}");
        let logs = format!("LogsDirectory={directory}");
        assert!(
            text.lines().any(|l| l == logs),
            "{logs} missing from\n{text}"
        );
    }
}

#[test]
fn env_file_holds_the_three_variables() {
    let token = Token::new("ghp_abc");
    let charm = Token::new("a".repeat(64));
    let s = PolicySecrets {
        github: &GithubAuth::Token(token.clone()),
        charm_token: &charm,
        github_url: "https://github.com",
    };
    assert_eq!(
        render_policy_env(&s).unwrap(),
        format!(
            "GITHUB_TOKEN=ghp_abc\nCHARM_TOKEN={}\nGITHUB_URL=https://github.com\n",
            "a".repeat(64)
        )
    );
    let bad = Token::new("x\nEVIL=1");
    let err = render_policy_env(&PolicySecrets {
        github: &GithubAuth::Token(bad.clone()),
        ..s
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the value for GITHUB_TOKEN holds a newline, quote or control character"
    );
}

#[test]
fn an_app_gives_the_service_its_issuer_installation_and_key_never_a_token() {
    use base64::Engine;
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow==\n-----END RSA PRIVATE KEY-----\n";
    let app = GithubAuth::App(crate::config::GithubApp {
        issuer: "Iv23liUnits".into(),
        installation_id: 77,
        private_key: ghr_types::Secret::new(pem),
    });
    let charm = Token::new("c".repeat(64));
    let env = render_policy_env(&PolicySecrets {
        github: &app,
        charm_token: &charm,
        github_url: "https://ghe.example.com",
    })
    .unwrap();
    let vars: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "GITHUB_APP_ISSUER",
            "GITHUB_APP_INSTALLATION_ID",
            "GITHUB_APP_PRIVATE_KEY",
            "CHARM_TOKEN",
            "GITHUB_URL"
        ]
    );
    assert_eq!(vars[0].1, "Iv23liUnits");
    assert_eq!(vars[1].1, "77");
    // One line per value: the PEM's newlines are inside the base64.
    let key = base64::engine::general_purpose::STANDARD
        .decode(vars[2].1)
        .unwrap();
    assert_eq!(String::from_utf8(key).unwrap(), pem);
}

#[test]
fn charm_token_is_generated_once_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path());
    let first = ensure_charm_token(&paths).unwrap();
    assert_eq!(first.expose().len(), 64);
    assert!(first.expose().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(mode(&paths.charm_token()), 0o600);
    assert_eq!(mode(&paths.state_dir()), 0o700);
    assert_eq!(ensure_charm_token(&paths).unwrap(), first);
    assert!(!format!("{first:?}").contains(first.expose()));

    fs::write(paths.charm_token(), "short").unwrap();
    let replaced = ensure_charm_token(&paths).unwrap();
    assert_ne!(replaced, first);
}

#[test]
fn service_restarts_only_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path());
    let token = Token::new("ghp_secret_value");
    let charm = ensure_charm_token(&paths).unwrap();
    let secrets = PolicySecrets {
        github: &GithubAuth::Token(token.clone()),
        charm_token: &charm,
        github_url: "https://github.com",
    };
    let c = FakeCommands::new();
    assert!(install_policy_service(&c, &paths, &unit(&paths), &secrets, false).unwrap());
    assert_eq!(
        c.lines(),
        [
            "systemctl daemon-reload",
            "systemctl enable github-runner-policy.service",
            "systemctl restart github-runner-policy.service"
        ]
    );
    assert_eq!(mode(&paths.policy_env_file()), 0o600);
    let unit_text = fs::read_to_string(paths.systemd_dir().join(POLICY_UNIT)).unwrap();
    assert!(!unit_text.contains("ghp_secret_value"));
    assert!(!unit_text.contains(charm.expose()));

    c.clear();
    assert!(!install_policy_service(&c, &paths, &unit(&paths), &secrets, false).unwrap());
    assert!(c.lines().is_empty());

    let new_token = Token::new("ghp_rotated");
    let rotated = PolicySecrets {
        github: &GithubAuth::Token(new_token.clone()),
        ..secrets
    };
    assert!(install_policy_service(&c, &paths, &unit(&paths), &rotated, false).unwrap());
    assert_eq!(
        c.lines(),
        ["systemctl restart github-runner-policy.service"]
    );
    assert!(c
        .calls
        .borrow()
        .iter()
        .all(|cmd| !cmd.to_string().contains("ghp_")));
}

#[test]
fn state_kept_as_root_moves_while_the_service_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path());
    let token = Token::new("ghp_x");
    let charm = ensure_charm_token(&paths).unwrap();
    let secrets = PolicySecrets {
        github: &GithubAuth::Token(token.clone()),
        charm_token: &charm,
        github_url: "https://github.com",
    };
    // What the service wrote while it ran as root, before this unit.
    fs::write(paths.state_dir().join("policy.json"), "{}").unwrap();
    fs::write(paths.state_dir().join("one-time-tokens"), "d\n").unwrap();
    let c = FakeCommands::new();
    assert!(install_policy_service(&c, &paths, &unit(&paths), &secrets, true).unwrap());
    assert_eq!(
        c.lines(),
        [
            "systemctl stop github-runner-policy.service",
            "systemctl daemon-reload",
            "systemctl enable github-runner-policy.service",
            "systemctl restart github-runner-policy.service"
        ]
    );
    let moved = paths.policy_state_dir();
    assert_eq!(fs::read_to_string(moved.join("policy.json")).unwrap(), "{}");
    assert_eq!(
        fs::read_to_string(moved.join("one-time-tokens")).unwrap(),
        "d\n"
    );
    assert!(!paths.state_dir().join("policy.json").exists());
    c.clear();
    assert!(!install_policy_service(&c, &paths, &unit(&paths), &secrets, false).unwrap());
    assert!(c.lines().is_empty(), "moved once: {:?}", c.lines());
}

#[test]
fn health_and_restart_commands() {
    use crate::host::CmdOutput;
    let c = FakeCommands::new();
    c.on(
        "systemctl",
        &["is-active"],
        vec![CmdOutput::failed(3, ""), CmdOutput::ok("")],
    );
    let unit = "github-runner-policy-a-1.service";
    assert!(!policy_service_active(&c, unit).unwrap());
    assert!(policy_service_active(&c, unit).unwrap());
    restart_policy_service(&c, unit).unwrap();
    assert_eq!(
        c.lines(),
        [
            "systemctl is-active --quiet github-runner-policy-a-1.service",
            "systemctl is-active --quiet github-runner-policy-a-1.service",
            "systemctl restart github-runner-policy-a-1.service"
        ]
    );
}
