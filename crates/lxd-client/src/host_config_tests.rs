//! Unit tests of the requests and accessors host setup uses: networks, the server's
//! settings, and what the default profile says about the bridge and the root disk.

use serde_json::json;

use super::request::{self as req, Method};
use super::types::{ConfigMap, Network, Profile, Server};

fn body(r: &req::Request) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn map(pairs: &[(&str, &str)]) -> ConfigMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn network_creation_posts_name_type_and_config_only() {
    let bridge = Network {
        name: "lxdbr0".into(),
        kind: "bridge".into(),
        config: map(&[("ipv4.address", "auto"), ("ipv6.address", "none")]),
        managed: true,
        status: "Created".into(),
        ..Default::default()
    };
    let r = req::create_network(&bridge);
    assert_eq!((r.method, r.path.as_str()), (Method::Post, "/1.0/networks"));
    assert_eq!(r.content_type, Some("application/json"));
    assert_eq!(
        body(&r),
        json!({"name": "lxdbr0", "type": "bridge", "description": "",
               "config": {"ipv4.address": "auto", "ipv6.address": "none"}})
    );
}

#[test]
fn server_settings_are_patched_and_an_empty_value_unsets() {
    let r = req::patch_server_config(&map(&[
        ("core.proxy_http", "http://squid:3128"),
        ("core.proxy_ignore_hosts", ""),
    ]));
    assert_eq!((r.method, r.path.as_str()), (Method::Patch, "/1.0"));
    assert_eq!(Method::Patch.as_str(), "PATCH");
    assert_eq!(
        body(&r),
        json!({"config": {"core.proxy_http": "http://squid:3128", "core.proxy_ignore_hosts": ""}})
    );
}

#[test]
fn server_settings_read_as_text() {
    let server: Server = serde_json::from_value(json!({
        "api_version": "1.0",
        "config": {"core.proxy_http": "http://p:1", "images.auto_update_interval": 6, "x": true}
    }))
    .unwrap();
    assert_eq!(server.config["core.proxy_http"], "http://p:1");
    assert_eq!(server.config["images.auto_update_interval"], "6");
    assert_eq!(server.config["x"], "true");
    let bare: Server = serde_json::from_value(json!({"config": null})).unwrap();
    assert!(bare.config.is_empty());
}

#[test]
fn the_profile_names_its_bridge_and_root_disk() {
    let profile: Profile = serde_json::from_value(json!({
        "name": "default",
        "devices": {
            "root": {"type": "disk", "path": "/", "pool": "default"},
            "eth0": {"type": "nic", "name": "eth0", "network": "lxdbr0"}
        }
    }))
    .unwrap();
    assert_eq!(profile.nic_network(), Some("lxdbr0"));
    assert_eq!(profile.nic().unwrap().0, "eth0");
    assert!(profile.has_root_disk());
    let macvlan: Profile = serde_json::from_value(json!({
        "name": "default",
        "devices": {"data": {"type": "disk", "path": "/data", "source": "/srv"},
                    "eth0": {"type": "nic", "nictype": "bridged", "parent": "br0"}}
    }))
    .unwrap();
    assert_eq!(macvlan.nic_network(), Some("br0"));
    assert!(!macvlan.has_root_disk(), "a disk elsewhere is not the root");
    assert_eq!(Profile::default().nic_network(), None);
}

#[test]
fn the_network_gives_the_hosts_address_without_its_prefix() {
    let mut net = Network {
        config: map(&[("ipv4.address", "10.91.4.1/24")]),
        ..Default::default()
    };
    assert_eq!(net.ipv4_address(), Some("10.91.4.1".parse().unwrap()));
    net.config.insert("ipv4.address".into(), "none".into());
    assert_eq!(net.ipv4_address(), None);
    assert_eq!(Network::default().ipv4_address(), None);
}
