//! aproxy: a transparent proxy run inside each runner when `experimental-use-aproxy` is
//! on. The runner's nftables (rendered by the charm) redirect outbound TCP 80/443 to public addresses to
//! it; it learns the destination from the HTTP `Host` header or the TLS SNI ([`sniff`]).
//! TLS (and anything else) is tunnelled through the Juju HTTP proxy with `CONNECT`;
//! plain HTTP is relayed as one absolute-URI proxy request per connection ([`http`]),
//! since proxies commonly refuse `CONNECT` to port 80 ([`server`] does both).
//! Jobs need no proxy variables, and the proxy sees names, not just addresses.

pub mod http;
pub mod server;
pub mod sniff;

pub use server::{route, serve, Upstream};
pub use sniff::{sniff, Sniffed};

/// Why aproxy could not start or could not carry one connection.
#[derive(Debug, thiserror::Error)]
pub enum AproxyError {
    /// The upstream proxy URL is unusable (not `http://host[:port]`).
    #[error("invalid upstream proxy {url:?}: {reason}")]
    BadUpstream { url: String, reason: String },
    /// Listening, accepting or reading from the client failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The client sent nothing routable before the sniff deadline.
    #[error("client sent no request within {0:?}")]
    SniffTimeout(std::time::Duration),
    /// Neither a name nor the original destination is known, so there is nowhere to go.
    #[error("cannot route connection: {0}")]
    Unroutable(&'static str),
    /// The upstream proxy could not be reached.
    #[error("cannot reach upstream proxy {proxy}: {source}")]
    UpstreamConnect {
        proxy: String,
        source: std::io::Error,
    },
    /// The upstream proxy answered the CONNECT with something other than 2xx.
    #[error("upstream proxy refused CONNECT {target}: {status}")]
    UpstreamRefused { target: String, status: String },
}
