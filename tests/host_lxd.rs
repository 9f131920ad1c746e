//! The LXD setup steps against a real LXD daemon (our own, in a temporary `LXD_DIR` and
//! a network namespace of its own): proves that LXD's API takes the pool, the bridge,
//! the profile devices, the hardening keys and the proxy settings as the typed client
//! sends them, that what the steps read back fits, and that a second run writes nothing
//! (the daemon's own log of the requests it handled says so).

mod lxd_daemon_support;

use github_runner::host::lxd_setup::{self, BlockingLxd};
use github_runner::proxy::ProxyConfig;
use lxd_client::LxdClient;
use lxd_daemon_support::Daemon;

#[test]
fn lxd_setup_against_a_real_daemon_is_accepted_and_idempotent() {
    let Some(daemon) = Daemon::start() else {
        return;
    };
    let lxd = BlockingLxd::new(LxdClient::new(daemon.socket())).unwrap();
    assert!(daemon.writes().is_empty(), "{:?}", daemon.writes());

    // A fresh daemon: what `lxd init` would make, through the same API.
    assert!(lxd_setup::ensure_initialised(&lxd).expect("initialising"));
    assert_eq!(
        daemon.writes(),
        [
            "POST /1.0/storage-pools",
            "POST /1.0/networks",
            "PUT /1.0/profiles/default"
        ]
    );
    assert!(!lxd_setup::ensure_initialised(&lxd).unwrap());
    assert_eq!(daemon.writes().len(), 3, "a second run only reads");
    let pool = daemon.lxc(&["storage", "show", "default"]);
    assert!(pool.contains("\ndriver: dir\n"), "{pool}");
    assert_eq!(
        daemon.lxc(&["network", "get", "lxdbr0", "ipv6.address"]),
        "none"
    );
    assert_eq!(
        daemon.lxc(&["profile", "device", "get", "default", "root", "pool"]),
        "default"
    );
    assert_eq!(
        daemon.lxc(&["profile", "device", "get", "default", "eth0", "network"]),
        "lxdbr0"
    );

    let (bridge, address) = lxd_setup::runner_bridge(&lxd).expect("bridge address");
    assert_eq!(bridge, "lxdbr0");
    assert!(address.is_private(), "{address}");
    let cidr = daemon.lxc(&["network", "get", "lxdbr0", "ipv4.address"]);
    assert!(cidr.starts_with(&format!("{address}/")), "{cidr}");

    assert!(lxd_setup::ensure_nic_hardening(&lxd).expect("hardening"));
    assert!(!lxd_setup::ensure_nic_hardening(&lxd).unwrap());
    for key in lxd_setup::NIC_HARDENING {
        assert_eq!(
            daemon.lxc(&["profile", "device", "get", "default", "eth0", key]),
            "true"
        );
    }
    assert_eq!(
        daemon.lxc(&["profile", "device", "get", "default", "eth0", "network"]),
        "lxdbr0",
        "hardening keeps the rest of the device"
    );

    let proxy = ProxyConfig {
        http: Some("http://squid.internal:3128".into()),
        https: Some("http://squid.internal:3129".into()),
        no_proxy: Some("localhost,127.0.0.1,10.0.0.0/8".into()),
    };
    assert!(lxd_setup::ensure_core_proxy(&lxd, &proxy).expect("core proxy"));
    assert_eq!(
        daemon.lxc(&["config", "get", "core.proxy_http"]),
        "http://squid.internal:3128"
    );
    assert_eq!(
        daemon.lxc(&["config", "get", "core.proxy_https"]),
        "http://squid.internal:3129"
    );
    assert_eq!(
        daemon.lxc(&["config", "get", "core.proxy_ignore_hosts"]),
        "localhost,127.0.0.1,10.0.0.0/8"
    );
    let writes = daemon.writes().len();
    assert!(!lxd_setup::ensure_core_proxy(&lxd, &proxy).unwrap());
    assert_eq!(
        daemon.writes().len(),
        writes,
        "nothing to change, nothing sent"
    );
    assert!(lxd_setup::ensure_core_proxy(&lxd, &ProxyConfig::default()).unwrap());
    assert!(!daemon.lxc(&["config", "show"]).contains("core.proxy"));
    assert_eq!(daemon.writes().last().unwrap(), "PATCH /1.0");
}
