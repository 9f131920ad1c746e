//! `aproxy --listen ADDR:PORT [--upstream URL]`: the transparent proxy inside a runner.
//! The upstream proxy comes from `APROXY_UPSTREAM` when not given, which is where
//! credentials belong (argv is world-readable). Two flags, parsed by hand: this binary
//! is pushed into every runner, so it stays small.

use std::net::SocketAddr;
use std::process::ExitCode;

const USAGE: &str = "usage: aproxy --listen ADDR:PORT [--upstream http://[user:pass@]host:port]";

#[derive(Debug)]
struct Args {
    listen: Option<SocketAddr>,
    upstream: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        listen: None,
        upstream: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let raw = value()?;
                parsed.listen = Some(raw.parse().map_err(|_| format!("bad --listen {raw:?}"))?);
            }
            "--upstream" => parsed.upstream = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if parsed.listen.is_none() {
        return Err("--listen is required".into());
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("aproxy: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(upstream) = args
        .upstream
        .or_else(|| std::env::var("APROXY_UPSTREAM").ok())
    else {
        eprintln!("aproxy: no upstream proxy (--upstream or APROXY_UPSTREAM)");
        return ExitCode::from(2);
    };
    match aproxy::server::run(args.listen.expect("checked by parse"), &upstream) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aproxy: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse_and_bad_ones_are_named() {
        let a = args(&["--listen", "127.0.0.1:9", "--upstream", "http://p:3128"]).unwrap();
        assert_eq!(a.listen, Some("127.0.0.1:9".parse().unwrap()));
        assert_eq!(a.upstream.as_deref(), Some("http://p:3128"));
        assert!(args(&[]).unwrap_err().contains("--listen is required"));
        assert!(args(&["--listen"]).unwrap_err().contains("needs a value"));
        assert!(args(&["--listen", "nope"])
            .unwrap_err()
            .contains("bad --listen"));
        assert!(args(&["--verbose"])
            .unwrap_err()
            .contains("unknown argument"));
    }
}
