//! aproxy end to end: the charm, with `experimental-use-aproxy` and Debian's tinyproxy as
//! the Juju HTTP proxy, makes a runner on the real LXD daemon; an HTTP and an HTTPS
//! origin sit on a "public" address (198.51.100.0/24; not 203.0.113.0/24, where this
//! sandbox puts its package registries) in a namespace. Plain `curl` in the runner, with
//! no proxy variables, must go through tinyproxy.
//!
//! Needs root, nft, tinyproxy, openssl and the LXD test daemon (scripts/testbed.sh up);
//! skips with the reason otherwise, unless CI=true.

mod firewall_support;
mod harness;
mod lab;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use firewall_support::*;
use lab::{Policy, Sim, Unit};
use serde_json::json;

const PROXY_PORT: u16 = 8888;
/// tinyproxy's BasicAuth takes `[-a-z0-9._]` only; the URL percent-encodes the `-`, so
/// the proxy accepts aproxy only if it decodes the userinfo.
const PROXY_PASSWORD: &str = "s3cret-pw";
const PROXY_USERINFO: &str = "ghr:s3cret%2Dpw";

fn tool(name: &str) -> Result<(), FixtureError> {
    run(&["sh", "-c", &format!("command -v {name}")])
        .map(drop)
        .map_err(|_| FixtureError::NotInstalled(name.to_string()))
}

/// A free /30 in 198.51.100.0/24: (host side, namespace side).
fn free_public_pair(seed: u32) -> (Ipv4Addr, Ipv4Addr) {
    let used = run(&["ip", "-o", "-4", "addr", "show"]).unwrap_or_default();
    let k = (0..63u32)
        .map(|i| 1 + (seed + i) % 63)
        .find(|k| {
            !used.contains(&format!("198.51.100.{} ", 4 * k + 1))
                && !used.contains(&format!("198.51.100.{}/", 4 * k + 1))
        })
        .expect("no free /30 in 198.51.100.0/24") as u8;
    (
        Ipv4Addr::new(198, 51, 100, 4 * k + 1),
        Ipv4Addr::new(198, 51, 100, 4 * k + 2),
    )
}

fn wait_listening(addr: SocketAddr, what: &str) {
    poll(Duration::from_secs(20), what, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
    });
}

