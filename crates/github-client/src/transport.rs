//! The HTTP layer under the facade: a ureq agent with GitHub's headers, timeouts, the
//! proxy, retries through [`super::retry`], rate-limit bookkeeping and a request counter.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::{GithubError, Result};
use super::models::RateLimit;
use super::retry::{
    parse_rate_limit, run_with_retry, Attempt, Clock, RawResponse, RetryPolicy, SystemClock,
};
use super::secret::scrub;
use ghr_types::proxy::ProxyConfig;
use ghr_types::{Secret, Token};

/// Tunables of the client; the defaults suit a hook.
#[derive(Clone)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// The whole request, body included.
    pub request_timeout: Duration,
    /// The runner tarball is large; it gets its own bound.
    pub download_timeout: Duration,
    /// A scale-set message poll, which the service holds open for about 50 s.
    pub poll_timeout: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            download_timeout: Duration::from_secs(600),
            poll_timeout: Duration::from_secs(120),
            clock: Arc::new(SystemClock),
        }
    }
}

pub struct Transport {
    agent: ureq::Agent,
    api_base: url::Url,
    token: Token,
    proxy: ProxyConfig,
    options: ClientOptions,
    requests: AtomicU64,
    rate_limit: Mutex<Option<RateLimit>>,
    /// GitHub's `Accept` and API-version headers; off for the Actions service.
    github_headers: bool,
}

