//! Test fixtures for the firewall tests: network namespaces with veth links, TCP
//! responders (also inside namespaces), an LXD network and container from the test
//! daemon, all removed by Drop guards even when a test fails. Shared by several test
//! crates, each using a part of it.

#![allow(dead_code, unused_imports)]

mod error;
mod guards;
mod lxd;
mod reach;

pub use error::FixtureError;

pub use guards::{free_pair, RouteGuard, TableGuard};

use github_runner::firewall::{self, Drift, FirewallError, FirewallSpec, LoadRecord, Nft};
use github_runner::host::{Cmd, CmdOutput, CommandError, Commands, HostPaths, SystemCommands};
pub use lxd::{Container, Lxd, LxdNetwork};
pub use reach::{expect, reach, Reach};

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Prints why a test is skipped, or fails it when CI=true (CI must run everything).
pub fn skip(reason: impl std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and a prerequisite is missing: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Root and the `ip` and `nft` tools, or the reason they are missing.
pub fn root_and_tools() -> Result<(), FixtureError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(FixtureError::NotRoot("network namespaces, nftables"));
    }
    for tool in ["ip", "nft"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Err(FixtureError::NotInstalled(tool.to_string()));
        }
    }
    Ok(())
}

/// Runs a command; Err carries the command line and its stderr.
pub fn run(argv: &[&str]) -> Result<String, FixtureError> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(FixtureError::io(argv[0]))?;
    if !out.status.success() {
        return Err(FixtureError::Failed {
            command: argv.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `probe` until it yields a value or `timeout` passes, backing off up to 500 ms.
pub fn poll<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Retries `step` with backoff until it succeeds or `timeout` passes; the last error
/// otherwise. Unlike [`poll`] it never panics, so Drop guards can use it.
pub fn retry<T, E>(timeout: Duration, mut step: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    loop {
        match step() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(pause),
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Runs a cleanup step and reports it when it is slow, so a slow teardown is explained.
pub fn timed_cleanup(what: &str, step: impl FnOnce()) {
    let start = Instant::now();
    step();
    if start.elapsed() > Duration::from_secs(1) {
        eprintln!("cleanup: {what} took {:?}", start.elapsed());
    }
}

/// A third octet no interface on this machine uses yet in 10.216.X.0/24 or 10.217.X.0/24,
/// so that tests running side by side get their own subnets.
pub fn free_octet(seed: u32) -> u8 {
    let used = run(&["ip", "-o", "-4", "addr", "show"]).unwrap_or_default()
        + &run(&["ip", "-4", "route", "show"]).unwrap_or_default();
    (0..200u32)
        .map(|i| (20 + (seed + i) % 200) as u8)
        .find(|s| {
            !used.contains(&format!("10.216.{s}.")) && !used.contains(&format!("10.217.{s}."))
        })
        .expect("no free test subnet")
}

/// The host's commands, each run inside the network namespace it names
/// (`ip netns exec NAME program args...`): hands the charm's own nftables applier a
/// kernel table space of the test's own.
#[derive(Clone, Debug)]
pub struct InNetns(pub String);

impl Commands for InNetns {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, CommandError> {
        let mut inside = cmd.clone();
        inside.program = "ip".into();
        inside.args = ["netns", "exec", &self.0, &cmd.program]
            .into_iter()
            .map(String::from)
            .chain(cmd.args.iter().cloned())
            .collect();
        SystemCommands.run(&inside)
    }
}

/// The charm's own path to the kernel: `firewall::ensure` through `commands`, keeping
/// its record in a directory of the test's. Returns what ensure found and the table as
/// nft lists it afterwards.
pub struct Charm {
    commands: Box<dyn Commands>,
    record: LoadRecord,
    _dir: tempfile::TempDir,
}

impl Charm {
    pub fn new(commands: impl Commands + 'static) -> Charm {
        let dir = tempfile::tempdir().unwrap();
        Charm {
            commands: Box::new(commands),
            record: LoadRecord::at(&HostPaths::new(dir.path())),
            _dir: dir,
        }
    }
    pub fn nft(&self) -> Nft<'_> {
        Nft::new(&*self.commands)
    }
    pub fn ensure(&self, spec: &FirewallSpec) -> Result<(Drift, String), FirewallError> {
        let drift = firewall::ensure(&self.nft(), spec, &self.record)?;
        let listed = self.nft().list(&spec.table)?.expect("the table is loaded");
        Ok((drift, listed))
    }
}

/// A network namespace linked to the host by a veth pair, routed through the host.
pub struct Netns {
    pub name: String,
    host_if: Option<String>,
}

impl Netns {
    /// A namespace with only loopback, for tests that need nftables but no packets.
    pub fn bare(name: &str) -> Result<Self, FixtureError> {
        run(&["ip", "netns", "add", name])?;
        Ok(Netns {
            name: name.to_string(),
            host_if: None,
        })
    }

    /// Host side `host_if` gets `host_addr/30`, the namespace's `veth0` gets `ns_addr/30`
    /// with its default route through the host.
    pub fn create(
        name: &str,
        host_if: &str,
        host_addr: Ipv4Addr,
        ns_addr: Ipv4Addr,
    ) -> Result<Self, FixtureError> {
        run(&["ip", "netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
            host_if: Some(host_if.to_string()),
        };
        run(&[
            "ip", "link", "add", host_if, "type", "veth", "peer", "name", "veth0", "netns", name,
        ])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{host_addr}/30"),
            "dev",
            host_if,
        ])?;
        run(&["ip", "link", "set", host_if, "up"])?;
        let exec = |args: &[&str]| {
            let mut argv = vec!["ip", "netns", "exec", name];
            argv.extend_from_slice(args);
            run(&argv)
        };
        exec(&["ip", "link", "set", "lo", "up"])?;
        exec(&[
            "ip",
            "addr",
            "add",
            &format!("{ns_addr}/30"),
            "dev",
            "veth0",
        ])?;
        exec(&["ip", "link", "set", "veth0", "up"])?;
        exec(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &host_addr.to_string(),
        ])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        timed_cleanup(&format!("namespace {}", self.name), || {
            // Deleting one end of a veth pair deletes both.
            if let Some(host_if) = &self.host_if {
                let _ = run(&["ip", "link", "del", host_if]);
            }
            let _ = run(&["ip", "netns", "del", &self.name]);
        });
    }
}

/// A one-line HTTP responder on a thread, optionally inside a network namespace (the
/// thread enters it before binding; the socket stays there). Answers every request with
/// `body`, so a test can tell which server it reached.
pub struct Responder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    pub fn start(netns: Option<&str>, addr: SocketAddr, body: &str) -> Result<Self, FixtureError> {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (netns, body, stop2) = (netns.map(str::to_string), body.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            let bound = (|| {
                if let Some(ns) = &netns {
                    let file = File::open(format!("/run/netns/{ns}"))
                        .map_err(FixtureError::io(format!("netns {ns}")))?;
                    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(
                        |source| FixtureError::Setns {
                            netns: ns.clone(),
                            source,
                        },
                    )?;
                }
                TcpListener::bind(addr).map_err(FixtureError::io(format!("bind {addr}")))
            })();
            let listener = match bound {
                Ok(l) => l,
                Err(e) => return drop(tx.send(Err(e))),
            };
            let _ = tx.send(
                listener
                    .local_addr()
                    .map_err(FixtureError::io(format!("address of {addr}"))),
            );
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    answer(conn, &body);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|source| FixtureError::ResponderSilent { addr, source })??;
        Ok(Responder {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

/// Reads one request head (up to 2 s) and answers `body` with 200.
pub fn answer(mut conn: TcpStream, body: &str) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let _ = write!(
        conn,
        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept. If the address is unreachable by now, the thread
        // ends with the process instead of blocking this drop.
        timed_cleanup(&format!("responder {}", self.addr), || {
            if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        });
    }
}

/// A child process (a server the test started), killed and reaped by PID on drop.
pub struct Spawned {
    pub what: String,
    child: std::process::Child,
}

impl Spawned {
    pub fn start(what: &str, argv: &[&str]) -> Result<Self, FixtureError> {
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(FixtureError::io(what))?;
        Ok(Spawned {
            what: what.to_string(),
            child,
        })
    }

    /// Fails when the process already exited (a server that could not start).
    pub fn alive(&mut self) -> Result<(), FixtureError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(FixtureError::Exited {
                what: self.what.clone(),
                status,
            }),
            Err(e) => Err(FixtureError::io(&self.what)(e)),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        timed_cleanup(&self.what.clone(), || {
            let _ = self.child.kill();
            let _ = self.child.wait();
        });
    }
}
