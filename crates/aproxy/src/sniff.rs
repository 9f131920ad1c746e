//! Pure parsing of the first bytes a client sends: the `Host` header of an HTTP/1.x
//! request (its head parsed by `httparse`), or the server name (SNI) of a TLS
//! ClientHello. Nothing is consumed, so the caller forwards the same bytes unchanged
//! once it knows where they go.

use crate::http::MAX_HEADERS;

/// The most a client may send before we know where it is going. A ClientHello with
/// post-quantum key shares is about 2 KiB; request heads are rarely above 8 KiB.
pub const MAX_SNIFF: usize = 32 * 1024;

/// What the buffered bytes tell about the destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// Not enough bytes yet to decide; read more (up to [`MAX_SNIFF`]).
    NeedMore,
    /// A plain HTTP/1.x request; `host` from the Host header (port split off), if any.
    Http {
        host: Option<String>,
        port: Option<u16>,
    },
    /// A TLS ClientHello; `sni` is its server name, if it carries one.
    Tls { sni: Option<String> },
    /// Neither HTTP nor TLS, or malformed: the connection cannot be routed by name.
    Unknown(&'static str),
}

/// Decides what `buf` (everything the client sent so far) is.
pub fn sniff(buf: &[u8]) -> Sniffed {
    match buf.first() {
        None => Sniffed::NeedMore,
        Some(0x16) => sniff_tls(buf),
        Some(b'A'..=b'Z') => sniff_http(buf),
        Some(_) => Sniffed::Unknown("neither an HTTP request nor a TLS handshake"),
    }
}

/// `httparse` turns a client speaking another protocol (an SSH banner, say) away as soon
/// as its first line is wrong, without waiting for a timeout.
fn sniff_http(buf: &[u8]) -> Sniffed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if buf.len() >= MAX_SNIFF => {
            return Sniffed::Unknown("HTTP request head too long")
        }
        Ok(httparse::Status::Partial) => return Sniffed::NeedMore,
        Err(httparse::Error::TooManyHeaders) => return Sniffed::Unknown("too many HTTP headers"),
        Err(_) => return Sniffed::Unknown("not an HTTP/1.x request"),
    }
    let host = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| std::str::from_utf8(h.value).map(str::trim));
    match host {
        None | Some(Ok("")) => Sniffed::Http {
            host: None,
            port: None,
        },
        Some(Ok(value)) => match split_host_port(value) {
            Some((host, port)) => Sniffed::Http {
                host: Some(host),
                port,
            },
            None => Sniffed::Unknown("malformed Host header"),
        },
        Some(Err(_)) => Sniffed::Unknown("Host header is not ASCII"),
    }
}

/// `name`, `name:port`, `[v6]` or `[v6]:port`; the name is checked to be a plain
/// hostname or address so it can go into a CONNECT line as is.
pub(crate) fn split_host_port(value: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{v6}]"), port)
    } else {
        match value.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return None, // IPv6 must be bracketed
            Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
            None => (value.to_string(), None),
        }
    };
    valid_hostname(host.trim_start_matches('[').trim_end_matches(']'))
        .then_some((host.to_ascii_lowercase(), port))
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
}

/// Reassembles the handshake message from as many TLS records as it spans, then reads
/// the server_name extension of the ClientHello (RFC 8446 4.1.2, RFC 6066 3).
fn sniff_tls(buf: &[u8]) -> Sniffed {
    let mut handshake = Vec::new();
    let mut rest = buf;
    loop {
        if rest.len() < 5 {
            return need_more(buf);
        }
        if rest[0] != 0x16 || rest[1] != 0x03 {
            return Sniffed::Unknown("not a TLS handshake record");
        }
        let len = u16::from_be_bytes([rest[3], rest[4]]) as usize;
        if rest.len() < 5 + len {
            return need_more(buf);
        }
        handshake.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
        if handshake.len() >= 4 {
            if handshake[0] != 0x01 {
                return Sniffed::Unknown("first handshake message is not a ClientHello");
            }
            let body_len =
                u32::from_be_bytes([0, handshake[1], handshake[2], handshake[3]]) as usize;
            if handshake.len() >= 4 + body_len {
                return match client_hello_sni(&handshake[4..4 + body_len]) {
                    Ok(sni) => Sniffed::Tls { sni },
                    Err(reason) => Sniffed::Unknown(reason),
                };
            }
        }
    }
}

fn need_more(buf: &[u8]) -> Sniffed {
    if buf.len() >= MAX_SNIFF {
        Sniffed::Unknown("TLS ClientHello too long")
    } else {
        Sniffed::NeedMore
    }
}

/// A cursor over a ClientHello; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated ClientHello");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<usize, &'static str> {
        Ok(self.take(1)?[0] as usize)
    }
    fn u16(&mut self) -> Result<usize, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }
}

fn client_hello_sni(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader(body);
    r.take(2 + 32)?; // legacy_version, random
    let n = r.u8()?;
    r.take(n)?; // legacy_session_id
    let n = r.u16()?;
    r.take(n)?; // cipher_suites
    let n = r.u8()?;
    r.take(n)?; // legacy_compression_methods
    if r.0.is_empty() {
        return Ok(None); // no extensions at all
    }
    let n = r.u16()?;
    let mut exts = Reader(r.take(n)?);
    while !exts.0.is_empty() {
        let ext_type = exts.u16()?;
        let n = exts.u16()?;
        let data = exts.take(n)?;
        if ext_type != 0x0000 {
            continue;
        }
        let mut list = Reader(data);
        let n = list.u16()?;
        let mut names = Reader(list.take(n)?);
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let n = names.u16()?;
            let name = names.take(n)?;
            if name_type == 0 {
                let name = std::str::from_utf8(name).map_err(|_| "server name is not ASCII")?;
                if !valid_hostname(name) || name.contains(':') {
                    return Err("server name is not a hostname");
                }
                return Ok(Some(name.to_ascii_lowercase()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
#[path = "sniff_tests.rs"]
mod tests;
