//! Pure rewriting of a plain HTTP request head into the form an HTTP proxy expects
//! (absolute URI), sent with `Connection: close` so each connection carries one request.
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

/// Rewrites the request head (`head` ends with the blank line) for the proxy: the
/// request target becomes `http://{authority}{path}`, hop-by-hop headers are replaced by
/// `Connection: close`, and `Proxy-Authorization` is added when the proxy needs it.
/// Returns `None` when the head is not an origin-form HTTP/1.x request.
pub fn proxy_request_head(
    head: &[u8],
    authority: &str,
    basic_auth: Option<&str>,
) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let text = text.strip_suffix("\r\n\r\n")?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let authority = authority.strip_suffix(":80").unwrap_or(authority);
    let target = if target.starts_with('/') {
        format!("http://{authority}{target}")
    } else if target.starts_with("http://") {
        target.to_string() // already absolute
    } else {
        return None; // `*` (OPTIONS) or authority-form: nothing a proxy should get here
    };
    let mut out = format!("{method} {target} {version}\r\n");
    for line in lines {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !HOP_HEADERS.contains(&name.as_str()) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    if let Some(auth) = basic_auth {
        out.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(head: &str, authority: &str, auth: Option<&str>) -> Option<String> {
        proxy_request_head(head.as_bytes(), authority, auth).map(|v| String::from_utf8(v).unwrap())
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
        let head = "POST /up HTTP/1.0\r\nHost: example.com:8080\r\nProxy-Authorization: Basic stolen\r\nContent-Length: 3\r\n\r\n";
        let out = rewrite(head, "example.com:8080", Some("dTpw")).unwrap();
        assert!(
            out.starts_with("POST http://example.com:8080/up HTTP/1.0\r\n"),
            "{out}"
        );
        assert!(
            out.contains("Proxy-Authorization: Basic dTpw\r\n") && !out.contains("stolen"),
            "{out}"
        );
        assert!(out.contains("Content-Length: 3\r\n"));
    }

    #[test]
    fn non_origin_forms_are_refused() {
        assert!(rewrite("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "a:80", None).is_none());
        assert!(rewrite("CONNECT a:443 HTTP/1.1\r\n\r\n", "a:443", None).is_none());
        assert!(rewrite("GET / HTTP/1.1\r\nHost: a\r\n", "a:80", None).is_none());
    }
}
