//! The proxy loop: accept a redirected connection, sniff where it goes, `CONNECT` there
//! through the upstream proxy, then copy bytes both ways.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::http::proxy_request_head;
use super::sniff::{sniff, split_host_port, Sniffed};
use super::AproxyError;

/// How long a client may take to send its first request or ClientHello.
pub const SNIFF_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to the upstream proxy and its CONNECT answer may take.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP proxy to tunnel through, from the Juju proxy URL.
#[derive(Clone)]
pub struct Upstream {
    /// `host:port` to dial.
    pub authority: String,
    /// Base64 `user:password` for `Proxy-Authorization`, when the URL carries them.
    basic_auth: Option<String>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach logs.
        let auth = if self.basic_auth.is_some() {
            "<redacted>"
        } else {
            "none"
        };
        write!(
            f,
            "Upstream {{ authority: {:?}, basic_auth: {auth} }}",
            self.authority
        )
    }
}

impl Upstream {
    /// `http://[user:password@]host[:port][/]`; the port defaults to 80 as for any HTTP
    /// URL, and the percent-encoded user and password are decoded for the proxy.
    pub fn from_url(raw: &str) -> Result<Self, AproxyError> {
        let bad = |reason: &str| AproxyError::BadUpstream {
            url: redact_userinfo(raw),
            reason: reason.to_string(),
        };
        let (scheme, rest) = raw.split_once("://").ok_or_else(|| bad("not a URL"))?;
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(bad("only http:// proxies are supported"));
        }
        // A path (`/`, as some proxy settings carry) means nothing to a proxy: ignored.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (userinfo, host_port),
            None => ("", authority),
        };
        let (host, port) = split_host_port(host_port)
            .ok_or_else(|| bad("expected a host name or address and an optional port"))?;
        let basic_auth = basic_auth(userinfo);
        Ok(Upstream {
            authority: format!("{host}:{}", port.unwrap_or(80)),
            basic_auth,
        })
    }
}

/// Base64 `user:password` from URL userinfo, whose parts are percent-encoded while the
/// proxy wants the bytes themselves; `None` without a user name.
fn basic_auth(userinfo: &str) -> Option<String> {
    use base64::Engine as _;
    use percent_encoding::percent_decode_str;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    if user.is_empty() {
        return None;
    }
    let mut pair: Vec<u8> = percent_decode_str(user).collect();
    pair.push(b':');
    pair.extend(percent_decode_str(password));
    Some(base64::engine::general_purpose::STANDARD.encode(pair))
}

/// Hides everything before the last `@` (and after the scheme, if any): a URL written
/// without `http://` may still carry `user:password@`.
fn redact_userinfo(raw: &str) -> String {
    match raw.rfind('@') {
        Some(at) => {
            let start = raw.find("://").filter(|s| *s < at).map_or(0, |s| s + 3);
            format!("{}<redacted>{}", &raw[..start], &raw[at..])
        }
        None => raw.to_string(),
    }
}

/// Where to `CONNECT` (`host:port`), from what the client sent and where it was headed
/// before the redirect (`original`, `None` when it connected to us directly).
/// A name beats an address, so the proxy can apply its domain rules; the original port
/// beats a port in the Host header, since it is where the client really connected.
pub fn route(sniffed: &Sniffed, original: Option<SocketAddrV4>) -> Result<String, AproxyError> {
    let by_name = |name: &Option<String>, claimed: Option<u16>, default: u16| {
        let port = original.map(|o| o.port()).or(claimed).unwrap_or(default);
        match (name, original) {
            (Some(name), _) => Ok(format!("{name}:{port}")),
            (None, Some(o)) => Ok(format!("{}:{port}", o.ip())),
            (None, None) => Err(AproxyError::Unroutable(
                "no Host/SNI and no original destination",
            )),
        }
    };
    match sniffed {
        Sniffed::Http { host, port } => by_name(host, *port, 80),
        Sniffed::Tls { sni } => by_name(sni, None, 443),
        // Another protocol on a redirected port still goes where it was headed.
        Sniffed::Unknown(why) => original
            .map(|o| o.to_string())
            .ok_or(AproxyError::Unroutable(why)),
        Sniffed::NeedMore => Err(AproxyError::Unroutable("incomplete request")),
    }
}

/// The `aproxy` subcommand: listens on `listen` and serves until SIGTERM or SIGINT.
pub fn run(listen: SocketAddr, upstream_url: &str) -> Result<(), AproxyError> {
    let upstream = Upstream::from_url(upstream_url)?;
    let io = |context: String| move |source| AproxyError::Io { context, source };
    // One thread: a runner's few connections need no more, and the binary stays small.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("starting runtime".into()))?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(io(format!("listening on {listen}")))?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io("installing SIGTERM handler".into()))?;
        log::info!(
            "aproxy: listening on {listen}, upstream {}",
            upstream.authority
        );
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        serve(listener, upstream, shutdown).await
    })
}

/// Accepts connections until `shutdown` completes; each is carried on its own task and a
/// failure only ends that connection.
pub async fn serve(
    listener: TcpListener,
    upstream: Upstream,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AproxyError> {
    let upstream = Arc::new(upstream);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let (client, peer) = accepted.map_err(|source| AproxyError::Io { context: "accept".into(), source })?;
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Err(e) = carry(client, &upstream).await {
                        log::warn!("aproxy: connection from {peer}: {e}");
                    }
                });
            }
        }
    }
}

