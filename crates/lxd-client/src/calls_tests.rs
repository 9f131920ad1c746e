//! Every request the client builds templates to its route, with no name or id left.

use std::time::Duration;

use super::*;
use crate::request::{self as req, Bytes, FilePush, Method};
use crate::spec::{ExecSpec, InstanceSpec};
use crate::types::{ConfigMap, ImageSource, Network, Profile, StatePut, StoragePool};
use ghr_types::InstanceType;

/// The names the requests below carry; none may survive templating.
const NAMES: &[&str] = &[
    "zq",
    "4f2a",
    "9c1e",
    "ghr-runner",
    "etc",
    "timeout",
    "recursion",
];

fn every_request() -> Vec<(req::Request, &'static str)> {
    let spec = InstanceSpec::new("zq-vm", InstanceType::Container, ImageSource::local("zq"));
    let state = StatePut {
        action: "stop".into(),
        timeout: -1,
        force: true,
    };
    let file = FilePush {
        path: "/etc/zq file".into(),
        content: Bytes::from_static(b"x"),
        uid: 0,
        gid: 0,
        mode: 0o600,
    };
    let profile = Profile {
        name: "zq-profile".into(),
        ..Profile::default()
    };
    let pool = StoragePool {
        name: "zq-pool".into(),
        ..StoragePool::default()
    };
    let network = Network {
        name: "zq-br".into(),
        ..Network::default()
    };
    let log = |url| req::raw_path(Method::Get, url).unwrap();
    let wait = Duration::from_secs(30);
    let exec = ExecSpec::new(["true"]).to_post();
    vec![
        (req::get_server(), "/1.0"),
        (req::patch_server_config(&ConfigMap::new()), "/1.0"),
        (req::list_instances(1), "/1.0/instances"),
        (req::create_instance(&spec.to_post()), "/1.0/instances"),
        (req::get_instance("zq-vm"), "/1.0/instances/{}"),
        (req::delete_instance("zq-vm"), "/1.0/instances/{}"),
        (req::get_instance_state("zq-vm"), "/1.0/instances/{}/state"),
        (
            req::put_instance_state("zq-vm", &state),
            "/1.0/instances/{}/state",
        ),
        (req::exec("zq-vm", &exec), "/1.0/instances/{}/exec"),
        (req::push_file("zq-vm", &file), "/1.0/instances/{}/files"),
        (
            req::pull_file("zq-vm", "/etc/zq"),
            "/1.0/instances/{}/files",
        ),
        (
            log("/1.0/instances/zq-vm/logs/exec_4f2a.stdout"),
            "/1.0/instances/{}/logs/{}",
        ),
        (
            log("/1.0/instances/zq-vm/logs/exec-output/exec_9c1e.stderr"),
            "/1.0/instances/{}/logs/exec-output/{}",
        ),
        (
            req::wait_operation("4f2a-9c1e", wait),
            "/1.0/operations/{}/wait",
        ),
        (req::list_profiles(), "/1.0/profiles"),
        (req::create_profile(&profile), "/1.0/profiles"),
        (req::get_profile("zq-profile"), "/1.0/profiles/{}"),
        (req::update_profile(&profile), "/1.0/profiles/{}"),
        (req::delete_profile("zq-profile"), "/1.0/profiles/{}"),
        (req::create_storage_pool(&pool), "/1.0/storage-pools"),
        (req::get_storage_pool("zq-pool"), "/1.0/storage-pools/{}"),
        (req::update_storage_pool(&pool), "/1.0/storage-pools/{}"),
        (req::delete_storage_pool("zq-pool"), "/1.0/storage-pools/{}"),
        (req::create_network(&network), "/1.0/networks"),
        (req::get_network("zq-br"), "/1.0/networks/{}"),
        (req::get_image_alias("ghr-runner"), "/1.0/images/aliases/{}"),
        (req::get_image("4f2a9c1e"), "/1.0/images/{}"),
    ]
}

#[test]
fn every_request_templates_to_its_route_with_no_name_or_id_left() {
    for (request, expected) in every_request() {
        let template = route(&request.path);
        assert_eq!(template, expected, "{}", request.path);
        for name in NAMES {
            assert!(!template.contains(name), "{name} left in {template}");
        }
    }
}

#[test]
fn a_name_with_a_slash_stays_one_placeholder() {
    // Names are percent-encoded into one segment, so a `/` in one adds no segment.
    assert_eq!(route(&req::get_profile("a/b").path), "/1.0/profiles/{}");
}