/// The credential of one request.
#[derive(Clone, Copy, Default)]
pub enum Auth<'a> {
    /// The transport's own token, as `Bearer`.
    #[default]
    Own,
    /// Another token, e.g. a scale-set session's message-queue token.
    Bearer(&'a Secret),
    /// `RemoteAuth`: a registration token traded for an Actions service connection.
    RemoteAuth(&'a Secret),
}

/// One request with more than [`Transport::request`] sets: another credential, extra
/// headers, its own timeout (the long poll) or retry policy (a non-idempotent create).
#[derive(Default)]
pub struct Call<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub body: Option<&'a serde_json::Value>,
    pub auth: Auth<'a>,
    pub headers: Vec<(&'static str, String)>,
    pub timeout: Option<Duration>,
    pub retry: Option<&'a RetryPolicy>,
}

fn user_agent() -> String {
    format!("github-runner-charm/{}", env!("CARGO_PKG_VERSION"))
}

fn build_agent(
    url: &str,
    proxy: &ProxyConfig,
    connect: Duration,
    total: Duration,
) -> Result<ureq::Agent> {
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(connect)
        .timeout(total)
        .user_agent(&user_agent());
    if let Some(proxy_url) = proxy.for_url(url) {
        let proxy = ureq::Proxy::new(proxy_url).map_err(|e| GithubError::InvalidUrl {
            url: "(proxy)".into(),
            message: format!("unusable proxy setting: {}", e.kind()),
        })?;
        builder = builder.proxy(proxy);
    }
    Ok(builder.build())
}

impl Transport {
    pub fn new(
        api_base: &str,
        token: Token,
        proxy: &ProxyConfig,
        options: ClientOptions,
    ) -> Result<Self> {
        let trimmed = api_base.trim_end_matches('/');
        let api_base = url::Url::parse(trimmed)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| GithubError::InvalidUrl {
                url: trimmed.to_string(),
                message: "not an http(s) URL".into(),
            })?;
        let agent = build_agent(
            trimmed,
            proxy,
            options.connect_timeout,
            options.request_timeout,
        )?;
        Ok(Transport {
            agent,
            api_base,
            token,
            proxy: proxy.clone(),
            options,
            requests: AtomicU64::new(0),
            rate_limit: Mutex::new(None),
            github_headers: true,
        })
    }

    /// A transport for another service reached through this one's settings (proxy,
    /// timeouts, retries): the Actions service, with its admin token as `token`.
    pub fn sibling(&self, base: &str, token: Token) -> Result<Transport> {
        let mut transport = Transport::new(base, token, &self.proxy, self.options.clone())?;
        transport.github_headers = false;
        Ok(transport)
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// `path` (e.g. `orgs/acme/actions/runners?per_page=100`) under the API base.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.api_base.as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// A URL from a `Link` header, moved onto our own origin: the token is only ever
    /// sent to the configured API host, and a proxy in front (Prism) is kept.
    pub fn rebase(&self, link: &str) -> Result<String> {
        let invalid = |message: &str| GithubError::InvalidUrl {
            url: link.to_string(),
            message: message.into(),
        };
        let parsed = url::Url::parse(link).map_err(|_| invalid("not a URL"))?;
        let base_path = self.api_base.path().trim_end_matches('/');
        if !parsed.path().starts_with(base_path) {
            return Err(invalid("outside the API base"));
        }
        let mut rebased = self.api_base.clone();
        rebased.set_path(parsed.path());
        rebased.set_query(parsed.query());
        Ok(rebased.to_string())
    }

    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn scrubbed(&self, text: &str) -> String {
        scrub(text, &[self.token.expose()])
    }

    /// One API call with retries. Returns every response the retry policy accepts,
    /// whatever its status; the facade decides what a status means for its endpoint.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<RawResponse> {
        self.call(&Call {
            method,
            url,
            body,
            ..Call::default()
        })
    }

    /// [`Self::request`] with the settings of `call`. Server text is scrubbed of the
    /// transport's token and of the call's own credential.
    pub fn call(&self, call: &Call) -> Result<RawResponse> {
        let what = format!(
            "{} {}",
            call.method,
            url::Url::parse(call.url)
                .map(|u| u.path().to_string())
                .unwrap_or_default()
        );
        let mut send = || self.send_once(call);
        let mut jitter = rand::random::<f64>;
        let response = run_with_retry(
            call.retry.unwrap_or(&self.options.retry),
            self.options.clock.as_ref(),
            &mut jitter,
            &what,
            &mut send,
        )?;
        log::debug!("{what} -> {}", response.status);
        let other = match call.auth {
            Auth::Own => "",
            Auth::Bearer(s) | Auth::RemoteAuth(s) => s.expose(),
        };
        Ok(RawResponse {
            body: scrub(&response.body, &[self.token.expose(), other]),
            ..response
        })
    }

    fn send_once(&self, call: &Call) -> Attempt {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let authorization = match call.auth {
            Auth::Own => format!("Bearer {}", self.token.expose()),
            Auth::Bearer(token) => format!("Bearer {}", token.expose()),
            Auth::RemoteAuth(token) => format!("RemoteAuth {}", token.expose()),
        };
        let mut request = self
            .agent
            .request(call.method, call.url)
            .set("Authorization", &authorization);
        if self.github_headers {
            request = request
                .set("Accept", "application/vnd.github+json")
                .set("X-GitHub-Api-Version", "2022-11-28");
        }
        for (name, value) in &call.headers {
            request = request.set(name, value);
        }
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        let result = match call.body {
            Some(json) => request.send_json(json),
            None => request.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Attempt::Transport(self.scrubbed(&t.to_string()))
            }
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                response
                    .header(&name)
                    .map(|v| (name.clone(), v.to_string()))
            })
            .collect();
        let mut raw = RawResponse {
            status,
            headers,
            body: String::new(),
        };
        if let Some(rate_limit) = parse_rate_limit(&raw) {
            *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner()) = Some(rate_limit);
        }
        match response.into_string() {
            Ok(body) => raw.body = body,
            // A connection dropped mid-body is as good as no response.
            Err(e) => return Attempt::Transport(format!("reading response body: {}", e.kind())),
        }
        Attempt::Response(raw)
    }

    /// Downloads `url` to `dest` through a temporary file in the same directory, checks
    /// its sha256 and renames it into place, so `dest` is either whole and verified or
    /// untouched. Sends no GitHub token: the tarball host is not the API host.
    /// `bearer` is GHES's `temp_download_token`, when the downloads list gives one.
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        expected_sha256: &str,
        bearer: Option<&Secret>,
    ) -> Result<()> {
        let agent = build_agent(
            url,
            &self.proxy,
            self.options.connect_timeout,
            self.options.download_timeout,
        )?;
        let file_err = |e: fs_state::FileError| GithubError::Io {
            path: e.path,
            source: e.source,
        };
        let mut result: Option<Result<(fs_state::AtomicFile, String)>> = None;
        let mut send = || {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = agent.get(url);
            if let Some(token) = bearer {
                request = request.set("Authorization", &format!("Bearer {}", token.expose()));
            }
            let response = match request.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(status, r)) => {
                    return Attempt::Response(RawResponse {
                        status,
                        headers: vec![],
                        body: r.into_string().unwrap_or_default(),
                    })
                }
                Err(ureq::Error::Transport(t)) => return Attempt::Transport(t.to_string()),
            };
            // Each attempt writes a file of its own; the one that passes the check
            // replaces `dest`, the others vanish when dropped.
            let mut file = match fs_state::AtomicFile::create(dest, 0o600) {
                Ok(f) => f,
                Err(e) => {
                    result = Some(Err(file_err(e)));
                    return Attempt::Response(RawResponse {
                        status: 200,
                        ..Default::default()
                    });
                }
            };
            match copy_hashing(response.into_reader(), file.as_file_mut()) {
                Ok(digest) => result = Some(Ok((file, digest))),
                Err(e) => return Attempt::Transport(format!("download interrupted: {e}")),
            }
            Attempt::Response(RawResponse {
                status: 200,
                ..Default::default()
            })
        };
        let mut jitter = rand::random::<f64>;
        let response = run_with_retry(
            &self.options.retry,
            self.options.clock.as_ref(),
            &mut jitter,
            "download",
            &mut send,
        )?;
        if response.status != 200 {
            return Err(GithubError::Unexpected {
                status: response.status,
                message: format!("downloading {url}"),
            });
        }
        let (file, actual) = result.expect("a 200 attempt always records its result")?;
        if !actual.eq_ignore_ascii_case(expected_sha256.trim()) {
            return Err(GithubError::ChecksumMismatch {
                url: url.to_string(),
                expected: expected_sha256.to_string(),
                actual,
            });
        }
        file.commit().map_err(file_err)
    }
}

fn copy_hashing(mut reader: impl Read, out: &mut std::fs::File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    Ok(hex::encode(hasher.finalize()))
}
