//! The systemd units inside a runner instance: the runner itself and, with
//! `experimental-use-aproxy`, aproxy and its NAT table. Rendered purely; the charm
//! starts them once the files are in.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::files::InstanceFile;
use crate::runner::aproxy_nat::{render_nat, NatSpec, DEFAULT_LISTEN_PORT};
use ghr_types::proxy::ProxyConfig;
use ghr_types::{template, Secret};

pub const RUNNER_UNIT: &str = "github-runner.service";
pub const APROXY_UNIT: &str = "github-runner-aproxy.service";
const UNIT_DIR: &str = "/etc/systemd/system";
pub const APROXY_DIR: &str = "/etc/github-runner";
pub const APROXY_BINARY: &str = "/usr/local/bin/aproxy";
/// `nobody` on Ubuntu and Debian alike; aproxy runs as this user.
pub const NOBODY_UID: u32 = 65534;

const RUNNER_TEMPLATE: &str = include_str!("../../templates/github-runner.service");
const APROXY_TEMPLATE: &str = include_str!("../../templates/github-runner-aproxy.service");

/// What aproxy needs in every runner: our own binary, and where to send traffic.
#[derive(Clone)]
pub struct Aproxy {
    pub binary: Arc<Vec<u8>>,
    /// `http://[user:pass@]host:port`; may hold credentials, so it is said only in the
    /// root-only `aproxy.env` ([`unit_files`]).
    pub upstream: Secret,
    /// The proxy's address when the URL names one (see [`NatSpec::proxy_addresses`]).
    proxy_address: Option<Ipv4Addr>,
}

impl std::fmt::Debug for Aproxy {
    // Not derived: the binary is megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aproxy")
            .field("binary", &format_args!("{} bytes", self.binary.len()))
            .field("upstream", &self.upstream)
            .field("proxy_address", &self.proxy_address)
            .finish()
    }
}

/// Why aproxy cannot go into the runners (for a `blocked` status).
#[derive(Debug, thiserror::Error)]
pub enum AproxyError {
    #[error("experimental-use-aproxy needs a Juju HTTP proxy (juju-http-proxy)")]
    NoProxy,
    #[error("the Juju HTTP proxy URL holds a quote, backslash or control character")]
    UnsafeProxyUrl,
    #[error("cannot read the charm's binary: {0}")]
    Binary(#[source] std::io::Error),
}

impl Aproxy {
    /// aproxy for the runners when the option is on and Juju gives an HTTP(S) proxy;
    /// an error names what makes it impossible.
    pub fn from_config(
        enabled: bool,
        proxy: &ProxyConfig,
        binary: impl FnOnce() -> std::io::Result<Vec<u8>>,
    ) -> Result<Option<Aproxy>, AproxyError> {
        if !enabled {
            return Ok(None);
        }
        let Some(upstream) = proxy.http.clone().or_else(|| proxy.https.clone()) else {
            return Err(AproxyError::NoProxy);
        };
        // systemd's environment files give quotes and backslashes a meaning.
        if upstream
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(AproxyError::UnsafeProxyUrl);
        }
        let binary = binary().map_err(AproxyError::Binary)?;
        Ok(Some(Aproxy {
            binary: Arc::new(binary),
            proxy_address: proxy_address(&upstream),
            upstream: Secret::new(upstream),
        }))
    }
}

/// The proxy's address when the URL names one: belt and braces beside the `nobody`
/// exception, for a proxy reached by address.
fn proxy_address(upstream: &str) -> Option<Ipv4Addr> {
    match url::Url::parse(upstream).ok()?.host()? {
        url::Host::Ipv4(ip) => Some(ip),
        _ => None,
    }
}

fn file(path: String, content: Vec<u8>, mode: u32) -> InstanceFile {
    InstanceFile {
        path,
        content,
        uid: 0,
        gid: 0,
        mode,
    }
}

/// The directories [`unit_files`] needs beyond the image's own.
pub fn unit_directories(aproxy: Option<&Aproxy>) -> Vec<&'static str> {
    if aproxy.is_some() {
        vec![APROXY_DIR]
    } else {
        Vec::new()
    }
}

