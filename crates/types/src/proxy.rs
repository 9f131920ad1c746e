//! Juju's model proxy settings (`JUJU_CHARM_HTTP(S)_PROXY`, `JUJU_CHARM_NO_PROXY`), read
//! once from the hook environment and handed to every client and runner that needs them.

use std::collections::HashMap;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    pub http: Option<String>,
    pub https: Option<String>,
    /// Comma-separated hosts, domains (`.example.com`) and CIDRs that bypass the proxy.
    pub no_proxy: Option<String>,
}

impl ProxyConfig {
    pub fn from_env() -> Self {
        Self::from_vars(&std::env::vars().collect())
    }

    pub fn from_vars(vars: &HashMap<String, String>) -> Self {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        ProxyConfig {
            http: get("JUJU_CHARM_HTTP_PROXY"),
            https: get("JUJU_CHARM_HTTPS_PROXY"),
            no_proxy: get("JUJU_CHARM_NO_PROXY"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy to use for `url`, honouring `no_proxy` (exact host, domain suffix,
    /// `*`, or an IP inside a listed CIDR).
    pub fn for_url(&self, url: &str) -> Option<&str> {
        let parsed = url::Url::parse(url).ok()?;
        let host = parsed
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        if self.bypasses(host) {
            return None;
        }
        match parsed.scheme() {
            "https" => self.https.as_deref().or(self.http.as_deref()),
            _ => self.http.as_deref(),
        }
    }

    pub fn bypasses(&self, host: &str) -> bool {
        let Some(list) = &self.no_proxy else {
            return false;
        };
        let ip: Option<std::net::IpAddr> = host.parse().ok();
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .any(|entry| {
                if entry == "*" {
                    return true;
                }
                if let (Some(ip), Ok(net)) = (ip, entry.parse::<ipnet::IpNet>()) {
                    return net.contains(&ip);
                }
                let domain = entry.trim_start_matches('*').trim_start_matches('.');
                host.eq_ignore_ascii_case(domain)
                    || host
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", domain.to_ascii_lowercase()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(no_proxy: &str) -> ProxyConfig {
        ProxyConfig {
            http: Some("http://proxy:3128".into()),
            https: Some("http://sproxy:3128".into()),
            no_proxy: Some(no_proxy.into()),
        }
    }

    #[test]
    fn picks_by_scheme_and_honours_no_proxy() {
        let p = cfg("localhost,.internal,10.0.0.0/8");
        assert_eq!(
            p.for_url("https://api.github.com/x"),
            Some("http://sproxy:3128")
        );
        assert_eq!(p.for_url("http://example.com/"), Some("http://proxy:3128"));
        assert_eq!(p.for_url("http://localhost:8080/"), None);
        assert_eq!(p.for_url("https://ghes.internal/api/v3"), None);
        assert_eq!(p.for_url("http://10.1.2.3/"), None);
        assert_eq!(p.for_url("http://11.1.2.3/"), Some("http://proxy:3128"));
        assert_eq!(cfg("*").for_url("https://a.b/"), None);
    }

    #[test]
    fn reads_juju_variables() {
        let vars: HashMap<String, String> = [
            ("JUJU_CHARM_HTTP_PROXY", "http://p:1"),
            ("JUJU_CHARM_HTTPS_PROXY", ""),
            ("JUJU_CHARM_NO_PROXY", "a,b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = ProxyConfig::from_vars(&vars);
        assert_eq!(p.http.as_deref(), Some("http://p:1"));
        assert_eq!(p.https, None);
        assert_eq!(p.no_proxy.as_deref(), Some("a,b"));
    }
}
