//! Routing, upstream URL handling, and the server end to end on loopback with a stub
//! CONNECT proxy (the container test in tests/aproxy.rs uses a real one).

use super::*;

fn orig(s: &str) -> Option<SocketAddrV4> {
    Some(s.parse().unwrap())
}

#[test]
fn names_win_over_addresses_and_the_original_port_wins() {
    let http = |h: Option<&str>, p| Sniffed::Http {
        host: h.map(String::from),
        port: p,
    };
    let tls = |n: Option<&str>| Sniffed::Tls {
        sni: n.map(String::from),
    };
    assert_eq!(
        route(&http(Some("a.test"), None), orig("203.0.113.5:80")).unwrap(),
        "a.test:80"
    );
    assert_eq!(
        route(&http(Some("a.test"), Some(8080)), orig("203.0.113.5:80")).unwrap(),
        "a.test:80"
    );
    assert_eq!(
        route(&http(Some("a.test"), Some(8080)), None).unwrap(),
        "a.test:8080"
    );
    assert_eq!(
        route(&http(Some("a.test"), None), None).unwrap(),
        "a.test:80"
    );
    assert_eq!(
        route(&http(None, None), orig("203.0.113.5:80")).unwrap(),
        "203.0.113.5:80"
    );
    assert_eq!(
        route(&tls(Some("b.test")), orig("203.0.113.6:443")).unwrap(),
        "b.test:443"
    );
    assert_eq!(route(&tls(Some("b.test")), None).unwrap(), "b.test:443");
    assert_eq!(
        route(&tls(None), orig("203.0.113.6:443")).unwrap(),
        "203.0.113.6:443"
    );
    assert_eq!(
        route(&Sniffed::Unknown("x"), orig("203.0.113.7:443")).unwrap(),
        "203.0.113.7:443"
    );
    assert!(route(&tls(None), None).is_err());
    assert!(route(&Sniffed::Unknown("x"), None).is_err());
}

#[test]
fn upstream_url_parsing_keeps_credentials_out_of_debug_and_errors() {
    let u = Upstream::from_url("http://user:s3cret@proxy.internal:3128").unwrap();
    assert_eq!(u.authority, "proxy.internal:3128");
    assert!(!format!("{u:?}").contains("s3cret"));
    assert_eq!(
        Upstream::from_url("http://10.0.0.1").unwrap().authority,
        "10.0.0.1:80"
    );
    let enc = Upstream::from_url("http://us%40er:p%3Ass@p:1").unwrap();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(enc.basic_auth.unwrap())
        .unwrap();
    assert_eq!(decoded, b"us@er:p:ss");
    let err = Upstream::from_url("socks5://user:s3cret@proxy:1080")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("s3cret") && err.contains("http://"), "{err}");
    // Without a scheme, userinfo is still hidden.
    let err = Upstream::from_url("user:s3cret@proxy:3128")
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("s3cret") && err.contains("@proxy:3128"),
        "{err}"
    );
}

#[test]
fn upstream_url_forms() {
    let authority = |raw: &str| Upstream::from_url(raw).map(|u| u.authority);
    assert_eq!(
        authority("HTTP://Proxy.Lan:3128/").unwrap(),
        "proxy.lan:3128"
    );
    assert_eq!(
        authority("http://[2001:db8::1]:8080").unwrap(),
        "[2001:db8::1]:8080"
    );
    assert_eq!(
        authority("http://[2001:db8::1]").unwrap(),
        "[2001:db8::1]:80"
    );
    for bad in [
        "proxy:3128",
        "http://",
        "http://user:pw@",
        "http://proxy:port",
        "http://proxy:99999",
        "http://2001:db8::1:80",
        "http://a b:1",
    ] {
        let err = Upstream::from_url(bad).unwrap_err().to_string();
        assert!(!err.contains("pw"), "{err}");
    }
    // No user name, no credentials (as the URL standard reads `http://:pw@host`).
    assert!(Upstream::from_url("http://:pw@p:1")
        .unwrap()
        .basic_auth
        .is_none());
    let plain = Upstream::from_url("http://u:@p:1").unwrap().basic_auth;
    assert_eq!(plain.as_deref(), Some("dTo=")); // base64("u:")
}

