//! The policy service unprivileged and sandboxed. The unit the charm renders passes
//! `systemd-analyze verify`, and `systemd-analyze security --offline=yes` finds the
//! sandbox in it; every system call the real service makes while serving is one its
//! `SystemCallFilter=` lines allow; and the binary the charm installs for it
//! runs as an unprivileged uid with no capabilities, with the environment the unit's
//! file gives and a state directory of its own: it serves, issues tokens and stores a
//! policy, and after a kill by PID and a new start the token is accepted and the policy
//! kept.
//!
//! Needs root (setpriv, chown) and systemd-analyze, setpriv, strace; skips with the
//! reason otherwise, unless CI=true.

mod policy_binary_support;
mod policy_support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use github_runner::config::{GithubAuth, Token};
use github_runner::host::units::{
    install_policy_binary, render_policy_env, render_policy_unit, PolicySecrets, PolicyUnit,
};
use github_runner::host::HostPaths;
use policy_binary_support::{binary, call, PolicyProcess, RUNNER};
use policy_support::sim_repo;

const CHARM_TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// A uid and gid no account on this machine has, as a dynamic user's.
const UID: u32 = 61500;

/// Prints why a test is skipped, or fails it when CI=true.
fn missing(tools: &[&str]) -> bool {
    let absent: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| Command::new(t).arg("--version").output().is_err())
        .collect();
    let reason = if !nix::unistd::geteuid().is_root() {
        "needs root".to_string()
    } else if !absent.is_empty() {
        format!("not installed: {}", absent.join(", "))
    } else {
        return false;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {reason}"
    );
    eprintln!("SKIPPED: {reason}");
    true
}

fn unit_text(binary: &Path) -> String {
    render_policy_unit(&PolicyUnit {
        name: "github-runner-policy-github-runner-0.service".into(),
        port: policy_service::POLICY_PORT,
        state_directory: "github-runner-policy-github-runner-0".into(),
        logs_directory: "github-runner-policy-github-runner-0".into(),
        charm_unit: "github-runner/0".into(),
        binary: binary.to_path_buf(),
        bridge_address: "10.216.1.1".parse().unwrap(),
        env_file: "/var/lib/github-runner/policy-server.env".into(),
    })
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program).args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn systemd_finds_the_unit_valid_and_sandboxed() {
    if missing(&["systemd-analyze"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The unit names the real binary, so `verify` checks an executable that exists.
    let unit = dir.path().join("github-runner-policy.service");
    std::fs::write(&unit, unit_text(Path::new(binary()))).unwrap();
    let unit = unit.to_str().unwrap();

    let (ok, text) = run("systemd-analyze", &["verify", unit]);
    assert!(ok && text.trim().is_empty(), "verify: {text}");

    let (ok, text) = run("systemd-analyze", &["security", "--offline=yes", unit]);
    assert!(ok, "{text}");
    for setting in [
        "User=/DynamicUser=",
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
        "CapabilityBoundingSet=~CAP_NET_ADMIN",
        "CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)",
        "NoNewPrivileges=",
        "ProtectSystem=",
        "ProtectHome=",
        "PrivateTmp=",
        "PrivateDevices=",
        "ProtectKernelTunables=",
        "ProtectKernelModules=",
        "ProtectControlGroups=",
        "RestrictNamespaces=~user",
        "RestrictAddressFamilies=~AF_PACKET",
        "RestrictAddressFamilies=~AF_NETLINK",
        "SystemCallFilter=~@privileged",
        "SystemCallFilter=~@mount",
        "SystemCallArchitectures=",
        "MemoryDenyWriteExecute=",
        "LockPersonality=",
        "RestrictRealtime=",
        "RestrictSUIDSGID=",
        "UMask=",
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(setting))
            .unwrap_or_else(|| panic!("{setting} not assessed:\n{text}"));
        assert!(line.starts_with('✓'), "{setting} not in effect: {line}");
    }
    let overall = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for ").nth(1))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|score| score.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no overall exposure:\n{text}"));
    // The network is the service's job, so a little exposure remains; root with only
    // NoNewPrivileges and PrivateTmp scores over 9.
    assert!(overall <= 2.0, "exposure {overall}:\n{text}");
}