async fn carry(mut client: TcpStream, upstream: &Upstream) -> Result<(), AproxyError> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| AproxyError::Io { context, source }
    };
    let original = original_destination(&client);
    let mut head = Vec::with_capacity(2048);
    let sniffed = tokio::time::timeout(SNIFF_TIMEOUT, async {
        let mut buf = [0u8; 4096];
        loop {
            match sniff(&head) {
                Sniffed::NeedMore => {}
                done => return Ok(done),
            }
            let n = client.read(&mut buf).await?;
            if n == 0 {
                return Ok(Sniffed::Unknown("client closed before sending a request"));
            }
            // `sniff` gives up at MAX_SNIFF, so the buffer stays bounded.
            head.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .map_err(|_| AproxyError::SniffTimeout(SNIFF_TIMEOUT))?
    .map_err(io("reading from client"))?;
    let target = route(&sniffed, original)?;
    if let Sniffed::Http { .. } = sniffed {
        return relay_http(client, upstream, &head, &target, original).await;
    }
    log::info!("aproxy: {:?} -> CONNECT {target}", original);
    let (mut server, leftover) = tokio::time::timeout(UPSTREAM_TIMEOUT, connect(upstream, &target))
        .await
        .map_err(|_| AproxyError::UpstreamConnect {
            proxy: upstream.authority.clone(),
            source: std::io::ErrorKind::TimedOut.into(),
        })??;
    client
        .write_all(&leftover)
        .await
        .map_err(io("writing to client"))?;
    server
        .write_all(&head)
        .await
        .map_err(io("writing to upstream"))?;
    tokio::io::copy_bidirectional(&mut client, &mut server)
        .await
        .map_err(io("relaying"))?;
    Ok(())
}

/// Sends the one request of a plain HTTP connection to the proxy in absolute form and
/// relays the answer; `Connection: close` makes the client open a new connection (and so
/// come through here again) for its next request.
async fn relay_http(
    mut client: TcpStream,
    upstream: &Upstream,
    head: &[u8],
    target: &str,
    original: Option<SocketAddrV4>,
) -> Result<(), AproxyError> {
    let io = |context: &'static str| {
        move |source| AproxyError::Io {
            context: context.into(),
            source,
        }
    };
    // `sniff` only reports Http once the whole head has arrived.
    let (request, head_len) = proxy_request_head(head, target, upstream.basic_auth.as_deref())
        .ok_or(AproxyError::Unroutable(
            "HTTP request target is not in origin form",
        ))?;
    log::info!("aproxy: {original:?} -> proxy request for http://{target}");
    let unreachable = |source| AproxyError::UpstreamConnect {
        proxy: upstream.authority.clone(),
        source,
    };
    let mut server =
        tokio::time::timeout(UPSTREAM_TIMEOUT, TcpStream::connect(&upstream.authority))
            .await
            .map_err(|_| unreachable(std::io::ErrorKind::TimedOut.into()))?
            .map_err(unreachable)?;
    server
        .write_all(&request)
        .await
        .map_err(io("writing to upstream"))?;
    server
        .write_all(&head[head_len..])
        .await
        .map_err(io("writing to upstream"))?;
    tokio::io::copy_bidirectional(&mut client, &mut server)
        .await
        .map_err(io("relaying"))?;
    Ok(())
}

/// Opens the tunnel; returns the stream and any bytes that came after the proxy's answer.
async fn connect(upstream: &Upstream, target: &str) -> Result<(TcpStream, Vec<u8>), AproxyError> {
    let refused = |source| AproxyError::UpstreamConnect {
        proxy: upstream.authority.clone(),
        source,
    };
    let mut server = TcpStream::connect(&upstream.authority)
        .await
        .map_err(refused)?;
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &upstream.basic_auth {
        request.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
    }
    request.push_str("\r\n");
    server
        .write_all(request.as_bytes())
        .await
        .map_err(refused)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = server.read(&mut buf).await.map_err(refused)?;
        if n == 0 {
            return Err(AproxyError::UpstreamRefused {
                target: target.into(),
                status: "closed without answer".into(),
            });
        }
        answer.extend_from_slice(&buf[..n]);
        if let Some(end) = connect_answer(&answer, target)? {
            return Ok((server, answer[end..].to_vec()));
        }
    }
}

/// Judges the proxy's answer to CONNECT: `Some(head length)` once a 2xx head is whole,
/// `None` while more is needed, an error for any other status or a malformed head.
fn connect_answer(answer: &[u8], target: &str) -> Result<Option<usize>, AproxyError> {
    let refused = |status: String| AproxyError::UpstreamRefused {
        target: target.into(),
        status,
    };
    let mut headers = [httparse::EMPTY_HEADER; super::http::MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(answer) {
        Ok(httparse::Status::Complete(end)) => match response.code {
            Some(200..=299) => Ok(Some(end)),
            code => Err(refused(format!(
                "{} {}",
                code.unwrap_or_default(),
                response.reason.unwrap_or_default()
            ))),
        },
        Ok(httparse::Status::Partial) if answer.len() > 16 * 1024 => {
            Err(refused("answer head too long".into()))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(refused(format!("malformed answer: {e}"))),
    }
}

/// Where the client was headed before nftables redirected it to us (`SO_ORIGINAL_DST`);
/// `None` when it was not redirected (the "original" is then our own address).
fn original_destination(client: &TcpStream) -> Option<SocketAddrV4> {
    let raw = nix::sys::socket::getsockopt(client, nix::sys::socket::sockopt::OriginalDst).ok()?;
    let addr = SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(raw.sin_addr.s_addr)),
        u16::from_be(raw.sin_port),
    );
    match client.local_addr() {
        Ok(SocketAddr::V4(local)) if local == addr => None,
        _ => Some(addr),
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
