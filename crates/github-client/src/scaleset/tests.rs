use super::*;

fn response(status: u16, body: &str) -> RawResponse {
    RawResponse {
        status,
        body: body.into(),
        ..RawResponse::default()
    }
}

#[test]
fn the_service_can_be_shared_across_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<ActionsService>();
    shareable::<Session>();
}

#[test]
fn service_statuses_map_to_errors_naming_the_exception() {
    let body = r#"{"typeName": "AgentExistsException", "message": "runner r exists"}"#;
    match expect(response(409, body), &[200], "x").unwrap_err() {
        GithubError::Rejected { status, message } => {
            assert_eq!(
                (status, message.as_str()),
                (409, "AgentExistsException: runner r exists")
            )
        }
        other => panic!("{other}"),
    }
    let gone = expect(response(404, "{}"), &[200], "runner scale set 5").unwrap_err();
    assert_eq!(
        gone.to_string(),
        "not found on the GitHub Actions service: runner scale set 5"
    );
    assert!(expect(response(204, ""), &[200, 204], "x").is_ok());
    assert!(matches!(
        expect(response(500, "oops"), &[200], "x"),
        Err(GithubError::Unexpected { status: 500, .. })
    ));
}

#[test]
fn decode_errors_leave_quoted_values_out() {
    let wrong = response(200, r#"{"url": 5, "token": "sekrit-admin-token"}"#);
    let error = decode::<WireConnection>(wrong).unwrap_err().to_string();
    assert!(error.contains("invalid type"), "{error}");
    let wrong = response(200, r#"{"url": "u", "token": 7, "x": "sekrit"}"#);
    assert!(!decode::<WireConnection>(wrong)
        .unwrap_err()
        .to_string()
        .contains("sekrit"));
    // serde quotes a string where a number belongs.
    let quoted = response(200, r#"{"value": ["sekrit-value"]}"#);
    let error = decode::<List<u64>>(quoted).unwrap_err().to_string();
    assert!(error.contains("invalid type: string"), "{error}");
    assert!(!error.contains("sekrit"), "{error}");
}

#[test]
fn service_urls_carry_the_query_and_api_version() {
    let rest = Transport::new(
        "http://127.0.0.1:9/api/v3",
        ghr_types::Token::new("t0ken-value"),
        &ghr_types::proxy::ProxyConfig::default(),
        Default::default(),
    )
    .unwrap();
    let service = rest
        .sibling(
            "https://pipelines.example/abc/",
            ghr_types::Token::new("admin"),
        )
        .unwrap();
    assert_eq!(
        service_url(&service, SCALE_SETS, &[("name", "a b&c"), ("runnerGroupId", "1")]),
        "https://pipelines.example/abc/_apis/runtime/runnerscalesets?name=a+b%26c&runnerGroupId=1&api-version=6.0-preview"
    );
}