/// A temporary root with the charm's installed copy of the binary and a state
/// directory owned by [`UID`], both reachable by that uid.
struct Sandbox {
    dir: tempfile::TempDir,
    binary: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let paths = HostPaths::new(dir.path());
        assert!(install_policy_binary(&paths, Path::new(binary())).unwrap());
        let state = dir.path().join("var/lib/private/github-runner-policy");
        std::fs::create_dir_all(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(UID), Some(UID)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        // systemd's /var/lib/private is 0700 root; the service sees its own folder only.
        for d in ["var", "var/lib", "var/lib/private"] {
            let mode = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(dir.path().join(d), mode).unwrap();
        }
        Sandbox {
            binary: paths.policy_binary(),
            state,
            dir,
        }
    }

    /// The environment the unit gives: its env file's variables and STATE_DIRECTORY.
    fn env(&self, github_url: &str, github_token: &str) -> Vec<(String, String)> {
        let token = Token::new(github_token);
        let charm = Token::new(CHARM_TOKEN);
        let file = render_policy_env(&PolicySecrets {
            github: &GithubAuth::Token(token.clone()),
            charm_token: &charm,
            github_url,
        })
        .unwrap();
        let mut env: Vec<(String, String)> = file
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push(("STATE_DIRECTORY".into(), self.state.display().to_string()));
        env.push(("RUST_LOG".into(), "info".into()));
        env
    }

    /// The installed binary as [`UID`], no groups, capabilities or new privileges.
    fn start(&self, env: &[(String, String)]) -> Running {
        let wrapper = [
            "setpriv",
            "--reuid=61500",
            "--regid=61500",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ];
        let args: Vec<String> = ["--bind", "127.0.0.1:0", "--charm-bind", "127.0.0.1:0"]
            .map(String::from)
            .to_vec();
        let mut process = PolicyProcess::start_program(&wrapper, &self.binary, &args, env);
        let runner = format!("http://{}", process.listening("listening for runners on"));
        let charm = format!("http://{}", process.listening("listening for the charm on"));
        Running {
            process,
            runner,
            charm,
        }
    }
}

struct Running {
    process: PolicyProcess,
    runner: String,
    charm: String,
}

impl Running {
    fn one_time_token(&self) -> String {
        let url = format!("{}/one-time-token?runner={RUNNER}", self.charm);
        let (status, token) = call("GET", &url, Some(CHARM_TOKEN), None);
        assert_eq!(status, 200, "{token}; {:?}", self.process.seen);
        token
    }

    fn push_check(&self, token: &str) -> u16 {
        let url = format!("{}/push/check-run", self.runner);
        let body = r#"{"repository_name": "canonical/app"}"#;
        call("POST", &url, Some(token), Some(body)).0
    }
}

fn owner_and_mode(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    (meta.uid(), meta.mode() & 0o777)
}

#[test]
fn runs_unprivileged_and_keeps_its_state_across_a_kill() {
    if missing(&["setpriv"]) {
        return;
    }
    // canonical/app has an outside collaborator: the default policy refuses its push
    // jobs, the policy posted below lets them run.
    let sim = sim_repo::start();
    sim_repo::compliant(&sim, "canonical/app");
    sim_repo::outside_collaborators(&sim, "canonical/app", &[("mallory", "write")]);
    let sandbox = Sandbox::new();
    let env = sandbox.env(&sim.url, sim_repo::PAT);

    let mut first = sandbox.start(&env);
    assert_eq!(first.push_check(&first.one_time_token()), 403);
    let policy = format!("{}/policy", first.charm);
    let doc = r#"{"push": {"collaborators": {"enabled": false}}}"#;
    let posted = call("POST", &policy, Some(CHARM_TOKEN), Some(doc));
    assert_eq!(posted.0, 204, "{}", posted.1);
    let (used, idle) = (first.one_time_token(), first.one_time_token());
    assert_eq!(first.push_check(&used), 204);
    // The files are the service user's, readable by nobody else.
    for name in ["policy.json", "one-time-tokens"] {
        let file = sandbox.state.join(name);
        assert_eq!(owner_and_mode(&file), (UID, 0o600), "{name}");
    }
    first.process.kill();

    let second = sandbox.start(&env);
    assert_eq!(second.push_check(&idle), 204, "token and policy both kept");
    assert_eq!(second.push_check(&used), 401);
    assert_eq!(second.push_check(&second.one_time_token()), 204);
    drop(second);
    drop(sandbox.dir);
}

