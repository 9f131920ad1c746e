use serde_json::json;

use super::*;

fn valid() -> serde_json::Value {
    json!({"path": "acme", "token": "ghp_secretvalue123"})
}

fn with(key: &str, value: serde_json::Value) -> Result<CharmConfig, ConfigError> {
    let mut v = valid();
    v[key] = value;
    CharmConfig::from_json(&v)
}

fn invalid_message(key: &str, value: serde_json::Value) -> String {
    match with(key, value.clone()) {
        Err(e @ ConfigError::Invalid(_)) => e.to_string(),
        other => panic!("{key}={value}: expected invalid, got {other:?}"),
    }
}

#[test]
fn defaults_with_token_and_path_are_valid() {
    let c = CharmConfig::from_json(&valid()).unwrap();
    assert_eq!(
        c.path,
        GithubPath::Org {
            org: "acme".into(),
            group: "default".into()
        }
    );
    assert_eq!(c.virtual_machines, 1);
    assert_eq!(c.vm_cpu, 2);
    assert_eq!(c.vm_memory, ByteSize(7 << 30));
    assert_eq!(c.vm_disk, ByteSize(10 << 30));
    assert_eq!(c.reconcile_interval_minutes, 10);
    assert!(c.denylist.is_empty());
    assert_eq!(c.dockerhub_mirror, None);
    assert!(!c.use_aproxy);
    assert_eq!(c.test_mode, TestMode::Off);
    assert!(c.labels.is_empty());
    assert_eq!(c.github_url.api_base(), "https://api.github.com");
    assert_eq!(c.instance_type, InstanceType::VirtualMachine);
    assert_eq!(c.runner_image, None);
}

#[test]
fn missing_token_and_path_lists_only_the_missing() {
    let both = CharmConfig::from_json(&json!({})).unwrap_err();
    assert_eq!(
        both.to_string(),
        format!("Missing required charm configuration: {NO_CREDENTIAL}, path")
    );
    let token = CharmConfig::from_json(&json!({"path": "acme"})).unwrap_err();
    assert_eq!(
        token.to_string(),
        format!("Missing required charm configuration: {NO_CREDENTIAL}")
    );
    let path = CharmConfig::from_json(&json!({"token": "t"})).unwrap_err();
    assert_eq!(
        path.to_string(),
        "Missing required charm configuration: path"
    );
    let blank = CharmConfig::from_json(&json!({"token": "  ", "path": "o/r"})).unwrap_err();
    assert_eq!(
        blank.to_string(),
        format!("Missing required charm configuration: {NO_CREDENTIAL}")
    );
}

#[test]
fn path_forms() {
    assert_eq!(
        with("path", json!("owner/repo")).unwrap().path,
        GithubPath::Repo {
            owner: "owner".into(),
            repo: "repo".into()
        }
    );
    let org = with("group", json!("gpu")).unwrap();
    assert_eq!(
        org.path,
        GithubPath::Org {
            org: "acme".into(),
            group: "gpu".into()
        }
    );
    assert_eq!(org.path.api_prefix(), "orgs/acme");
    for bad in ["a/b/c", "a b", "owner/", "/repo", "ac$me", ".."] {
        assert!(
            invalid_message("path", json!(bad)).starts_with("invalid config: path"),
            "{bad}"
        );
    }
    assert_eq!(
        invalid_message("path", json!("a/b/c")),
        "invalid config: path \"a/b/c\": must be an organisation or owner/repo"
    );
}

#[test]
fn group_is_checked_for_orgs_only() {
    assert!(invalid_message("group", json!("")).contains("group"));
    let mut v = valid();
    v["path"] = json!("o/r");
    v["group"] = json!("");
    assert!(
        CharmConfig::from_json(&v).is_ok(),
        "a repo path ignores group"
    );
}

#[test]
fn token_errors_never_show_the_token() {
    for bad in ["ghp_abc def", "ghp_abc\ndef", "ghp_\tx"] {
        let msg = invalid_message("token", json!(bad));
        assert!(msg.contains("token \"<redacted>\""), "{msg}");
        assert!(!msg.contains("ghp_"), "{msg}");
    }
    let debug = format!("{:?}", CharmConfig::from_json(&valid()).unwrap());
    assert!(!debug.contains("secretvalue"), "{debug}");
}

#[test]
fn wrong_types_do_not_echo_values() {
    let err = CharmConfig::from_json(&json!({"token": 12345678, "path": "a"})).unwrap_err();
    assert!(!err.to_string().contains("12345678"), "{err}");
    let err = CharmConfig::from_json(&json!({"virtual-machines": "ghp_secret", "path": "a"}))
        .unwrap_err();
    assert!(!err.to_string().contains("ghp_secret"), "{err}");
}

