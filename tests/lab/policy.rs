//! The repository policy service as the charm's unit runs it, on the testbed's bridge
//! and loopback, started again by a stand-in `systemctl restart` when a test wants.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{binary, Process, Sim, BRIDGE_IP, CHARM_TOKEN, PAT};
use crate::firewall_support::poll;
use policy_service::POLICY_PORT;

/// Every rule off: for tests about runners, not about policy.
pub fn permissive_policy() -> Value {
    let off = json!({"enabled": false});
    json!({
        "pull_request": {"target_branch_protection": off, "collaborators": off, "disallow_fork": off, "execute_job": off},
        "workflow_dispatch": {"collaborators": off},
        "push": {"collaborators": off},
        "schedule": {"collaborators": off},
    })
}

/// The policy service, runners' routes on the bridge and the charm's on loopback, as the
/// charm's unit runs it.
pub struct Policy {
    process: Process,
    pub log: PathBuf,
    /// Starts the service again as [`Policy::start`] did (see [`Policy::restart_command`]).
    restart_script: PathBuf,
    _dir: tempfile::TempDir,
}

impl Policy {
    pub fn start(sim: &Sim, document: Value) -> Policy {
        Policy::start_with(sim, document, vec![("GITHUB_TOKEN", PAT.to_string())])
    }

    /// The service on another GitHub credential: `github` are its variables (a token,
    /// or an App's as the charm renders them); its state directory (where an App's
    /// installation token is kept) is its own temporary one.
    pub fn start_with(sim: &Sim, document: Value, github: Vec<(&'static str, String)>) -> Policy {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("policy.json");
        std::fs::write(&doc, document.to_string()).unwrap();
        let log = dir.path().join("policy.log");
        let args = [
            "policy-server".to_string(),
            "--bind".into(),
            format!("{BRIDGE_IP}:{POLICY_PORT}"),
            "--charm-bind".into(),
            format!("127.0.0.1:{POLICY_PORT}"),
        ];
        let mut env = github;
        env.extend([
            ("STATE_DIRECTORY", dir.path().display().to_string()),
            ("CHARM_TOKEN", CHARM_TOKEN.to_string()),
            ("GITHUB_URL", sim.url.clone()),
            ("POLICY_DOCUMENT", doc.display().to_string()),
            ("RUST_LOG", "info".to_string()),
        ]);
        let restart_script = dir.path().join("restart.sh");
        let exports: Vec<String> = env.iter().map(|(k, v)| format!("{k}='{v}'")).collect();
        std::fs::write(
            &restart_script,
            format!(
                "#!/bin/sh\nexport {}\nexec {} {} 2>>'{}'\n",
                exports.join(" "),
                binary(),
                args.join(" "),
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &restart_script,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let child = Command::new(binary())
            .args(&args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let process = Process(child);
        poll(Duration::from_secs(10), "policy service listening", || {
            std::net::TcpStream::connect(("127.0.0.1", POLICY_PORT)).ok()
        });
        Policy {
            process,
            log,
            restart_script,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// Kills the service by its PID (SIGKILL: a crash) and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.process.0.wait();
    }

    /// What a stand-in `systemctl restart` runs to start the service again
    /// (`Reply::spawn`): same binary, environment, listeners and log.
    pub fn restart_command(&self) -> Vec<String> {
        vec![self.restart_script.display().to_string()]
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
