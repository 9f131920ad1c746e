//! The HTTP layer under the facade: a ureq agent with GitHub's headers, timeouts, the
//! proxy, retries through [`super::retry`], rate-limit bookkeeping, a request counter
//! and a report of every request to [`super::calls`]. The tarball download is in
//! [`download`].

mod download;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::app_auth::Credential;
use super::calls;
use super::credential::OwnCredential;
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
    credential: OwnCredential,
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
    /// The transport's own credential ([`Credential`]), as `Bearer`.
    #[default]
    Own,
    /// Another token, e.g. a scale-set session's message-queue token.
    Bearer(&'a Secret),
    /// `RemoteAuth`: a registration token traded for an Actions service connection.
    RemoteAuth(&'a Secret),
}

/// How a credential is presented in `Authorization`.
#[derive(Clone, Copy)]
pub enum Scheme {
    Bearer,
    RemoteAuth,
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
    /// The route reported for a URL outside the base (the message queue); `None`
    /// reports the URL's path below the base as a template.
    pub route: Option<&'static str>,
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
        Self::with_credential(api_base, Credential::Token(token), proxy, options)
    }

    /// A transport whose own requests carry `credential`; an App key is checked here.
    pub fn with_credential(
        api_base: &str,
        credential: Credential,
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
        let credential = OwnCredential::new(credential, api_base.as_str())?;
        Ok(Transport {
            agent,
            api_base,
            credential,
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

    /// `text` without `sent` (the credential of the request it answers) and the
    /// transport's fixed token.
    fn scrubbed(&self, text: &str, sent: &Secret) -> String {
        let fixed = self.credential.fixed().map_or("", |t| t.expose());
        scrub(text, &[sent.expose(), fixed])
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
    /// credential the call was sent with and of the transport's fixed token.
    pub fn call(&self, call: &Call) -> Result<RawResponse> {
        match call.auth {
            Auth::Own => self.credential.send(self, call),
            Auth::Bearer(secret) => self.send_as(call, Scheme::Bearer, secret),
            Auth::RemoteAuth(secret) => self.send_as(call, Scheme::RemoteAuth, secret),
        }
    }

    /// `call` with `secret` as its credential, whatever `call.auth` says.
    pub(crate) fn send_as(
        &self,
        call: &Call,
        scheme: Scheme,
        secret: &Secret,
    ) -> Result<RawResponse> {
        let path = url::Url::parse(call.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        let route = match call.route {
            Some(fixed) => Cow::Borrowed(fixed),
            None if !ghr_types::telemetry::observing() => Cow::Borrowed(""),
            None => Cow::Owned(calls::route(self.api_base.path(), &path)),
        };
        let what = format!("{} {path}", call.method);
        // Every attempt is a request of its own, reported as it ends.
        let mut send = || {
            let attempt = self.send_once(call, scheme, secret);
            calls::report(call.method, &route, calls::outcome(&attempt));
            attempt
        };
        let mut jitter = rand::random::<f64>;
        let response = run_with_retry(
            call.retry.unwrap_or(&self.options.retry),
            self.options.clock.as_ref(),
            &mut jitter,
            &what,
            &mut send,
        )?;
        log::debug!("{what} -> {}", response.status);
        Ok(RawResponse {
            body: self.scrubbed(&response.body, secret),
            ..response
        })
    }

    fn send_once(&self, call: &Call, scheme: Scheme, secret: &Secret) -> Attempt {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let authorization = match scheme {
            Scheme::Bearer => format!("Bearer {}", secret.expose()),
            Scheme::RemoteAuth => format!("RemoteAuth {}", secret.expose()),
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
                return Attempt::Transport(self.scrubbed(&t.to_string(), secret))
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
            // The Actions service's answers do not speak for the REST API's limit.
            if self.github_headers {
                calls::report_rate_limit(&rate_limit);
            }
            *self.rate_limit.lock().unwrap_or_else(|e| e.into_inner()) = Some(rate_limit);
        }
        match response.into_string() {
            Ok(body) => raw.body = body,
            // A connection dropped mid-body is as good as no response.
            Err(e) => return Attempt::Transport(format!("reading response body: {}", e.kind())),
        }
        Attempt::Response(raw)
    }
}