fn curl(lxd: &Lxd, instance: &str, url: &str, resolve: &str) -> String {
    // No proxy variables at all: the interception must be transparent.
    let out = lxd
        .lxc_output(&[
            "exec",
            instance,
            "--",
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            "curl",
            "-sS",
            "-k",
            "--max-time",
            "20",
            "--resolve",
            resolve,
            url,
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn in_runner(lxd: &Lxd, instance: &str, command: &str) -> String {
    lxd.lxc(&["exec", instance, "--", "sh", "-c", command])
        .unwrap_or_else(|e| format!("({command} failed: {e})"))
}

#[test]
fn container_web_traffic_goes_through_the_proxy() {
    if let Err(reason) = root_and_tools()
        .and_then(|_| tool("tinyproxy"))
        .and_then(|_| tool("openssl"))
    {
        return skip(&reason);
    }
    // From before the first LXD call: the shared daemon has been seen to stall for a
    // minute or more, and the timings should show it.
    let t0 = Instant::now();
    let lxd = match Lxd::from_env() {
        Ok(lxd) => lxd,
        Err(reason) => return skip(&reason),
    };
    let t_daemon = t0.elapsed();
    let id = std::process::id() % 100_000;
    let s = free_octet(id + 7);
    run(&["ip", "route", "replace", "unreachable", "10.216.0.0/13"]).unwrap();
    run(&["ip", "route", "replace", "unreachable", "198.51.100.0/24"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_str().unwrap().to_string();

    // The origin: HTTP and HTTPS on a public test address.
    let (origin_gw, origin_ip) = free_public_pair(id);
    let origin = Netns::create(
        &format!("ghrap-{id}-o"),
        &format!("gap{id}o"),
        origin_gw,
        origin_ip,
    )
    .unwrap();
    let _http = Responder::start(
        Some(&origin.name),
        SocketAddr::from((origin_ip, 80)),
        "origin-http",
    )
    .unwrap();
    let (cert, key) = (format!("{dir}/cert.pem"), format!("{dir}/key.pem"));
    run(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=origin.test",
        "-days",
        "1",
        "-keyout",
        &key,
        "-out",
        &cert,
    ])
    .unwrap();
    let mut https = Spawned::start(
        "openssl s_server",
        &[
            "ip",
            "netns",
            "exec",
            &origin.name,
            "openssl",
            "s_server",
            "-quiet",
            "-accept",
            &format!("{origin_ip}:443"),
            "-cert",
            &cert,
            "-key",
            &key,
            "-www",
        ],
    )
    .unwrap();
    wait_listening(SocketAddr::from((origin_ip, 443)), "the HTTPS origin");
    https.alive().unwrap();

    // The "Juju HTTP proxy": tinyproxy in a namespace whose /etc/hosts knows origin.test.
    let proxy_ns = format!("ghrap-{id}-p");
    let hosts_dir = format!("/etc/netns/{proxy_ns}");
    std::fs::create_dir_all(&hosts_dir).unwrap();
    let _hosts_guard = RemoveDir(hosts_dir.clone());
    std::fs::write(
        format!("{hosts_dir}/hosts"),
        format!("127.0.0.1 localhost\n{origin_ip} origin.test\n"),
    )
    .unwrap();
    let proxy_ip = Ipv4Addr::new(10, 217, s, 2);
    let proxy = Netns::create(
        &proxy_ns,
        &format!("gap{id}p"),
        Ipv4Addr::new(10, 217, s, 1),
        proxy_ip,
    )
    .unwrap();
    let log = format!("{dir}/tinyproxy.log");
    std::fs::write(&log, "").unwrap();
    run(&["chmod", "0777", &dir]).unwrap();
    run(&["chmod", "0666", &log]).unwrap();
    let conf = format!("{dir}/tinyproxy.conf");
    std::fs::write(
        &conf,
        format!("User nobody\nGroup nogroup\nPort {PROXY_PORT}\nListen {proxy_ip}\nTimeout 60\nLogFile \"{log}\"\nLogLevel Info\nMaxClients 20\nConnectPort 443\nBasicAuth ghr {PROXY_PASSWORD}\n"),
    )
    .unwrap();
    let mut tinyproxy = Spawned::start(
        "tinyproxy",
        &[
            "ip",
            "netns",
            "exec",
            &proxy_ns,
            "tinyproxy",
            "-d",
            "-c",
            &conf,
        ],
    )
    .unwrap();
    wait_listening(SocketAddr::from((proxy_ip, PROXY_PORT)), "tinyproxy");
    tinyproxy.alive().unwrap();
    let t_topology = t0.elapsed();

    // The charm, told to use aproxy, with tinyproxy as the Juju HTTP proxy; the simulator
    // and the policy service are private addresses and bypass it.
    let _serial = lab::serial();
    let sim = Sim::start(&["acme"], &["acme/widgets"]);
    let _policy = Policy::start(&sim, lab::permissive_policy());
    let mut unit = Unit::new(
        &lxd,
        "ghr-aproxy",
        0,
        &sim,
        json!({"path": "acme/widgets", "virtual-machines": 1, "experimental-use-aproxy": true}),
    );
    let proxy_url = format!("http://{PROXY_USERINFO}@{proxy_ip}:{PROXY_PORT}");
    for (k, v) in [
        ("JUJU_CHARM_HTTP_PROXY", proxy_url.as_str()),
        ("JUJU_CHARM_HTTPS_PROXY", proxy_url.as_str()),
        ("JUJU_CHARM_NO_PROXY", "127.0.0.1,localhost,10.0.0.0/8"),
    ] {
        unit.h.extra_env.insert(k.into(), v.into());
    }
    let configured = unit.run("hooks/config-changed");
    unit.wait_pool(&sim, 1, Duration::from_secs(180));
    let runner = unit.instances().remove(0);
    let t_runner = t0.elapsed();

    // The runner knows nothing of the proxy; aproxy runs unprivileged with a private
    // environment file.
    let environment = in_runner(
        &lxd,
        &runner,
        "cat /etc/environment /home/ubuntu/actions-runner/.env",
    );
    assert!(
        !environment.to_lowercase().contains("proxy="),
        "{environment}"
    );
    assert_eq!(
        in_runner(
            &lxd,
            &runner,
            "stat -c '%U %a' /etc/github-runner/aproxy.env"
        )
        .trim(),
        "root 600"
    );
    let user = in_runner(&lxd, &runner, "ps -o user= -C aproxy");
    assert_eq!(user.trim(), "nobody", "aproxy's user");
    // The runner received aproxy's own binary, not the charm's.
    let binaries = in_runner(
        &lxd,
        &runner,
        "ls /usr/local/bin; cmp -s /usr/local/bin/aproxy /proc/$(pgrep -x aproxy)/exe && echo same",
    );
    assert!(!binaries.contains("github-runner"), "{binaries}");
    assert!(binaries.contains("same"), "{binaries}");
    let size = in_runner(&lxd, &runner, "stat -c %s /usr/local/bin/aproxy");
    let charm_size = std::fs::metadata(env!("CARGO_BIN_EXE_github-runner"))
        .unwrap()
        .len();
    assert!(
        size.trim().parse::<u64>().unwrap() < charm_size,
        "aproxy in the runner ({size}) is not smaller than the charm ({charm_size})"
    );

    let (http_url, https_url) = ("http://origin.test/", "https://origin.test/");
    let (resolve_http, resolve_https) = (
        format!("origin.test:80:{origin_ip}"),
        format!("origin.test:443:{origin_ip}"),
    );
    assert_eq!(curl(&lxd, &runner, http_url, &resolve_http), "origin-http");
    let page = curl(&lxd, &runner, https_url, &resolve_https);
    assert!(page.contains("s_server"), "HTTPS page: {page:.200}");
    let text = std::fs::read_to_string(&log).unwrap();
    let aproxy_log = in_runner(
        &lxd,
        &runner,
        "journalctl -u github-runner-aproxy --no-pager | tail -20",
    );
    // HTTP arrives as a proxy request (tinyproxy here, like squid by default, allows
    // CONNECT only to 443); HTTPS as a CONNECT to the SNI name.
    for target in [
        "GET http://origin.test/ HTTP/1.1",
        "CONNECT origin.test:443 ",
    ] {
        assert!(
            text.contains(target),
            "tinyproxy log lacks {target:?}:\n{text}\naproxy log:\n{aproxy_log}"
        );
    }
    // The proxy password reached tinyproxy (else it answers 407 and curl fails above),
    // and nothing else: not aproxy's log or argv, nor the charm's logs.
    let seen_elsewhere = [
        aproxy_log,
        in_runner(&lxd, &runner, "ps -eo args"),
        configured.stderr(),
        format!("{:?}", unit.h.logs()),
    ];
    for text in seen_elsewhere {
        assert!(!text.contains("s3cret"), "password leaked: {text}");
    }
    eprintln!(
        "tinyproxy saw:\n{}",
        text.lines()
            .filter(|l| l.contains("Request (file descriptor"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "timings: daemon answered {t_daemon:?}, topology {t_topology:?}, runner online {t_runner:?}, total {:?}",
        t0.elapsed()
    );
    drop(unit);
    drop(proxy);
}

/// Removes a directory the test created outside its temp dir (`/etc/netns/NAME`).
struct RemoveDir(String);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // The parent too, if this test created it and nothing else uses it (fails if not empty).
        if let Some(parent) = std::path::Path::new(&self.0).parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}
