//! The LXD client against the real test daemon started by `scripts/testbed.sh up`.
//!
//! Uses `$LXD_DIR` (default /var/lib/ghr-testbed/lxd) and the image alias `ghr-runner`
//! (or `$GHR_TEST_IMAGE`). Without the daemon's socket the tests skip, unless CI=true.
//! Every instance a test creates is removed by a guard, also when the test fails.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use github_runner::config::InstanceType;
use lxd_client::{ExecSpec, FilePush, ImageSource, InstanceSpec, LxdClient, LxdError, Profile};
use tokio::task::JoinSet;

const READY_TIMEOUT: Duration = Duration::from_secs(90);

fn lxd_dir() -> PathBuf {
    std::env::var_os("LXD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/ghr-testbed/lxd"))
}

fn image() -> String {
    std::env::var("GHR_TEST_IMAGE").unwrap_or_else(|_| "ghr-runner".into())
}

/// The client, or None (with the reason printed) when there is no daemon to test.
fn client_or_skip() -> Option<LxdClient> {
    let socket = lxd_dir().join("unix.socket");
    if socket.exists() {
        return Some(LxdClient::new(socket));
    }
    let reason = format!(
        "no LXD socket at {} (run scripts/testbed.sh up)",
        socket.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {reason}");
    }
    eprintln!("skipping: {reason}");
    None
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Removes the named instances (and profiles) when dropped, also when a test fails.
struct Guard {
    socket: PathBuf,
    instances: Vec<String>,
    profiles: Vec<String>,
}

impl Guard {
    fn new(client: &LxdClient) -> Self {
        Guard {
            socket: client.socket().to_path_buf(),
            instances: Vec::new(),
            profiles: Vec::new(),
        }
    }

    fn instance(&mut self, prefix: &str) -> String {
        let name = unique(prefix);
        self.instances.push(name.clone());
        name
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let socket = self.socket.clone();
        let instances = std::mem::take(&mut self.instances);
        let profiles = std::mem::take(&mut self.profiles);
        let cleanup = async move {
            let client = LxdClient::new(socket);
            let mut tasks = JoinSet::new();
            for name in instances {
                let client = client.clone();
                tasks.spawn(async move {
                    if let Err(e) = client.remove_instance(&name).await {
                        eprintln!("cleanup of instance {name} failed: {e}");
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            for name in profiles {
                match client.delete_profile(&name).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => eprintln!("cleanup of profile {name} failed: {e}"),
                }
            }
        };
        // The tests run on a multi-thread runtime: finish the cleanup on it, also while
        // a failed test unwinds.
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(move || handle.block_on(cleanup));
    }
}

fn spec(name: &str) -> InstanceSpec {
    InstanceSpec::new(name, InstanceType::Container, ImageSource::local(&image()))
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_lifecycle_exec_files_and_listing() {
    let Some(client) = client_or_skip() else {
        return;
    };
    let mut guard = Guard::new(&client);
    let name = guard.instance("t-lxd");

    let started = Instant::now();
    client.launch(&spec(&name)).await.expect("launch");
    let launched = started.elapsed();
    let ip = client
        .wait_ready(&name, "eth0", READY_TIMEOUT)
        .await
        .expect("ready");
    eprintln!(
        "launch {:?}, ready with {ip} after {:?}",
        launched,
        started.elapsed()
    );
    assert!(
        ip.octets()[..3] == [10, 216, 1],
        "address {ip} not on ghrbr0"
    );

    // Exit codes and both streams pass through.
    let out = client
        .exec(
            &name,
            &ExecSpec::new(["sh", "-c", "echo out; echo err >&2; exit 7"]),
        )
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 7);
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");

    // Asked for output on failure only: a success reads nothing back, a failure does.
    let quiet = |script: &str| ExecSpec::new(["sh", "-c", script]).output_on_failure_only();
    let out = client
        .exec(&name, &quiet("echo out; echo err >&2"))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout_text(), out.stderr_text()),
        (0, "".into(), "".into())
    );
    let out = client
        .exec(&name, &quiet("echo out; echo err >&2; exit 3"))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout_text(), out.stderr_text()),
        (3, "out\n".into(), "err\n".into())
    );

    // User, environment and working directory.
    let who = ExecSpec::new(["sh", "-c", "echo $(id -un) $(id -u) $HOME $(pwd) $GREETING"])
        .as_user(1000, 1000, "/home/ubuntu")
        .env("GREETING", "hi");
    let out = client.exec(&name, &who).await.expect("exec as ubuntu");
    assert_eq!(
        out.stdout_text(),
        "ubuntu 1000 /home/ubuntu /home/ubuntu hi\n"
    );
    let sudo = ExecSpec::new(["sudo", "-n", "id", "-u"]).as_user(1000, 1000, "/home/ubuntu");
    let out = client.exec(&name, &sudo).await.expect("sudo");
    assert_eq!((out.exit_code, out.stdout_text()), (0, "0\n".into()));

    // Commands that cannot be found give 127, directly or from a shell.
    let out = client
        .exec(&name, &ExecSpec::new(["/nonexistent"]))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 127);
    let out = client
        .exec(&name, &ExecSpec::new(["sh", "-c", "/nonexistent"]))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 127);

    // File push: content, owner and mode, read back from inside.
    let content = b"A=1\nB=two words\n\x00\xffbinary".to_vec();
    let file = FilePush {
        path: "/home/ubuntu/test file.env".into(),
        content: content.clone().into(),
        uid: 1000,
        gid: 1000,
        mode: 0o640,
    };
    client.push_file(&name, &file).await.expect("push");
    let out = client
        .exec(
            &name,
            &ExecSpec::new(["stat", "-c", "%u %g %a", "/home/ubuntu/test file.env"]),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "1000 1000 640\n");
    let out = client
        .exec(&name, &ExecSpec::new(["cat", "/home/ubuntu/test file.env"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, content);
    let pulled = client
        .pull_file(&name, "/home/ubuntu/test file.env")
        .await
        .unwrap();
    assert_eq!(pulled, content);

    // Listing with state shows the instance running with its address.
    let all = client.list_instances(true).await.expect("list");
    let me = all.iter().find(|i| i.name == name).expect("listed");
    assert!(me.is_running());
    assert_eq!(me.state.as_ref().and_then(|s| s.ipv4("eth0")), Some(ip));
    let shallow = client.list_instances(false).await.expect("list");
    assert!(shallow.iter().any(|i| i.name == name && i.state.is_none()));

    // Stop, delete, and then it is gone.
    client.stop_instance(&name, true).await.expect("stop");
    assert_eq!(client.get_instance(&name).await.unwrap().status, "Stopped");
    client.delete_instance(&name).await.expect("delete");
    let err = client.get_instance(&name).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // Removing what is gone is fine (cleanup paths rely on it).
    client.remove_instance(&name).await.expect("remove twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_image_alias_gives_lxd_message() {
    let Some(client) = client_or_skip() else {
        return;
    };
    let mut guard = Guard::new(&client);
    let name = guard.instance("t-lxd");
    let alias = "ghr-no-such-image";

    let err = client.get_image_alias(alias).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    let missing = InstanceSpec::new(&name, InstanceType::Container, ImageSource::local(alias));
    let err = client.create_instance(&missing).await.unwrap_err();
    eprintln!("create from missing alias: {err}");
    let text = err.to_string().to_lowercase();
    assert!(text.contains("not found"), "{err:?}");
    assert!(client.get_instance(&name).await.unwrap_err().is_not_found());

    let err = client.stop_instance(&name, true).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_pools_networks_images() {
    let Some(client) = client_or_skip() else {
        return;
    };
    let mut guard = Guard::new(&client);

    let net = client.get_network("ghrbr0").await.expect("network");
    assert!(net.managed);
    assert_eq!(
        net.config.get("ipv4.nat").map(String::as_str),
        Some("false")
    );
    let pool = client.get_storage_pool("ghr-pool").await.expect("pool");
    assert_eq!(pool.driver, "dir");
    // Updating a pool with its own config is a no-op LXD accepts.
    client
        .update_storage_pool(&pool)
        .await
        .expect("pool update");
    let alias = client.get_image_alias(&image()).await.expect("alias");
    let img = client.get_image(&alias.target).await.expect("image");
    assert_eq!(img.fingerprint, alias.target);

    let name = unique("t-lxd-prof");
    guard.profiles.push(name.clone());
    let mut profile = Profile {
        name: name.clone(),
        description: "test".into(),
        ..Default::default()
    };
    profile.config.insert("limits.cpu".into(), "1".into());
    client
        .create_profile(&profile)
        .await
        .expect("create profile");
    let err = client.create_profile(&profile).await.unwrap_err();
    assert!(matches!(err, LxdError::Api { .. }), "{err:?}");
    profile
        .config
        .insert("limits.memory".into(), "512MiB".into());
    client
        .update_profile(&profile)
        .await
        .expect("update profile");
    let back = client.get_profile(&name).await.expect("get profile");
    assert_eq!(back.config, profile.config);
    client.delete_profile(&name).await.expect("delete profile");
    assert!(client.get_profile(&name).await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_parallel_creations() {
    let Some(client) = client_or_skip() else {
        return;
    };
    let mut guard = Guard::new(&client);
    let names: Vec<String> = (0..8).map(|_| guard.instance("t-lxd-par")).collect();

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for name in names.clone() {
        let client = client.clone();
        tasks.spawn(async move {
            client.launch(&spec(&name)).await?;
            client.wait_ready(&name, "eth0", READY_TIMEOUT).await
        });
    }
    let mut ips = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        ips.push(joined.expect("task").expect("launch and ready"));
    }
    eprintln!(
        "8 parallel: all ready (exec + IPv4) after {:?}",
        started.elapsed()
    );
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 8, "addresses must be distinct");

    let listed = client.list_instances(true).await.unwrap();
    for name in &names {
        assert!(listed.iter().any(|i| &i.name == name && i.is_running()));
    }
    let removing = Instant::now();
    let mut tasks = JoinSet::new();
    for name in names {
        let client = client.clone();
        tasks.spawn(async move { client.remove_instance(&name).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task").expect("remove");
    }
    eprintln!("8 parallel: removed after {:?}", removing.elapsed());
}

/// LXD's own floor for 1 and 8 bare launches (run with `--ignored --nocapture`).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run alone"]
async fn launch_floor_benchmark() {
    let Some(client) = client_or_skip() else {
        return;
    };
    for n in [1, 8] {
        let prefix = unique("t-lxd-bench");
        let floor = test_support::lxd_bench::launch_floor(&client, &image(), &prefix, n)
            .await
            .expect("launch floor");
        eprintln!(
            "launch floor n={n}: total {:?}, each {:?}",
            floor.total, floor.each
        );
    }
}
