//! Host header and SNI parsing, on a ClientHello captured from curl and on built ones.

use super::*;
use proptest::prelude::*;

/// The first flight of `curl https://example.test:PORT/` (curl 7.88, OpenSSL 3.0).
const CURL_HELLO: &[u8] = include_bytes!("testdata/curl_client_hello.bin");

/// A minimal ClientHello body with the given extensions (type, data).
fn hello_body(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend([7u8; 32]); // random
    b.push(0); // empty session id
    b.extend([0, 2, 0x13, 0x01]); // one cipher suite
    b.extend([1, 0]); // null compression
    let mut exts = Vec::new();
    for (ty, data) in extensions {
        exts.extend(ty.to_be_bytes());
        exts.extend((data.len() as u16).to_be_bytes());
        exts.extend(data);
    }
    b.extend((exts.len() as u16).to_be_bytes());
    b.extend(exts);
    b
}

fn sni_ext(name: &str) -> (u16, Vec<u8>) {
    let mut entry = vec![0u8];
    entry.extend((name.len() as u16).to_be_bytes());
    entry.extend(name.as_bytes());
    let mut data = (entry.len() as u16).to_be_bytes().to_vec();
    data.extend(entry);
    (0, data)
}

/// Wraps a ClientHello body into a handshake message split over records of `chunk` bytes.
fn records(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut msg = vec![1u8];
    msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend(body);
    let mut out = Vec::new();
    for part in msg.chunks(chunk) {
        out.extend([0x16, 0x03, 0x01]);
        out.extend((part.len() as u16).to_be_bytes());
        out.extend(part);
    }
    out
}

#[test]
fn reads_sni_from_a_real_curl_client_hello() {
    assert_eq!(
        sniff(CURL_HELLO),
        Sniffed::Tls {
            sni: Some("example.test".into())
        }
    );
}

#[test]
fn every_prefix_of_a_client_hello_asks_for_more() {
    for n in 0..CURL_HELLO.len() {
        assert_eq!(
            sniff(&CURL_HELLO[..n]),
            Sniffed::NeedMore,
            "prefix of {n} bytes"
        );
    }
}

#[test]
fn handshake_split_over_records_is_reassembled() {
    let body = hello_body(&[(0x000a, vec![0, 2, 0, 0x1d]), sni_ext("Runner.Example.COM")]);
    for chunk in [5, 16, 40, 1000] {
        assert_eq!(
            sniff(&records(&body, chunk)),
            Sniffed::Tls {
                sni: Some("runner.example.com".into())
            },
            "chunk {chunk}"
        );
    }
}

#[test]
fn client_hello_without_sni_has_no_name() {
    assert_eq!(
        sniff(&records(
            &hello_body(&[(0x000a, vec![0, 2, 0, 0x1d])]),
            1000
        )),
        Sniffed::Tls { sni: None }
    );
    let mut bare = hello_body(&[]);
    bare.truncate(bare.len() - 2); // no extensions block at all (TLS 1.2 allows that)
    assert_eq!(sniff(&records(&bare, 1000)), Sniffed::Tls { sni: None });
}

#[test]
fn bad_server_names_and_lengths_are_refused() {
    for name in ["a b", "host:443", "x\u{0}y", ""] {
        let got = sniff(&records(&hello_body(&[sni_ext(name)]), 1000));
        assert!(matches!(got, Sniffed::Unknown(_)), "{name:?}: {got:?}");
    }
    let mut lying = hello_body(&[sni_ext("a.example")]);
    let n = lying.len();
    lying[n - 11] = 0xff; // the name length now points past the end
    assert!(matches!(sniff(&records(&lying, 1000)), Sniffed::Unknown(_)));
    let mut server_hello = records(&hello_body(&[]), 1000);
    server_hello[5] = 2;
    assert!(matches!(sniff(&server_hello), Sniffed::Unknown(_)));
}

#[test]
fn http_host_header_with_and_without_port() {
    let cases: [(&[u8], Option<&str>, Option<u16>); 5] = [
        (
            b"GET / HTTP/1.1\r\nHost: Example.com\r\nAccept: */*\r\n\r\n",
            Some("example.com"),
            None,
        ),
        (
            b"GET /x HTTP/1.1\r\nUser-Agent: a:b\r\nhost:  example.com:8080 \r\n\r\n",
            Some("example.com"),
            Some(8080),
        ),
        (
            b"POST / HTTP/1.1\r\nHOST: [2001:db8::1]:81\r\n\r\nbody",
            Some("[2001:db8::1]"),
            Some(81),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: 203.0.113.5\r\n\r\n",
            Some("203.0.113.5"),
            None,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", None, None),
    ];
    for (req, host, port) in cases {
        let want = Sniffed::Http {
            host: host.map(String::from),
            port,
        };
        assert_eq!(sniff(req), want, "{}", String::from_utf8_lossy(req));
    }
}

#[test]
fn incomplete_http_head_asks_for_more() {
    assert_eq!(sniff(b"GET / HTTP/1.1\r\nHost: exa"), Sniffed::NeedMore);
    assert_eq!(sniff(b"GE"), Sniffed::NeedMore);
}

#[test]
fn other_protocols_and_bad_hosts_are_unknown() {
    for bad in [
        &b"SSH-2.0-OpenSSH_9.2\r\n"[..],
        b"\x00\x01binary",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: ::1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x:port\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\xff\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        &format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(200)).into_bytes(),
    ] {
        assert!(
            matches!(sniff(bad), Sniffed::Unknown(_)),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn endless_heads_are_cut_off() {
    let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
    head.resize(MAX_SNIFF, b'a');
    assert!(matches!(sniff(&head), Sniffed::Unknown(_)));
}

proptest! {
    /// Arbitrary bytes never panic the parser (it reads attacker-controlled input).
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = sniff(&bytes);
        let mut tls = vec![0x16, 0x03, 0x01];
        tls.extend(&bytes);
        let _ = sniff(&tls);
    }

    /// Flipping any one byte of a real ClientHello never panics either.
    #[test]
    fn mutated_hello_never_panics(at in 0usize..517, value in any::<u8>()) {
        let mut hello = CURL_HELLO.to_vec();
        hello[at % CURL_HELLO.len()] = value;
        let _ = sniff(&hello);
    }
}
