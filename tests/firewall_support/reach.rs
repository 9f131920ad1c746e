//! Whether a request from inside an instance reaches an address, and how it failed:
//! answered, refused (the firewall's reset or ICMP) or dropped (curl's deadline).

use std::net::SocketAddr;
use std::process::Output;
use std::time::{Duration, Instant};

/// What a request from the instance got.
#[derive(Debug, PartialEq)]
pub enum Reach {
    Answered(String),
    /// curl could not connect (exit 7) and gave up quickly: the firewall rejected it.
    Refused,
    /// No answer at all until curl's deadline (exit 28): the packets were dropped.
    Dropped,
    Other(String),
}

/// `curl` to `addr` through `exec` (a command run inside the instance).
pub fn reach(
    exec: &dyn Fn(&[&str]) -> Output,
    addr: SocketAddr,
    max_time: u32,
) -> (Reach, Duration) {
    let url = format!("http://{addr}/");
    let start = Instant::now();
    let out = exec(&["curl", "-sS", "--max-time", &max_time.to_string(), &url]);
    let took = start.elapsed();
    let reach = match out.status.code() {
        Some(0) => Reach::Answered(String::from_utf8_lossy(&out.stdout).into_owned()),
        Some(7) if took < Duration::from_secs(3) => Reach::Refused,
        Some(28) => Reach::Dropped,
        code => Reach::Other(format!(
            "exit {code:?} after {took:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    };
    (reach, took)
}

/// Asserts what a request to `addr` gets, and prints it.
pub fn expect(exec: &dyn Fn(&[&str]) -> Output, what: &str, addr: SocketAddr, want: Reach) {
    // A drop is only seen as a timeout: keep that wait short.
    let max_time = if want == Reach::Dropped { 3 } else { 10 };
    let (got, took) = reach(exec, addr, max_time);
    eprintln!("  {what} ({addr}): {got:?} in {took:?}");
    assert_eq!(got, want, "{what} at {addr}");
}