#[test]
fn integer_ranges() {
    assert_eq!(
        with("virtual-machines", json!(0)).unwrap().virtual_machines,
        0
    );
    assert_eq!(
        with("virtual-machines", json!(500))
            .unwrap()
            .virtual_machines,
        500
    );
    assert_eq!(
        invalid_message("virtual-machines", json!(-1)),
        "invalid config: virtual-machines \"-1\": must be at least 0"
    );
    assert!(invalid_message("virtual-machines", json!(501)).contains("at most 500"));
    assert!(invalid_message("vm-cpu", json!(0)).contains("vm-cpu \"0\": must be at least 1"));
    assert!(invalid_message("vm-cpu", json!(5000)).contains("at most"));
    assert_eq!(with("vm-cpu", json!(8)).unwrap().vm_cpu, 8);
    assert!(invalid_message("reconcile-interval", json!(0)).contains("reconcile-interval"));
    assert!(invalid_message("reconcile-interval", json!(100000)).contains("at most 1440"));
    assert_eq!(
        with("reconcile-interval", json!(5))
            .unwrap()
            .reconcile_interval_minutes,
        5
    );
}

#[test]
fn sizes() {
    assert_eq!(ByteSize::parse("512MiB").unwrap(), ByteSize(512 << 20));
    assert_eq!(ByteSize::parse("2GB").unwrap(), ByteSize(2_000_000_000));
    assert_eq!(ByteSize::parse("1EiB").unwrap(), ByteSize(1 << 60));
    assert_eq!(ByteSize::parse("1048576").unwrap(), ByteSize(1 << 20));
    assert_eq!(ByteSize::parse("4KiB").unwrap().to_lxd(), "4096B");
    assert_eq!(
        invalid_message("vm-memory", json!("7XB")),
        "invalid config: vm-memory \"7XB\": unknown unit"
    );
    assert!(invalid_message("vm-memory", json!("")).contains("expected a number"));
    assert!(invalid_message("vm-memory", json!("GiB")).contains("expected a number"));
    assert!(invalid_message("vm-memory", json!("0GiB")).contains("greater than zero"));
    assert!(invalid_message("vm-memory", json!("1KiB")).contains("at least 64MiB"));
    assert!(invalid_message("vm-disk", json!("99999999999EiB")).contains("too large"));
    assert!(invalid_message("vm-disk", json!("-5GiB")).contains("vm-disk"));
    assert_eq!(
        with("vm-disk", json!("20GiB")).unwrap().vm_disk,
        ByteSize(20 << 30)
    );
}

#[test]
fn denylist() {
    let c = with("denylist", json!("10.0.0.0/8, 192.168.1.7 ,,172.16.5.9/12")).unwrap();
    let shown: Vec<String> = c.denylist.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.0.0.0/8", "192.168.1.7/32", "172.16.0.0/12"]);
    let msg = invalid_message("denylist", json!("10.0.0.0/8,10.1.2.300/24"));
    assert!(
        msg.contains("\"10.1.2.300/24\" is not an IPv4 CIDR"),
        "{msg}"
    );
    assert!(invalid_message("denylist", json!("10.0.0.0/33")).contains("not an IPv4 CIDR"));
    assert!(invalid_message("denylist", json!("fd00::/8")).contains("not an IPv4 CIDR"));
}

#[test]
fn dockerhub_mirror() {
    assert_eq!(
        with("dockerhub-mirror", json!("https://mirror.example.com/"))
            .unwrap()
            .dockerhub_mirror
            .as_deref(),
        Some("https://mirror.example.com")
    );
    assert!(invalid_message("dockerhub-mirror", json!("http://mirror"))
        .contains("must be an https:// URL"));
    assert!(invalid_message("dockerhub-mirror", json!("mirror.example.com")).contains("not a URL"));
}

#[test]
fn flags_and_enums() {
    assert!(
        with("experimental-use-aproxy", json!(true))
            .unwrap()
            .use_aproxy
    );
    // config-get gives a boolean option as JSON true/false; anything else is refused
    // naming the option, never echoing the value.
    for bad in [json!("maybe"), json!("true"), json!(1), json!(null)] {
        let err = with("experimental-use-aproxy", bad.clone())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("experimental-use-aproxy") && err.contains("true or false"),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        with("test-mode", json!("insecure")).unwrap().test_mode,
        TestMode::Insecure
    );
    assert!(invalid_message("test-mode", json!("yes")).contains("test-mode"));
    assert_eq!(
        with("runner-instance-type", json!("container"))
            .unwrap()
            .instance_type,
        InstanceType::Container
    );
    assert!(invalid_message("runner-instance-type", json!("vm"))
        .contains("runner-instance-type \"vm\""));
    assert_eq!(
        with("runner-image", json!("ghr-runner"))
            .unwrap()
            .runner_image
            .as_deref(),
        Some("ghr-runner")
    );
    assert!(invalid_message("runner-image", json!("a b")).contains("runner-image"));
}

