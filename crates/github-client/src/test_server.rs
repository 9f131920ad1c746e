//! A GitHub on loopback for the App-auth tests: it mints installation tokens that
//! expire by the test's manual clock, accepts only live ones on every other route,
//! records what it was sent, and plays scripted answers when a test asks for them.
//! One connection at a time, each closed after its answer: enough for a blocking
//! client, and simple to read.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ghr_types::clock::{Clock, ManualClock};
use ghr_types::proxy::ProxyConfig;
use ghr_types::{GithubPath, Secret};
use test_support::app_key::AppKeyPair;

use crate::{AppKey, ClientOptions, Credential, GithubClient, GithubError};

/// Where the manual clocks of these tests start.
pub const T0: u64 = 1_800_000_000;
pub const INSTALLATION: u64 = 4242;
pub const ISSUER: &str = "Iv23liAppClientId";
/// In a scripted answer, replaced by the request's `Authorization` value: a server
/// that echoes what it was sent, to prove the client scrubs it.
pub const ECHO: &str = "{auth}";

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The bearer, without `Bearer `.
    pub bearer: String,
}

impl Seen {
    pub fn is_exchange(&self) -> bool {
        self.path == format!("/app/installations/{INSTALLATION}/access_tokens")
    }
}

struct State {
    clock: Arc<ManualClock>,
    lifetime: u64,
    /// Every token minted, with its expiry (Unix seconds).
    minted: Vec<(String, u64)>,
    revoked: HashSet<String>,
    seen: Vec<Seen>,
    /// Answers to the next exchanges, before any token is minted.
    exchange_script: VecDeque<(u16, String)>,
    /// Answers to the next API requests, whatever their token.
    api_script: VecDeque<(u16, String)>,
}

pub struct FakeGithub {
    pub url: String,
    pub clock: Arc<ManualClock>,
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeGithub {
    /// A server whose tokens live `lifetime_secs` by a clock starting at [`T0`].
    pub fn start(lifetime_secs: u64) -> Self {
        let clock = Arc::new(ManualClock::at(T0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            clock: Arc::clone(&clock),
            lifetime: lifetime_secs,
            minted: Vec::new(),
            revoked: HashSet::new(),
            seen: Vec::new(),
            exchange_script: VecDeque::new(),
            api_script: VecDeque::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || serve(&listener, &state, &stop))
        };
        FakeGithub {
            url: format!("http://{addr}"),
            clock,
            state,
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }
    pub fn exchanges(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_exchange).collect()
    }
    /// The bearers of the requests other than exchanges, in order.
    pub fn api_bearers(&self) -> Vec<String> {
        let seen = self.seen().into_iter().filter(|s| !s.is_exchange());
        seen.map(|s| s.bearer).collect()
    }
    pub fn minted(&self) -> Vec<String> {
        self.state().minted.iter().map(|(t, _)| t.clone()).collect()
    }
    /// Every token minted so far stops working, as if the App's tokens were revoked.
    pub fn revoke_all(&self) {
        let mut state = self.state();
        let tokens: Vec<String> = state.minted.iter().map(|(t, _)| t.clone()).collect();
        state.revoked.extend(tokens);
    }
    pub fn script_exchange(&self, status: u16, body: &str) {
        self.state()
            .exchange_script
            .push_back((status, body.into()));
    }
    pub fn script_api(&self, status: u16, body: &str) {
        self.state().api_script.push_back((status, body.into()));
    }
    /// Moves the shared clock (client and server) on.
    pub fn advance(&self, secs: u64) {
        self.clock.sleep(Duration::from_secs(secs));
    }

    /// A client of this server acting as the App with `pem`.
    pub fn client(&self, pem: &str, cache: Option<PathBuf>) -> Result<GithubClient, GithubError> {
        let options = ClientOptions {
            clock: self.clock.clone(),
            ..ClientOptions::default()
        };
        let credential = Credential::App {
            key: app_key(pem),
            cache,
        };
        GithubClient::with_credential(&self.url, credential, &ProxyConfig::default(), options)
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn app_key(pem: &str) -> AppKey {
    AppKey {
        issuer: ISSUER.into(),
        installation_id: INSTALLATION,
        private_key: Secret::new(pem),
    }
}

/// Two key pairs per test binary: RSA key generation is slow enough to share.
pub fn keys() -> &'static [AppKeyPair; 2] {
    static KEYS: OnceLock<[AppKeyPair; 2]> = OnceLock::new();
    KEYS.get_or_init(|| [AppKeyPair::generate(), AppKeyPair::generate()])
}

/// A call that needs the client's own credential and nothing else.
pub fn api_call(client: &GithubClient) -> Result<(), GithubError> {
    let path = GithubPath::Org {
        org: "acme".into(),
        group: "default".into(),
    };
    client.runner_downloads(&path).map(drop)
}

fn serve(listener: &TcpListener, state: &Mutex<State>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            // A client that hangs up early only fails its own test.
            let _ = answer(stream, state);
        }
    }
}

fn answer(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let seen = read_request(&mut stream)?;
    let (status, body) = respond(&mut state.lock().unwrap(), seen);
    let head = format!(
        "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}

fn read_request(stream: &mut TcpStream) -> std::io::Result<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let (mut bearer, mut length) = (String::new(), 0usize);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "authorization" => bearer = value.trim_start_matches("Bearer ").to_string(),
            "content-length" => length = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    reader.read_exact(&mut vec![0; length])?;
    Ok(Seen {
        method,
        path,
        bearer,
    })
}

fn respond(state: &mut State, seen: Seen) -> (u16, String) {
    let echo = |(status, body): (u16, String)| (status, body.replace(ECHO, &seen.bearer));
    let now = state.clock.unix_now();
    let answer = if seen.is_exchange() {
        match state.exchange_script.pop_front() {
            Some(scripted) => echo(scripted),
            None => mint(state, now),
        }
    } else {
        match state.api_script.pop_front() {
            Some(scripted) => echo(scripted),
            None if live(state, &seen.bearer, now) => (200, "[]".into()),
            None => (401, r#"{"message": "Bad credentials"}"#.into()),
        }
    };
    state.seen.push(seen);
    answer
}

fn mint(state: &mut State, now: u64) -> (u16, String) {
    let token = format!("ghs_fakeInstallation{:04}", state.minted.len() + 1);
    let expires = now + state.lifetime;
    state.minted.push((token.clone(), expires));
    let at = DateTime::<Utc>::from_timestamp(expires as i64, 0).unwrap();
    let body = serde_json::json!({
        "token": token,
        "expires_at": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "permissions": {"administration": "write"},
    });
    (201, body.to_string())
}

fn live(state: &State, bearer: &str, now: u64) -> bool {
    !state.revoked.contains(bearer)
        && state
            .minted
            .iter()
            .any(|(token, expires)| token == bearer && now < *expires)
}
