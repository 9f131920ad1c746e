//! Unit tests of the pure layer: request shapes and answer parsing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::request::{self as req, Answer, FilePush, Method};
use super::spec::{ExecSpec, InstanceSpec};
use super::types::{ImageSource, Instance, Profile, StoragePool};
use super::*;
use ghr_types::InstanceType;

fn body(r: &req::Request) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn socket_prefers_lxd_dir_then_snap_then_debian() {
    let dir = Some(PathBuf::from("/var/lib/ghr-testbed/lxd"));
    assert_eq!(
        socket_for(dir, |_| true),
        Path::new("/var/lib/ghr-testbed/lxd/unix.socket")
    );
    assert_eq!(
        socket_for(None, |_| true),
        Path::new("/var/snap/lxd/common/lxd/unix.socket")
    );
    assert_eq!(
        socket_for(None, |_| false),
        Path::new("/var/lib/lxd/unix.socket")
    );
    assert_eq!(
        socket_for(Some(PathBuf::new()), |_| false),
        Path::new("/var/lib/lxd/unix.socket")
    );
}

#[test]
fn create_request_carries_type_source_profiles_config_devices() {
    let mut spec = InstanceSpec::new(
        "app-0-ab12",
        InstanceType::VirtualMachine,
        ImageSource::local("ghr-runner"),
    );
    spec.profiles.push("runner".into());
    spec.config.insert("limits.cpu".into(), "2".into());
    spec.devices.insert(
        "root".into(),
        [
            ("type", "disk"),
            ("path", "/"),
            ("pool", "ghr-pool"),
            ("size", "8GiB"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    spec.ephemeral = true;
    let r = req::create_instance(&spec.to_post());
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Post, "/1.0/instances")
    );
    assert_eq!(r.content_type, Some("application/json"));
    assert_eq!(
        body(&r),
        json!({
            "name": "app-0-ab12", "type": "virtual-machine",
            "source": {"type": "image", "alias": "ghr-runner"},
            "profiles": ["default", "runner"], "config": {"limits.cpu": "2"},
            "devices": {"root": {"type": "disk", "path": "/", "pool": "ghr-pool", "size": "8GiB"}},
            "ephemeral": true
        })
    );
}

#[test]
fn simplestreams_source_names_server_and_protocol() {
    let s = ImageSource::simplestreams("https://cloud-images.ubuntu.com/releases", "22.04");
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({"type": "image", "alias": "22.04", "mode": "pull",
               "server": "https://cloud-images.ubuntu.com/releases", "protocol": "simplestreams"})
    );
}

#[test]
fn exec_request_records_output_with_user_env_cwd() {
    let spec = ExecSpec::new(["sh", "-c", "echo hi"])
        .as_user(1000, 1000, "/home/ubuntu")
        .env("A", "b");
    let r = req::exec("c1", &spec.to_post());
    assert_eq!(r.path, "/1.0/instances/c1/exec");
    assert_eq!(
        body(&r),
        json!({
            "command": ["sh", "-c", "echo hi"],
            "environment": {"A": "b", "HOME": "/home/ubuntu"},
            "wait-for-websocket": false, "record-output": true, "interactive": false,
            "user": 1000, "group": 1000, "cwd": "/home/ubuntu"
        })
    );
    let root = ExecSpec::new(["true"]).to_post();
    let v = serde_json::to_value(root).unwrap();
    assert!(v.get("user").is_none() && v.get("cwd").is_none());
}

#[test]
fn state_and_delete_requests() {
    let r = req::put_instance_state(
        "c1",
        &types::StatePut {
            action: "stop".into(),
            timeout: -1,
            force: true,
        },
    );
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Put, "/1.0/instances/c1/state")
    );
    assert_eq!(
        body(&r),
        json!({"action": "stop", "timeout": -1, "force": true})
    );
    let r = req::delete_instance("c1");
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Delete, "/1.0/instances/c1")
    );
    assert!(r.body.is_empty());
    assert_eq!(req::list_instances(2).path, "/1.0/instances?recursion=2");
}

