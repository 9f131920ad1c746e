//! The policy service's connection bounds, on loopback with small limits: one source
//! address gets its share of connections and no more while others are served; the
//! total is bounded; a silent or idle connection is closed after the header-read time;
//! and the charm's listener has a budget of its own that runners cannot use up.
//! (The real binary under the unit's limits, against a real container's 800
//! connections, is `policy_listeners_lxd.rs`.)

mod policy_support;

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use policy_service::listen::Limits;
use policy_support::{github, json, request, Service};

/// Small limits; a header time long enough that held connections stay held while a
/// test runs, unless `header_read` says otherwise.
fn small(per_source: usize, total: usize) -> Limits {
    Limits {
        per_source,
        total,
        header_read: Duration::from_secs(60),
        request: Duration::from_secs(20),
    }
}

fn addr(url: &str) -> SocketAddrV4 {
    url.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection from `source` (any address in 127.0.0.0/8 is this machine). The
/// server accepts in order, so it has dealt with earlier connections before this one.
fn connect_from(source: &str, to: SocketAddrV4) -> TcpStream {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    let local: SocketAddrV4 = format!("{source}:0").parse().unwrap();
    socket::bind(fd.as_raw_fd(), &SockaddrIn::from(local)).unwrap();
    socket::connect(fd.as_raw_fd(), &SockaddrIn::from(to)).unwrap();
    TcpStream::from(fd)
}

/// Whether the server closed `stream` (EOF or reset) within 10 s.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        Ok(_) => false,
    }
}

/// A whole HTTP/1.1 exchange on `stream`: the status line's code.
fn health_on(stream: &mut TcpStream) -> Option<u16> {
    let request = b"GET /health HTTP/1.1\r\nHost: policy\r\nConnection: close\r\n\r\n";
    stream.write_all(request).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn one_source_gets_its_share_and_others_are_served() {
    let limits = [small(3, 100), Limits::CHARM];
    let s = Service::with_limits(github(), limits);
    let to = addr(s.url());
    let held: Vec<TcpStream> = (0..3).map(|_| connect_from("127.0.0.2", to)).collect();
    let mut fourth = connect_from("127.0.0.2", to);
    assert!(
        closed_by_server(&mut fourth),
        "a fourth from one source is closed"
    );
    assert_eq!(health_on(&mut connect_from("127.0.0.3", to)), Some(204));
    drop(held);
    // Once its connections are gone, the source is served again (the server notices
    // the closes a moment later).
    let mut again = None;
    for _ in 0..100 {
        again = health_on(&mut connect_from("127.0.0.2", to));
        if again.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(again, Some(204));
}

#[test]
fn the_total_is_bounded_and_the_charm_keeps_its_own_budget() {
    let limits = [small(2, 4), small(2, 2)];
    let s = Service::with_limits(github(), limits);
    let to = addr(s.url());
    let held: Vec<TcpStream> = ["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"]
        .iter()
        .map(|src| connect_from(src, to))
        .collect();
    let mut fifth = connect_from("127.0.0.4", to);
    assert!(closed_by_server(&mut fifth), "over the total: closed");
    // The charm's listener is not affected by the runners' flood.
    let token = s.one_time_token();
    assert_eq!(token.len(), 64);
    let r = request(s.charm_url(), "GET", "/health", None, None);
    assert_eq!(r.status, 204);
    drop(held);
    // The server notices the closes a moment later: wait for room with a request that
    // uses no token, so the check below meets a freed total.
    let served = (0..100).any(|_| {
        let ok = health_on(&mut connect_from("127.0.0.4", to)) == Some(204);
        if !ok {
            std::thread::sleep(Duration::from_millis(50));
        }
        ok
    });
    assert!(served, "room again once the held connections closed");
    let check = request(
        s.url(),
        "POST",
        "/push/check-run",
        Some(&token),
        json(r#"{"repository_name": "canonical/app"}"#),
    );
    assert_eq!(check.status, 204);
}

#[test]
fn silent_and_idle_connections_are_closed_after_the_header_time() {
    let quick = Limits {
        header_read: Duration::from_millis(300),
        ..small(10, 10)
    };
    let s = Service::with_limits(github(), [quick, Limits::CHARM]);
    let to = addr(s.url());
    // Never sends a byte.
    let mut silent = connect_from("127.0.0.2", to);
    assert!(closed_by_server(&mut silent));
    // Sends half a request head and stalls.
    let mut slow = connect_from("127.0.0.2", to);
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut rest = String::new();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = slow.read_to_string(&mut rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
        "{rest:?}"
    );
    // Keeps a connection alive after one request, then goes quiet.
    let mut idle = connect_from("127.0.0.2", to);
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 204");
    let mut rest = Vec::new();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let ended = idle.read_to_end(&mut rest);
    assert!(ended.is_ok(), "closed by the server: {ended:?}");
}
