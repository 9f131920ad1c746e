use super::*;

fn proxy() -> ProxyConfig {
    ProxyConfig {
        http: Some("http://proxy.internal:3128".into()),
        https: Some("http://sproxy.internal:3128".into()),
        no_proxy: Some("localhost,10.0.0.0/8,.svc".into()),
    }
}

fn env<'a>(proxy: &'a ProxyConfig, mirror: Option<&'a str>) -> RunnerEnv<'a> {
    RunnerEnv {
        proxy,
        runner_name: "github-runner-0-abc123",
        dockerhub_mirror: mirror,
        job_started_hook: "/home/ubuntu/actions-runner/pre-job.sh",
    }
}

#[test]
fn dot_env_with_proxy_mirror_and_hook() {
    let p = proxy();
    let got = env(&p, Some("https://mirror.example.com"))
        .render_dot_env()
        .unwrap();
    assert_eq!(
        got,
        "http_proxy=http://proxy.internal:3128\n\
         HTTP_PROXY=http://proxy.internal:3128\n\
         https_proxy=http://sproxy.internal:3128\n\
         HTTPS_PROXY=http://sproxy.internal:3128\n\
         no_proxy=localhost,10.0.0.0/8,.svc,127.0.0.1,::1,github-runner-0-abc123\n\
         NO_PROXY=localhost,10.0.0.0/8,.svc,127.0.0.1,::1,github-runner-0-abc123\n\
         DOCKERHUB_MIRROR=https://mirror.example.com\n\
         ACTIONS_RUNNER_HOOK_JOB_STARTED=/home/ubuntu/actions-runner/pre-job.sh\n"
    );
}

#[test]
fn without_a_proxy_only_the_hook_is_set() {
    let p = ProxyConfig::default();
    let e = env(&p, None);
    assert_eq!(
        e.render_dot_env().unwrap(),
        "ACTIONS_RUNNER_HOOK_JOB_STARTED=/home/ubuntu/actions-runner/pre-job.sh\n"
    );
    assert!(!e.render_etc_environment().unwrap().contains("proxy"));
    assert_eq!(e.render_docker_daemon_json(), "{}\n");
    assert_eq!(e.render_docker_client_config(), "{}\n");
}

#[test]
fn https_falls_back_to_the_http_proxy_and_no_proxy_gets_name_and_svc() {
    let p = ProxyConfig {
        http: Some("http://p:1".into()),
        https: None,
        no_proxy: None,
    };
    let vars = env(&p, None).proxy_vars();
    assert!(vars.contains(&("HTTPS_PROXY".into(), "http://p:1".into())));
    assert!(vars.contains(&(
        "no_proxy".into(),
        "localhost,127.0.0.1,::1,github-runner-0-abc123,.svc".into()
    )));
}

#[test]
fn etc_environment_quotes_values() {
    let p = proxy();
    let got = env(&p, None).render_etc_environment().unwrap();
    assert!(got.starts_with("PATH=\"/usr/local/sbin:"));
    assert!(got.contains("\nhttp_proxy=\"http://proxy.internal:3128\"\n"));
    assert!(got.contains(
        "\nNO_PROXY=\"localhost,10.0.0.0/8,.svc,127.0.0.1,::1,github-runner-0-abc123\"\n"
    ));
}

#[test]
fn a_newline_in_a_value_is_refused() {
    let p = ProxyConfig {
        http: Some("http://p:1\nEVIL=1".into()),
        ..ProxyConfig::default()
    };
    let err = env(&p, None).render_dot_env().unwrap_err();
    assert_eq!(
        err,
        RenderError::BadValue {
            key: "http_proxy".into()
        }
    );
    assert!(env(&p, None).render_etc_environment().is_err());
}

#[test]
fn docker_daemon_gets_mirror_and_proxies() {
    let p = proxy();
    let got: Value =
        serde_json::from_str(&env(&p, Some("https://m.example")).render_docker_daemon_json())
            .unwrap();
    assert_eq!(
        got,
        json!({
            "registry-mirrors": ["https://m.example"],
            "proxies": {
                "http-proxy": "http://proxy.internal:3128",
                "https-proxy": "http://sproxy.internal:3128",
                "no-proxy": "localhost,10.0.0.0/8,.svc,127.0.0.1,::1,github-runner-0-abc123"
            }
        })
    );
    let client: Value = serde_json::from_str(&env(&p, None).render_docker_client_config()).unwrap();
    assert_eq!(
        client["proxies"]["default"]["httpsProxy"],
        "http://sproxy.internal:3128"
    );
}

#[test]
fn host_proxy_vars_are_empty_without_a_proxy() {
    assert!(proxy_vars(&ProxyConfig::default(), &["x"]).is_empty());
    let vars = proxy_vars(&proxy(), &[]);
    assert_eq!(vars.len(), 6);
}
