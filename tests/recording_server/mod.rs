//! A plain loopback HTTP server that records each request's head, so a test can read a
//! client's request headers off the wire rather than trusting the client's own view.

/// A loopback HTTP server that answers `count` requests, each on its own connection,
/// with `answer(request line)` (status and JSON body), and hands back each request's
/// head: the request line, then the header lines.
pub fn recording_server(
    count: usize,
    answer: fn(&str) -> (u16, &'static str),
) -> (String, std::thread::JoinHandle<Vec<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for stream in listener.incoming().take(count) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                head.push(line);
            }
            let length = head
                .iter()
                .find_map(|h| {
                    h.to_ascii_lowercase()
                        .strip_prefix("content-length:")?
                        .trim()
                        .parse()
                        .ok()
                })
                .unwrap_or(0);
            reader.read_exact(&mut vec![0; length]).unwrap();
            let (status, body) = answer(&head[0]);
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
            heads.push(head);
        }
        heads
    });
    (url, server)
}

/// The header's value in a request head (names are case-insensitive).
pub fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