/// The unit files, and aproxy's binary, NAT table and environment.
pub fn unit_files(aproxy: Option<&Aproxy>) -> Vec<InstanceFile> {
    let mut out = vec![file(
        format!("{UNIT_DIR}/{RUNNER_UNIT}"),
        template::fill(RUNNER_TEMPLATE, &[]).into_bytes(),
        0o644,
    )];
    if let Some(a) = aproxy {
        let port = DEFAULT_LISTEN_PORT.to_string();
        let unit = template::fill(APROXY_TEMPLATE, &[("PORT", &port)]);
        out.push(file(
            format!("{UNIT_DIR}/{APROXY_UNIT}"),
            unit.into_bytes(),
            0o644,
        ));
        out.push(file(APROXY_BINARY.into(), a.binary.as_ref().clone(), 0o755));
        let mut nat = NatSpec::new(a.proxy_address.into_iter().collect());
        nat.aproxy_uid = Some(NOBODY_UID);
        out.push(file(
            format!("{APROXY_DIR}/aproxy.nft"),
            render_nat(&nat).into_bytes(),
            0o644,
        ));
        // The one place the URL is said: a root-only file.
        out.push(file(
            format!("{APROXY_DIR}/aproxy.env"),
            format!("APROXY_UPSTREAM={}\n", a.upstream.expose()).into_bytes(),
            0o600,
        ));
    }
    out
}

/// The units to start, aproxy first: its table must be in place before any job.
pub fn start_units(aproxy: bool) -> String {
    if aproxy {
        format!("{APROXY_UNIT} {RUNNER_UNIT}")
    } else {
        RUNNER_UNIT.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(http: &str) -> ProxyConfig {
        ProxyConfig {
            http: Some(http.into()),
            ..ProxyConfig::default()
        }
    }

    fn aproxy(upstream: &str) -> Aproxy {
        Aproxy::from_config(true, &proxy(upstream), || Ok(b"ELF".to_vec()))
            .unwrap()
            .unwrap()
    }

    fn find<'a>(files: &'a [InstanceFile], suffix: &str) -> &'a InstanceFile {
        files.iter().find(|f| f.path.ends_with(suffix)).unwrap()
    }

    #[test]
    fn without_aproxy_only_the_runner_unit() {
        let files = unit_files(None);
        assert_eq!(files.len(), 1);
        assert!(find(&files, RUNNER_UNIT)
            .content
            .starts_with(b"# The single-use runner"));
        assert!(unit_directories(None).is_empty());
        assert_eq!(start_units(false), RUNNER_UNIT);
    }

    #[test]
    fn aproxy_gets_its_binary_table_and_a_private_environment() {
        let a = aproxy("http://user:pw@10.1.2.3:3128");
        let files = unit_files(Some(&a));
        let text = |s: &str| String::from_utf8(find(&files, s).content.clone()).unwrap();
        let env = find(&files, "aproxy.env");
        assert_eq!((env.mode, env.uid), (0o600, 0));
        assert_eq!(
            text("aproxy.env"),
            "APROXY_UPSTREAM=http://user:pw@10.1.2.3:3128\n"
        );
        let nft = text("aproxy.nft");
        assert!(nft.contains("meta skuid 65534 return"));
        assert!(nft.contains("10.1.2.3"));
        assert!(text(APROXY_UNIT).contains("--listen 0.0.0.0:54969"));
        assert_eq!(find(&files, "/usr/local/bin/aproxy").mode, 0o755);
        for f in files.iter().filter(|f| !f.path.ends_with("aproxy.env")) {
            let text = String::from_utf8_lossy(&f.content);
            assert!(!text.contains("pw"), "credentials in {}", f.path);
        }
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("pw"),
            "credentials stay out of Debug: {shown}"
        );
        assert!(shown.contains("upstream: Secret(<redacted>)"), "{shown}");
        assert!(shown.contains("proxy_address: Some(10.1.2.3)"), "{shown}");
        assert_eq!(
            start_units(true),
            "github-runner-aproxy.service github-runner.service"
        );
        assert_eq!(unit_directories(Some(&a)), [APROXY_DIR]);
    }

    #[test]
    fn aproxy_needs_a_proxy_and_is_off_unless_asked() {
        let never = || -> std::io::Result<Vec<u8>> { panic!("binary read when not needed") };
        assert!(Aproxy::from_config(false, &proxy("http://p:3128"), never)
            .unwrap()
            .is_none());
        let err = Aproxy::from_config(true, &ProxyConfig::default(), never).unwrap_err();
        assert!(matches!(err, AproxyError::NoProxy), "{err}");
        assert!(err.to_string().contains("juju-http-proxy"), "{err}");
        let https_only = ProxyConfig {
            https: Some("http://p:3129".into()),
            ..ProxyConfig::default()
        };
        let a = Aproxy::from_config(true, &https_only, || Ok(vec![]))
            .unwrap()
            .unwrap();
        assert_eq!(a.upstream.expose(), "http://p:3129");
        assert!(a.proxy_address.is_none(), "a name is not an address");
        assert!(matches!(
            Aproxy::from_config(true, &proxy("http://p:1\nX=1"), || Ok(vec![])),
            Err(AproxyError::UnsafeProxyUrl)
        ));
    }
}