#[test]
fn connect_answers_are_judged_on_the_status_code() {
    let judge = |a: &[u8]| connect_answer(a, "t:443").map_err(|e| e.to_string());
    assert_eq!(
        judge(b"HTTP/1.1 200 Connection established\r\n\r\nhello"),
        Ok(Some(39))
    );
    assert_eq!(judge(b"HTTP/1.0 200 OK\r\nVia: x\r\n"), Ok(None));
    let refused = judge(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").unwrap_err();
    assert!(
        refused.ends_with("407 Proxy Authentication Required"),
        "{refused}"
    );
    assert!(judge(b"SSH-2.0-x\r\n\r\n")
        .unwrap_err()
        .contains("malformed"));
    let endless = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; 17 * 1024]].concat();
    assert!(judge(&endless).unwrap_err().contains("too long"));
}

proptest::proptest! {
    /// Whatever the URL, parsing never panics and a password never reaches the error.
    #[test]
    fn upstream_errors_never_show_the_password(url in "[a-zA-Z0-9:/@%\\[\\]. ?#-]{0,40}") {
        let with_secret = format!("{url}s3cret@");
        if let Err(e) = Upstream::from_url(&with_secret) {
            proptest::prop_assert!(!e.to_string().contains("s3cret"), "{}", e);
        }
    }
}

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A stub HTTP proxy: records each request head and answers `status`. With 200 it
/// tunnels a CONNECT, or forwards an absolute-URI request, to the named `host:port`.
async fn stub_proxy(
    status: &'static str,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut conn = BufReader::new(conn);
                let mut head = String::new();
                while !head.ends_with("\r\n\r\n") {
                    if conn.read_line(&mut head).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
                let _ = tx.send(head.clone());
                let mut conn = conn.into_inner();
                if !status.starts_with("200") {
                    let answer = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                    return;
                }
                let target = head.split(' ').nth(1).unwrap().to_string();
                let mut origin = if head.starts_with("CONNECT ") {
                    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                    TcpStream::connect(target).await.unwrap()
                } else {
                    let authority = target
                        .trim_start_matches("http://")
                        .split('/')
                        .next()
                        .unwrap();
                    let mut origin = TcpStream::connect(authority).await.unwrap();
                    origin.write_all(head.as_bytes()).await.unwrap();
                    origin
                };
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut origin).await;
            });
        }
    });
    (addr, rx)
}

/// An origin that answers one request with a fixed body.
async fn origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\norigin")
                .await;
        }
    });
    addr
}

async fn start_aproxy(upstream: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = Upstream::from_url(upstream).unwrap();
    tokio::spawn(serve(listener, upstream, std::future::pending()));
    addr
}

#[tokio::test]
async fn http_request_goes_to_the_proxy_in_absolute_form_with_credentials() {
    let origin = origin().await;
    let (proxy, mut seen) = stub_proxy("200 OK").await;
    let aproxy = start_aproxy(&format!("http://u:p%40ss@{proxy}")).await;
    let mut client = TcpStream::connect(aproxy).await.unwrap();
    let request = format!(
        "GET /x HTTP/1.1\r\nHost: localhost:{}\r\nConnection: keep-alive\r\n\r\n",
        origin.port()
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    assert!(answer.ends_with("origin"), "{answer}");
    let head = seen.recv().await.unwrap();
    let want = format!("GET http://localhost:{}/x HTTP/1.1\r\n", origin.port());
    assert!(head.starts_with(&want), "{head}");
    // base64("u:p@ss")
    assert!(
        head.contains("Proxy-Authorization: Basic dTpwQHNz\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Connection: close\r\n") && !head.contains("keep-alive"),
        "{head}"
    );
}

#[tokio::test]
async fn proxy_refusal_of_http_reaches_the_client() {
    let (proxy, _seen) = stub_proxy("403 Forbidden").await;
    let aproxy = start_aproxy(&format!("http://{proxy}")).await;
    let mut client = TcpStream::connect(aproxy).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
}

#[tokio::test]
async fn tls_is_tunnelled_by_sni_and_a_refused_connect_closes_the_client() {
    let (proxy, mut seen) = stub_proxy("403 Forbidden").await;
    let aproxy = start_aproxy(&format!("http://{proxy}")).await;
    let mut client = TcpStream::connect(aproxy).await.unwrap();
    client
        .write_all(include_bytes!("testdata/curl_client_hello.bin"))
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "client left hanging");
    assert!(answer.is_empty());
    let head = seen.recv().await.unwrap();
    assert!(
        head.starts_with("CONNECT example.test:443 HTTP/1.1\r\n"),
        "{head}"
    );
}
