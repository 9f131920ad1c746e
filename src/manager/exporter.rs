//! The manager's Prometheus endpoint: `GET /metrics` on loopback (where the COS agent,
//! a subordinate on the same machine, scrapes it) and on the unit's own address, at
//! the unit's metrics port. Never on the LXD bridge, and the unit's firewall drops
//! runners' traffic to the host's other addresses: runners cannot reach it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use ghr_metrics::ManagerMetrics;
use policy_service::listen::{accept_loop, Gate, Limits};
use std::time::Duration;

/// The addresses to serve on: loopback, and the unit's address when the hooks told it.
pub fn addresses(unit_address: Option<IpAddr>, port: u16) -> Vec<SocketAddr> {
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    ips.extend(unit_address.filter(|ip| !ip.is_loopback() && !ip.is_unspecified()));
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

/// Binds what it can of `addresses` and serves them on a thread of its own; returns
/// the bound addresses (a port 0 gets its real port) and writes them to `record`, one
/// per line, for the demo and the tests. An address that cannot be bound is logged:
/// the pool matters more than its metrics, and the alert on a missing target says so.
pub fn start(
    metrics: Arc<ManagerMetrics>,
    addresses: &[SocketAddr],
    record: &Path,
) -> Vec<SocketAddr> {
    let mut listeners = Vec::new();
    for addr in addresses {
        match TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
            Ok(listener) => listeners.push(listener),
            Err(e) => log::error!("metrics endpoint: cannot listen on {addr}: {e}"),
        }
    }
    let bound: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let text: String = bound.iter().map(|a| format!("{a}\n")).collect();
    if let Err(e) = fs_state::write_atomic(record, text.as_bytes(), 0o600) {
        log::warn!("metrics endpoint: {e}");
    }
    if listeners.is_empty() {
        return bound;
    }
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(CONTENT_TYPE, ghr_metrics::CONTENT_TYPE)],
                    metrics.exposition(),
                )
            }
        }),
    );
    std::thread::spawn(move || serve(router, listeners));
    log::info!("metrics on {}", text.trim_end().replace('\n', ", "));
    bound
}

/// Bounds on each address's connections: a scraper holds one or two; anyone on the
/// unit's network can open more, and a flood must neither take the root manager's file
/// descriptors (its LXD and GitHub calls need them) nor keep the COS agent out (loopback
/// has a budget of its own).
const LIMITS: Limits = Limits {
    per_source: 4,
    total: 16,
    header_read: Duration::from_secs(5),
    request: Duration::from_secs(10),
};

/// Serves every listener through the policy service's bounded accept loop (connection
/// budgets, header and request deadlines), which axum's own `serve` does not bound.
fn serve(router: Router, listeners: Vec<TcpListener>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return log::error!("metrics endpoint: {e}"),
    };
    // Never stopped: the endpoint lives as long as the manager's process.
    let (_never, stopped) = tokio::sync::watch::channel(false);
    runtime.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for listener in listeners {
            let (router, stopped) = (router.clone(), stopped.clone());
            tasks.spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                accept_loop(listener, router, Gate::new(LIMITS), stopped).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done {
                log::error!("metrics endpoint stopped: {e}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_always_and_the_units_address_once() {
        let unit: IpAddr = "10.5.0.7".parse().unwrap();
        let got = addresses(Some(unit), 9464);
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:9464".parse().unwrap(),
            "10.5.0.7:9464".parse().unwrap(),
        ];
        assert_eq!(got, want);
        assert_eq!(addresses(Some("127.0.0.1".parse().unwrap()), 1).len(), 1);
        assert_eq!(addresses(None, 1).len(), 1);
    }

    #[test]
    fn the_endpoint_serves_the_exposition_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(ManagerMetrics::new());
        metrics.created(3);
        let record = dir.path().join("metrics-endpoint");
        let bound = start(metrics, &addresses(None, 0), &record);
        assert_eq!(bound.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&record).unwrap(),
            format!("{}\n", bound[0])
        );
        let get = |path: &str| {
            ureq::get(&format!("http://{}{path}", bound[0]))
                .call()
                .map_err(Box::new)
        };
        let answer = get("/metrics").unwrap();
        assert!(answer.content_type().contains("openmetrics"));
        let text = answer.into_string().unwrap();
        assert!(
            text.contains("github_runner_runners_created_total 3"),
            "{text}"
        );
        match get("/").map_err(|e| *e) {
            Err(ureq::Error::Status(404, _)) => {}
            other => panic!("expected 404, got {other:?}"),
        }
    }
}