#[test]
fn file_push_sets_owner_mode_and_encodes_path() {
    let file = FilePush {
        path: "/home/ubuntu/a b&c.env".into(),
        content: b"X=1\n".to_vec().into(),
        uid: 1000,
        gid: 1000,
        mode: 0o600,
    };
    let r = req::push_file("c1", &file);
    assert_eq!(
        r.path,
        "/1.0/instances/c1/files?path=%2Fhome%2Fubuntu%2Fa+b%26c.env"
    );
    assert_eq!(r.body.as_ref(), b"X=1\n");
    // The body shares the file's bytes: 8 runners do not make 8 copies of the app.
    assert_eq!(r.body.as_ptr(), file.content.as_ptr());
    assert_eq!(r.content_type, Some("application/octet-stream"));
    let h = |name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h("X-LXD-uid"), Some("1000"));
    assert_eq!(h("X-LXD-gid"), Some("1000"));
    assert_eq!(h("X-LXD-mode"), Some("0600"));
    assert_eq!(h("X-LXD-type"), Some("file"));
    assert_eq!(h("X-LXD-write"), Some("overwrite"));
}

#[test]
fn wait_request_has_server_timeout_and_longer_client_timeout() {
    let r = req::wait_operation("6916c8a6-9b7d", Duration::from_secs(30));
    assert_eq!(r.path, "/1.0/operations/6916c8a6-9b7d/wait?timeout=30");
    assert!(r.timeout.unwrap() > Duration::from_secs(30));
}

#[test]
fn names_are_percent_encoded_and_foreign_urls_refused() {
    assert_eq!(req::get_profile("a/b c").path, "/1.0/profiles/a%2Fb%20c");
    assert!(req::raw_path(Method::Get, "/1.0/instances/c/logs/exec.stdout").is_ok());
    assert!(req::raw_path(Method::Get, "http://elsewhere/x").is_err());
}

#[test]
fn profile_and_pool_updates_omit_names() {
    let mut p = Profile {
        name: "runner".into(),
        ..Default::default()
    };
    p.config.insert("limits.memory".into(), "2GiB".into());
    let r = req::update_profile(&p);
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Put, "/1.0/profiles/runner")
    );
    assert_eq!(
        body(&r),
        json!({"description": "", "config": {"limits.memory": "2GiB"}, "devices": {}})
    );
    let pool = StoragePool {
        name: "ghr-pool".into(),
        driver: "dir".into(),
        ..Default::default()
    };
    assert_eq!(
        body(&req::create_storage_pool(&pool)),
        json!({"name": "ghr-pool", "driver": "dir", "description": "", "config": {}})
    );
    assert_eq!(
        body(&req::update_storage_pool(&pool)),
        json!({"description": "", "config": {}})
    );
}

#[test]
fn sync_answer_gives_metadata() {
    let raw = br#"{"type":"sync","status":"Success","status_code":200,"operation":"",
        "error_code":0,"error":"","metadata":{"name":"ghr-runner","target":"3370bf","type":"container","description":""}}"#;
    let alias: ImageAlias = req::decode(req::parse_answer(200, raw).unwrap()).unwrap();
    assert_eq!(
        (alias.name.as_str(), alias.target.as_str()),
        ("ghr-runner", "3370bf")
    );
}

#[test]
fn async_answer_gives_operation() {
    let raw = br#"{"type":"async","status":"Operation created","status_code":100,
        "operation":"/1.0/operations/b8d8","error_code":0,"error":"",
        "metadata":{"id":"b8d8","class":"task","description":"Creating instance",
        "created_at":"2026-01-01T00:00:00Z","status":"Running","status_code":103,
        "resources":{"instances":["/1.0/instances/c1"]},"metadata":null,"may_cancel":false,"err":"","location":"none"}}"#;
    match req::parse_answer(202, raw).unwrap() {
        Answer::Async(op) => {
            assert_eq!(op.id, "b8d8");
            assert!(!op.is_done());
        }
        other => panic!("expected async, got {other:?}"),
    }
}