#[test]
fn labels() {
    assert_eq!(
        with("labels", json!("gpu, large,gpu")).unwrap().labels,
        ["gpu", "large"]
    );
    assert!(invalid_message("labels", json!("ok,bad label")).contains("labels"));
    let many: Vec<String> = (0..91).map(|i| format!("l{i}")).collect();
    assert!(invalid_message("labels", json!(many.join(","))).contains("at most 90"));
}

#[test]
fn github_url() {
    let ghes = with("github-url", json!("https://ghes.example.com/")).unwrap();
    assert_eq!(
        ghes.github_url.api_base(),
        "https://ghes.example.com/api/v3"
    );
    let mut sim = valid();
    sim["github-url"] = json!("http://127.0.0.1:8000");
    sim["test-mode"] = json!("insecure");
    let sim = CharmConfig::from_json(&sim).unwrap();
    assert_eq!(sim.github_url.api_base(), "http://127.0.0.1:8000/api/v3");
    assert!(invalid_message("github-url", json!("ftp://x")).contains("github-url"));
    assert!(invalid_message("github-url", json!("not a url")).contains("not a URL"));
}

#[test]
fn github_url_must_be_https_unless_test_mode_is_insecure() {
    let clear = invalid_message("github-url", json!("http://ghes.example.com"));
    assert!(
        clear.starts_with("invalid config: github-url \"http://ghes.example.com\"")
            && clear.contains("https://")
            && clear.contains("test-mode=insecure"),
        "{clear}"
    );
    // The scheme is read as URLs read it, whatever its case.
    let upper = with("github-url", json!("HTTPS://ghes.example.com")).unwrap();
    assert!(upper.github_url.is_https());
    let mut insecure = valid();
    insecure["github-url"] = json!("http://127.0.0.1:8000");
    insecure["test-mode"] = json!("insecure");
    let sim = CharmConfig::from_json(&insecure).unwrap();
    assert!(!sim.github_url.is_https());
    assert_eq!(sim.test_mode, TestMode::Insecure);
}

#[test]
fn every_bad_option_is_reported_together() {
    let mut v = valid();
    v["vm-cpu"] = json!(0);
    v["vm-memory"] = json!("1XB");
    let msg = CharmConfig::from_json(&v).unwrap_err().to_string();
    assert!(msg.contains("vm-cpu") && msg.contains("vm-memory"), "{msg}");
}

#[test]
fn long_and_odd_strings_are_shortened_in_messages() {
    let long = "x".repeat(10_000);
    let msg = invalid_message("test-mode", json!(long));
    assert!(msg.len() < 200, "{msg}");
    let msg = invalid_message("test-mode", json!("a\u{0}b\u{7}"));
    assert!(!msg.contains('\u{0}'), "{msg:?}");
}

#[test]
fn fingerprint_is_stable_and_not_the_token() {
    let t = Token::new("ghp_secretvalue123");
    assert_eq!(
        t.fingerprint(),
        Token::new("ghp_secretvalue123").fingerprint()
    );
    assert_ne!(t.fingerprint(), Token::new("other").fingerprint());
    assert!(!t.fingerprint().contains("secret"));
    assert_eq!(format!("{t} {t:?}"), "<redacted> Secret(<redacted>)");
}

#[test]
fn the_maximum_picks_the_mode_and_must_hold_the_warm_pool() {
    assert_eq!(valid_config().mode(), Mode::Static { runners: 1 });
    let on_demand = with("max-total-virtual-machines", json!(6)).unwrap();
    assert_eq!(on_demand.mode(), Mode::OnDemand { warm: 1, max: 6 });
    assert!(invalid_message("max-total-virtual-machines", json!(-1)).contains("at least 0"));
    assert!(invalid_message("max-total-virtual-machines", json!(501)).contains("at most 500"));
    let mut raw = valid();
    raw["virtual-machines"] = json!(4);
    raw["max-total-virtual-machines"] = json!(3);
    let err = CharmConfig::from_json(&raw).unwrap_err().to_string();
    assert!(
        err.contains("max-total-virtual-machines \"3\"") && err.contains("virtual-machines (4)"),
        "{err}"
    );
    raw["max-total-virtual-machines"] = json!(4);
    assert_eq!(
        CharmConfig::from_json(&raw).unwrap().mode(),
        Mode::OnDemand { warm: 4, max: 4 }
    );
}

fn valid_config() -> CharmConfig {
    CharmConfig::from_json(&valid()).unwrap()
}
