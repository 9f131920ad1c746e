//! The LXD setup steps against a real LXD daemon: our own daemon in a temporary
//! `LXD_DIR`, inside a network namespace of its own, so the `lxdbr0` bridge and its NAT
//! rules that the real preseed creates never appear on the host. Proves that LXD accepts
//! the preseed, the hardening keys and the proxy settings, that our parsing fits its
//! output, and that a second run changes nothing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use github_runner::host::lxd_setup;
use github_runner::host::SystemCommands;
use github_runner::proxy::ProxyConfig;

/// Skips (printing why) unless CI=true, where a missing prerequisite fails the test.
fn skip(reason: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prerequisite missing in CI: {reason}");
    }
    eprintln!("skipping: {reason}");
    true
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Our daemon; stopping it also removes the bridge and every process it left.
struct Daemon {
    dir: tempfile::TempDir,
    child: Child,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("ghr-host-lxd.")
            .tempdir_in("/tmp")
            .unwrap();
        let log = std::fs::File::create(dir.path().join("daemon.out")).unwrap();
        let child = Command::new("unshare")
            .args(["--net", "--", "lxd", "--group", "root", "--logfile"])
            .arg(dir.path().join("lxd.log"))
            .env("LXD_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start lxd");
        Daemon { dir, child }
    }

    fn lxc(&self, args: &[&str]) -> String {
        let out = Command::new("lxc")
            .args(args)
            .env("LXD_DIR", self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lxc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A fresh namespace has no routing table until an interface is up; LXD's bridge
    /// setup flushes routes and needs one.
    fn loopback_up(&self) {
        let ns = format!("--net=/proc/{}/ns/net", self.child.id());
        let status = Command::new("nsenter")
            .args([ns.as_str(), "ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Processes LXD spawned (dnsmasq outlives `lxd shutdown`) carry our directory in
    /// their command line; only those are ended.
    fn leftover_pids(&self) -> Vec<i32> {
        let needle = self.dir.path().to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let quiet = |args: &[&str], program: &str| {
            let _ = Command::new(program)
                .args(args)
                .env("LXD_DIR", self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        quiet(&["profile", "device", "remove", "default", "eth0"], "lxc");
        quiet(&["network", "delete", "lxdbr0"], "lxc");
        quiet(&["shutdown", "--timeout", "30"], "lxd");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.leftover_pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

fn lxd_dir_of(d: &Daemon) -> PathBuf {
    d.dir.path().to_path_buf()
}

#[test]
fn lxd_setup_against_a_real_daemon_is_accepted_and_idempotent() {
    if !nix::unistd::Uid::effective().is_root() && skip("needs root to run an LXD daemon") {
        return;
    }
    if !(have("lxd") && have("lxc") && have("unshare") && have("nsenter"))
        && skip("lxd, lxc, unshare or nsenter is not installed")
    {
        return;
    }
    let daemon = Daemon::start();
    // Every lxd/lxc the library runs talks to our daemon (this test binary holds only
    // this one test, so nothing else reads the variable).
    std::env::set_var("LXD_DIR", lxd_dir_of(&daemon));
    let c = SystemCommands;

    lxd_setup::wait_ready(&c).expect("lxd waitready");
    daemon.loopback_up();

    assert!(lxd_setup::ensure_initialised(&c).expect("lxd init --preseed"));
    assert!(
        !lxd_setup::ensure_initialised(&c).unwrap(),
        "second init is a no-op"
    );
    assert_eq!(
        daemon.lxc(&["network", "get", "lxdbr0", "ipv6.address"]),
        "none"
    );
    assert!(!daemon
        .lxc(&["storage", "get", "default", "source"])
        .is_empty());

    let bridge = lxd_setup::bridge_address(&c).expect("bridge address");
    assert!(bridge.is_private(), "{bridge}");

    assert!(lxd_setup::ensure_nic_hardening(&c).expect("hardening"));
    assert!(!lxd_setup::ensure_nic_hardening(&c).unwrap());
    for key in lxd_setup::NIC_HARDENING {
        assert_eq!(
            daemon.lxc(&["profile", "device", "get", "default", "eth0", key]),
            "true"
        );
    }

    let proxy = ProxyConfig {
        http: Some("http://squid.internal:3128".into()),
        https: Some("http://squid.internal:3129".into()),
        no_proxy: Some("localhost,127.0.0.1,10.0.0.0/8".into()),
    };
    assert!(lxd_setup::ensure_core_proxy(&c, &proxy).expect("core proxy"));
    assert_eq!(
        daemon.lxc(&["config", "get", "core.proxy_http"]),
        "http://squid.internal:3128"
    );
    assert_eq!(
        daemon.lxc(&["config", "get", "core.proxy_https"]),
        "http://squid.internal:3129"
    );
    assert_eq!(
        daemon.lxc(&["config", "get", "core.proxy_ignore_hosts"]),
        "localhost,127.0.0.1,10.0.0.0/8"
    );
    assert!(!lxd_setup::ensure_core_proxy(&c, &proxy).unwrap());
    assert!(lxd_setup::ensure_core_proxy(&c, &ProxyConfig::default()).unwrap());
    assert!(!daemon.lxc(&["config", "show"]).contains("core.proxy"));
}
