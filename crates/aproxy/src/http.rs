//! Pure rewriting of a plain HTTP request head (parsed by `httparse`) into the form an
//! HTTP proxy expects (absolute URI), sent with `Connection: close` so each connection carries one request.
//! Plain HTTP is relayed this way rather than tunnelled, as proxies commonly refuse
//! `CONNECT` to port 80 (squid's default `SSL_ports` rule, for one).

/// Headers the client meant for the hop it thought it was talking to; they must not
/// reach the proxy, which gets our own connection handling instead.
const HOP_HEADERS: [&str; 5] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "upgrade",
];

/// The most headers a request head may carry; clients send a dozen or two.
pub const MAX_HEADERS: usize = 100;

/// Rewrites the request head at the start of `buf` for the proxy: the request target
/// becomes `http://{authority}{path}`, hop-by-hop headers are replaced by
/// `Connection: close`, and `Proxy-Authorization` is added when the proxy needs it.
/// Returns the new head and the length of the old one (the body, if any, follows it),
/// or `None` when `buf` does not start with a whole origin-form HTTP/1.x request head.
pub fn proxy_request_head(
    buf: &[u8],
    authority: &str,
    basic_auth: Option<&str>,
) -> Option<(Vec<u8>, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_len) = request.parse(buf).ok()? else {
        return None;
    };
    let (method, target, minor) = (request.method?, request.path?, request.version?);
    let authority = authority.strip_suffix(":80").unwrap_or(authority);
    let target = if target.starts_with('/') {
        format!("http://{authority}{target}")
    } else if target.starts_with("http://") {
        target.to_string() // already absolute
    } else {
        return None; // `*` (OPTIONS) or authority-form: nothing a proxy should get here
    };
    let mut out = format!("{method} {target} HTTP/1.{minor}\r\n").into_bytes();
    for header in request.headers.iter() {
        if !HOP_HEADERS
            .iter()
            .any(|h| header.name.eq_ignore_ascii_case(h))
        {
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(header.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    if let Some(auth) = basic_auth {
        out.extend_from_slice(format!("Proxy-Authorization: Basic {auth}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    Some((out, head_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(head: &str, authority: &str, auth: Option<&str>) -> Option<String> {
        proxy_request_head(head.as_bytes(), authority, auth).map(|(v, len)| {
            assert_eq!(len, head.find("\r\n\r\n").unwrap() + 4, "head length");
            String::from_utf8(v).unwrap()
        })
    }

    #[test]
    fn origin_form_becomes_absolute_with_connection_close() {
        let head = "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            rewrite(head, "example.com:80", None).unwrap(),
            "GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn other_ports_stay_in_the_uri_and_credentials_are_added() {
        let head = "POST /up HTTP/1.0\r\nHost: example.com:8080\r\nProxy-Authorization: Basic stolen\r\nContent-Length: 3\r\n\r\nabc";
        let out = rewrite(head, "example.com:8080", Some("dTpw")).unwrap();
        assert!(
            out.starts_with("POST http://example.com:8080/up HTTP/1.0\r\n"),
            "{out}"
        );
        assert!(
            out.contains("Proxy-Authorization: Basic dTpw\r\n") && !out.contains("stolen"),
            "{out}"
        );
        assert!(
            out.contains("Content-Length: 3\r\n") && !out.contains("abc"),
            "{out}"
        );
    }

    #[test]
    fn non_origin_forms_are_refused() {
        assert!(rewrite("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "a:80", None).is_none());
        assert!(rewrite("CONNECT a:443 HTTP/1.1\r\n\r\n", "a:443", None).is_none());
        assert!(rewrite("GET / HTTP/1.1\r\nHost: a\r\n", "a:80", None).is_none());
    }
}
