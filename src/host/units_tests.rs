use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::host::fakes::FakeCommands;

fn unit(paths: &HostPaths) -> PolicyUnit {
    PolicyUnit {
        binary: "/var/lib/juju/agents/unit-github-runner-0/charm/github-runner".into(),
        bridge_address: Ipv4Addr::new(10, 1, 2, 1),
        env_file: paths.host_view(&paths.policy_env_file()),
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn unit_binds_bridge_and_loopback_and_names_the_env_file() {
    let paths = HostPaths::new("/");
    let text = render_policy_unit(&unit(&paths));
    assert!(text.contains(
        "\nExecStart=/var/lib/juju/agents/unit-github-runner-0/charm/github-runner policy-server --bind 10.1.2.1:8080 --bind 127.0.0.1:8080\n"
    ));
    assert!(text.contains("\nEnvironmentFile=/var/lib/github-runner/policy-server.env\n"));
    assert!(text.contains("\nWantedBy=multi-user.target\n"));
}

#[test]
fn env_file_holds_the_four_variables() {
    let token = Token::new("ghp_abc");
    let charm = CharmToken("a".repeat(64));
    let doc = PathBuf::from("/var/lib/github-runner/policy.json");
    let s = PolicySecrets {
        github_token: &token,
        charm_token: &charm,
        github_url: "https://github.com",
        policy_document: &doc,
    };
    assert_eq!(
        render_policy_env(&s).unwrap(),
        format!(
            "GITHUB_TOKEN=ghp_abc\nCHARM_TOKEN={}\nGITHUB_URL=https://github.com\nPOLICY_DOCUMENT=/var/lib/github-runner/policy.json\n",
            "a".repeat(64)
        )
    );
    let bad = Token::new("x\nEVIL=1");
    let err = render_policy_env(&PolicySecrets {
        github_token: &bad,
        ..s
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the value for GITHUB_TOKEN holds a newline, quote or control character"
    );
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
    let doc = paths.host_view(&paths.policy_document());
    let secrets = PolicySecrets {
        github_token: &token,
        charm_token: &charm,
        github_url: "https://github.com",
        policy_document: &doc,
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
        github_token: &new_token,
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
fn health_and_restart_commands() {
    use crate::host::CmdOutput;
    let c = FakeCommands::new();
    c.on(
        "systemctl",
        &["is-active"],
        vec![CmdOutput::failed(3, ""), CmdOutput::ok("")],
    );
    assert!(!policy_service_active(&c).unwrap());
    assert!(policy_service_active(&c).unwrap());
    restart_policy_service(&c).unwrap();
    assert_eq!(
        c.lines(),
        [
            "systemctl is-active --quiet github-runner-policy.service",
            "systemctl is-active --quiet github-runner-policy.service",
            "systemctl restart github-runner-policy.service"
        ]
    );
}