/// The system calls in a `@group` of systemd's, nested groups expanded.
fn expand(group: &str, out: &mut BTreeSet<String>) {
    let (ok, text) = run("systemd-analyze", &["syscall-filter", group]);
    assert!(ok, "{text}");
    for entry in text.lines().skip(1).map(str::trim) {
        if entry.starts_with('@') {
            expand(entry, out);
        } else if !entry.is_empty() && !entry.starts_with('#') {
            out.insert(entry.to_string());
        }
    }
}

/// The system calls the unit's `SystemCallFilter=` lines allow: the allow-listed
/// groups less the `~` denied ones.
fn allowed_by_unit(unit: &str) -> BTreeSet<String> {
    let (mut allowed, mut denied) = (BTreeSet::new(), BTreeSet::new());
    for value in unit
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="))
    {
        let (set, list) = match value.strip_prefix('~') {
            Some(list) => (&mut denied, list),
            None => (&mut allowed, value),
        };
        for group in list.split_whitespace() {
            expand(group, set);
        }
    }
    allowed.difference(&denied).cloned().collect()
}

#[test]
fn every_system_call_it_makes_is_in_its_filter() {
    if missing(&["systemd-analyze", "strace", "setpriv"]) {
        return;
    }
    let allowed = allowed_by_unit(&unit_text(Path::new(binary())));
    for (call, expected) in [("read", true), ("mount", false), ("setuid", false)] {
        assert_eq!(allowed.contains(call), expected, "{call}");
    }
    let sim = sim_repo::start();
    sim_repo::compliant(&sim, "canonical/app");
    let sandbox = Sandbox::new();
    let env = sandbox.env(&sim.url, sim_repo::PAT);
    let log = sandbox.dir.path().join("strace.log");
    let log_arg = log.display().to_string();
    let wrapper = ["strace", "-f", "-qq", "-o", &log_arg, "--"];
    let args: Vec<String> = ["--bind", "127.0.0.1:0", "--charm-bind", "127.0.0.1:0"]
        .map(String::from)
        .to_vec();
    let mut process = PolicyProcess::start_program(&wrapper, Path::new(binary()), &args, &env);
    let runner = format!("http://{}", process.listening("listening for runners on"));
    let charm = format!("http://{}", process.listening("listening for the charm on"));
    // Everything it does: tokens, a policy stored, checks passed and refused, health,
    // a refused route, and a clean stop.
    let token = || {
        call(
            "GET",
            &format!("{charm}/one-time-token?runner={RUNNER}"),
            Some(CHARM_TOKEN),
            None,
        )
        .1
    };
    let doc = r#"{"push": {"collaborators": {"enabled": true}}}"#;
    let policy = format!("{charm}/policy");
    assert_eq!(call("POST", &policy, Some(CHARM_TOKEN), Some(doc)).0, 204);
    let body = r#"{"repository_name": "canonical/app"}"#;
    let check = format!("{runner}/push/check-run");
    assert_eq!(call("POST", &check, Some(&token()), Some(body)).0, 204);
    assert_eq!(call("POST", &check, Some("used"), Some(body)).0, 401);
    assert_eq!(call("GET", &format!("{runner}/health"), None, None).0, 204);
    assert_eq!(call("GET", &format!("{runner}/policy"), None, None).0, 404);
    // SIGTERM to the service itself (strace's child), which strace then follows out.
    let pid = process.pid();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let service: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let term = nix::sys::signal::Signal::SIGTERM;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(service), term).unwrap();
    assert_eq!(process.exit_code(), Some(0), "{:?}", process.seen);

    let trace = std::fs::read_to_string(&log).unwrap();
    let made: BTreeSet<String> = trace
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|call| call.split_once('(').map(|(name, _)| name.to_string()))
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    // The process exec'd by strace itself, before the unit's filter would apply.
    let outside: Vec<&String> = made
        .iter()
        .filter(|c| !allowed.contains(*c) && c.as_str() != "execve")
        .collect();
    assert!(made.len() > 20, "strace saw {made:?}");
    assert!(
        outside.is_empty(),
        "calls the unit's filter refuses: {outside:?}"
    );
}
