//! What a runner's processes see of the proxy and the Docker Hub mirror, rendered purely:
//! the runner application's `.env`, `/etc/environment`, and Docker's daemon and client
//! configuration. Also the proxy variables for the host's own apt and snap.

use serde_json::{json, Map, Value};

use ghr_types::proxy::ProxyConfig;

/// A value that would break the file it goes into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A newline, quote or control character would end the line early or add a
    /// variable of the value's choosing.
    #[error("the value for {key} holds a newline, quote or control character")]
    BadValue { key: String },
}

/// The variables a runner needs; `proxy` is empty when aproxy proxies transparently.
#[derive(Clone, Copy, Debug)]
pub struct RunnerEnv<'a> {
    pub proxy: &'a ProxyConfig,
    /// The runner's instance name, which must bypass the proxy (its own services).
    pub runner_name: &'a str,
    pub dockerhub_mirror: Option<&'a str>,
    /// Path, inside the runner, of the script run before each job.
    pub job_started_hook: &'a str,
}

/// `http_proxy`, `https_proxy`, `no_proxy` in lower and upper case (tools disagree on
/// which they read), with `extra_no_proxy` appended to the model's no_proxy. Empty when
/// no proxy is configured. `https_proxy` falls back to the HTTP proxy, as
/// [`ProxyConfig::for_url`] does.
pub fn proxy_vars(proxy: &ProxyConfig, extra_no_proxy: &[&str]) -> Vec<(String, String)> {
    if proxy.is_empty() {
        return Vec::new();
    }
    let mut vars = Vec::new();
    let mut push = |name: &str, value: &str| {
        vars.push((name.to_string(), value.to_string()));
        vars.push((name.to_ascii_uppercase(), value.to_string()));
    };
    if let Some(http) = &proxy.http {
        push("http_proxy", http);
    }
    if let Some(https) = proxy.https.as_ref().or(proxy.http.as_ref()) {
        push("https_proxy", https);
    }
    let no_proxy = no_proxy_list(proxy, extra_no_proxy);
    if !no_proxy.is_empty() {
        push("no_proxy", &no_proxy);
    }
    vars
}

fn no_proxy_list(proxy: &ProxyConfig, extra: &[&str]) -> String {
    let mut entries: Vec<&str> = Vec::new();
    let model = proxy.no_proxy.as_deref().unwrap_or_default().split(',');
    for entry in model.chain(extra.iter().copied()).map(str::trim) {
        if !entry.is_empty() && !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    entries.join(",")
}

impl RunnerEnv<'_> {
    /// Loopback, the runner's own name and cluster-local `.svc` names never go through
    /// the proxy.
    fn proxy_vars(&self) -> Vec<(String, String)> {
        proxy_vars(
            self.proxy,
            &["localhost", "127.0.0.1", "::1", self.runner_name, ".svc"],
        )
    }

    fn checked(vars: Vec<(String, String)>) -> Result<Vec<(String, String)>, RenderError> {
        for (key, value) in &vars {
            if value.chars().any(|c| c.is_control() || c == '"') {
                return Err(RenderError::BadValue { key: key.clone() });
            }
        }
        Ok(vars)
    }

    /// The runner application's `.env`: `KEY=value` lines, unquoted (the runner takes
    /// everything after the first `=` literally).
    pub fn render_dot_env(&self) -> Result<String, RenderError> {
        let mut vars = self.proxy_vars();
        if let Some(mirror) = self.dockerhub_mirror {
            vars.push(("DOCKERHUB_MIRROR".into(), mirror.into()));
        }
        vars.push((
            "ACTIONS_RUNNER_HOOK_JOB_STARTED".into(),
            self.job_started_hook.into(),
        ));
        Ok(Self::checked(vars)?
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect())
    }

    /// `/etc/environment` (read by pam_env for every login and `sudo`): the standard
    /// PATH, then the proxy variables, quoted.
    pub fn render_etc_environment(&self) -> Result<String, RenderError> {
        let mut out = String::from(
            "PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games:/snap/bin\"\n",
        );
        for (k, v) in Self::checked(self.proxy_vars())? {
            out.push_str(&format!("{k}=\"{v}\"\n"));
        }
        Ok(out)
    }

    /// Docker's `/etc/docker/daemon.json`: the mirror in `registry-mirrors`, and the
    /// daemon's own proxy for image pulls.
    pub fn render_docker_daemon_json(&self) -> String {
        let mut root = Map::new();
        if let Some(mirror) = self.dockerhub_mirror {
            root.insert("registry-mirrors".into(), json!([mirror]));
        }
        if let Some(p) = self.docker_proxies("http-proxy", "https-proxy", "no-proxy") {
            root.insert("proxies".into(), p);
        }
        pretty(Value::Object(root))
    }

    /// The Docker client's `~/.docker/config.json`: the proxy handed to containers.
    pub fn render_docker_client_config(&self) -> String {
        let mut root = Map::new();
        if let Some(p) = self.docker_proxies("httpProxy", "httpsProxy", "noProxy") {
            root.insert("proxies".into(), json!({ "default": p }));
        }
        pretty(Value::Object(root))
    }

    fn docker_proxies(&self, http: &str, https: &str, no: &str) -> Option<Value> {
        let vars = self.proxy_vars();
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut m = Map::new();
        for (key, var) in [
            (http, "http_proxy"),
            (https, "https_proxy"),
            (no, "no_proxy"),
        ] {
            if let Some(v) = get(var) {
                m.insert(key.into(), Value::String(v));
            }
        }
        (!m.is_empty()).then_some(Value::Object(m))
    }
}

fn pretty(v: Value) -> String {
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

#[cfg(test)]
#[path = "runner_env_tests.rs"]
mod tests;