#[test]
fn error_answers_carry_lxd_message_and_code() {
    let raw = br#"{"type":"error","status":"","status_code":0,"operation":"","error_code":404,
        "error":"Image \"nope\" not found","metadata":null}"#;
    let err = req::parse_answer(404, raw).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "LXD: Image \"nope\" not found");
    let raw = br#"{"type":"error","error_code":400,"error":"Instance is running","metadata":null}"#;
    match req::parse_answer(400, raw).unwrap_err() {
        LxdError::Api { status, message } => {
            assert_eq!((status, message.as_str()), (400, "Instance is running"))
        }
        other => panic!("{other:?}"),
    }
    // A non-JSON error body still yields an error with its text.
    let err = req::parse_answer(502, b"Bad Gateway").unwrap_err();
    assert_eq!(err.to_string(), "LXD error 502: Bad Gateway");
    assert!(matches!(
        req::parse_answer(200, b"<html>"),
        Err(LxdError::Protocol(_))
    ));
}

#[test]
fn raw_bodies_pass_through_and_errors_still_parse() {
    assert_eq!(req::parse_raw(200, b"hello".to_vec()).unwrap(), b"hello");
    let raw = br#"{"type":"error","error_code":404,"error":"not found","metadata":null}"#;
    assert!(req::parse_raw(404, raw.to_vec())
        .unwrap_err()
        .is_not_found());
}

#[test]
fn failed_operation_becomes_error_with_its_err_text() {
    let op: Operation = serde_json::from_value(json!({
        "id": "x", "description": "Executing command", "status": "Failure",
        "status_code": 400, "err": "Command not found", "metadata": null
    }))
    .unwrap();
    assert!(op.is_done());
    let err = req::operation_result(op).unwrap_err();
    assert_eq!(
        err.to_string(),
        "LXD operation 'Executing command' Failure: Command not found"
    );
}

/// LXD 5.0's own answer to a delete while the instance is still being created (seen on
/// the test daemon), and the same words in a direct error: both are typed as busy.
#[test]
fn busy_answers_are_typed_as_busy() {
    let op: Operation = serde_json::from_value(json!({
        "id": "x", "description": "Deleting instance", "status": "Failure",
        "status_code": 400, "metadata": null,
        "err": "Failed to create instance delete operation: Instance is busy running a \"create\" operation"
    }))
    .unwrap();
    let err = req::operation_result(op).unwrap_err();
    assert!(err.is_busy(), "{err:?}");
    assert!(
        err.to_string().contains("busy running a \"create\""),
        "{err}"
    );
    let raw = br#"{"type":"error","error_code":500,"error":"Instance is busy running a \"start\" operation"}"#;
    assert!(req::parse_answer(500, raw).unwrap_err().is_busy());
    let raw = br#"{"type":"error","error_code":400,"error":"Instance is running","metadata":null}"#;
    assert!(!req::parse_answer(400, raw).unwrap_err().is_busy());
}

#[test]
fn exec_result_reads_return_code_and_log_urls() {
    let r: types::ExecResult = serde_json::from_value(json!({
        "return": 3, "output": {"1": "/1.0/instances/c1/logs/exec_1.stdout",
                                "2": "/1.0/instances/c1/logs/exec_1.stderr"}
    }))
    .unwrap();
    assert_eq!(r.exit_code, 3);
    assert_eq!(r.output["2"], "/1.0/instances/c1/logs/exec_1.stderr");
}

#[test]
fn instance_with_state_yields_global_ipv4() {
    let inst: Instance = serde_json::from_value(json!({
        "name": "c1", "status": "Running", "type": "container", "profiles": ["default"],
        "state": {"status": "Running", "status_code": 103, "pid": 42, "network": {
            "eth0": {"addresses": [
                {"family": "inet6", "address": "fe80::1", "netmask": "64", "scope": "link"},
                {"family": "inet", "address": "10.216.1.7", "netmask": "24", "scope": "global"}
            ], "state": "up", "hwaddr": "00:16:3e:00:00:01"},
            "lo": {"addresses": [{"family": "inet", "address": "127.0.0.1", "netmask": "8", "scope": "local"}]}
        }}
    }))
    .unwrap();
    assert!(inst.is_running());
    let state = inst.state.unwrap();
    assert_eq!(state.ipv4("eth0"), Some("10.216.1.7".parse().unwrap()));
    assert_eq!(state.ipv4("lo"), None);
    assert_eq!(state.ipv4("eth1"), None);
    let stopped: InstanceState =
        serde_json::from_value(json!({"status": "Stopped", "network": null})).unwrap();
    assert_eq!(stopped.ipv4("eth0"), None);
}
