//! Tokens and faults: `runner-registration` and the service refuse what they should,
//! and the crate's client recovers from expired admin and queue tokens and from faults
//! injected on the scale-set routes (a 5xx on acquire, a 401 on a poll, a slow answer).

use std::time::{Duration, Instant};

use base64::Engine;
use scaleset::reqwest::{Method, StatusCode};
use scaleset::{ExposeSecret, JobRequestId};
use serde_json::{json, Value};

use super::{create_set, run, Lab, PAT};

#[test]
fn registration_and_the_service_check_their_tokens() {
    let lab = Lab::start();
    run(async {
        let auth = format!("token {PAT}");
        let path = "/api/v3/repos/acme/web/actions/runners/registration-token";
        let (_, token) = lab.call(Method::POST, path, Some(&auth), None).await;
        let token = token["token"].as_str().unwrap();
        let register = |url: &str| json!({"url": url, "runner_event": "register"});
        let repo_url = format!("{}/acme/web", lab.server.url);
        for bad in ["RemoteAuth nope".to_string(), format!("Bearer {token}")] {
            let answer = lab
                .call(
                    Method::POST,
                    "/actions/runner-registration",
                    Some(&bad),
                    Some(register(&repo_url)),
                )
                .await;
            assert_eq!(answer.0, StatusCode::UNAUTHORIZED, "{bad}");
        }
        let remote = format!("RemoteAuth {token}");
        let org_url = format!("{}/acme", lab.server.url);
        let wrong_scope = lab
            .call(
                Method::POST,
                "/actions/runner-registration",
                Some(&remote),
                Some(register(&org_url)),
            )
            .await;
        assert_eq!(
            wrong_scope.0,
            StatusCode::UNAUTHORIZED,
            "a repository's token is not the org's"
        );
        let (status, admin) = lab
            .call(
                Method::POST,
                "/api/v3/actions/runner-registration",
                Some(&remote),
                Some(register(&repo_url)),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let service = admin["url"].as_str().unwrap();
        assert_eq!(service, format!("{}/_services/acme~web/", lab.server.url));
        let claims = admin["token"].as_str().unwrap().split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap(),
        )
        .unwrap();
        let ttl = claims["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
        assert!((3590..=3600).contains(&ttl), "an hour: {ttl}");

        let bearer = format!("Bearer {}", admin["token"].as_str().unwrap());
        let groups = format!("{service}_apis/runtime/runnergroups/?groupName=default");
        assert_eq!(
            lab.call(Method::GET, &groups, Some(&bearer), None).await.0,
            StatusCode::BAD_REQUEST,
            "api-version"
        );
        let versioned = format!("{groups}&api-version=6.0-preview");
        let (status, list) = lab.call(Method::GET, &versioned, Some(&bearer), None).await;
        assert_eq!(
            (status, &list["count"], &list["value"][0]["name"]),
            (StatusCode::OK, &json!(1), &json!("default"))
        );
        let org_service = format!(
            "{}/_services/acme/_apis/runtime/runnergroups/?api-version=6.0-preview",
            lab.server.url
        );
        assert_eq!(
            lab.call(Method::GET, &org_service, Some(&bearer), None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        lab.admin(Method::POST, "/_sim/scalesets/expire-tokens", None)
            .await;
        assert_eq!(
            lab.call(Method::GET, &versioned, Some(&bearer), None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        let repo = lab.client("acme/web");
        let set = create_set(&repo, "web-only", &[]).await;
        let job = lab.queue_job("acme/api", &["web-only"]).await;
        assert_eq!(
            lab.statistics(set).await.total_available_jobs,
            0,
            "another repository"
        );
        assert_eq!(lab.job(job).await["state"], "queued");
    });
}

#[test]
fn expired_tokens_and_injected_faults_are_recovered_by_the_client() {
    let lab = Lab::start();
    run(async {
        lab.set_long_poll(1.0).await;
        let client = lab.client("acme");
        let id = create_set(&client, "faulty", &[]).await;
        let session = client.create_message_session(id, "owner").await.unwrap();
        let job = lab.queue_job("acme/web", &["faulty"]).await;
        let old = session.info();
        lab.admin(Method::POST, "/_sim/scalesets/expire-tokens", None)
            .await;
        let stale = format!("Bearer {}", old.message_queue_access_token.expose_secret());
        assert_eq!(
            lab.call(Method::GET, &old.message_queue_url, Some(&stale), None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        let offer = session
            .get_message(None, 2)
            .await
            .unwrap()
            .expect("after a refresh");
        assert_ne!(
            session.info().message_queue_access_token.expose_secret(),
            old.message_queue_access_token.expose_secret()
        );
        assert_eq!(
            lab.counter("POST /actions/runner-registration").await,
            2,
            "a new admin token"
        );
        let refresh =
            "PATCH /_services/:tenant/_apis/runtime/runnerscalesets/:id/sessions/:session";
        let patches = lab.counter(refresh).await;
        assert_eq!(
            patches, 2,
            "refused with the expired admin token, then accepted"
        );

        let acquire = "POST /_services/:tenant/_apis/runtime/runnerscalesets/:id/acquirejobs";
        lab.admin(
            Method::POST,
            "/_sim/faults",
            Some(json!({"route": acquire, "count": 1, "status": 503})),
        )
        .await;
        assert_eq!(
            session
                .acquire_jobs(&[JobRequestId(job as i64)])
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(lab.counter(acquire).await, 2, "retried after the 503");
        session.delete_message(offer.id).await.unwrap();
        let poll = "GET /_services/:tenant/_queue/:id/:session";
        lab.admin(
            Method::POST,
            "/_sim/faults",
            Some(json!({"route": poll, "count": 1, "status": 401})),
        )
        .await;
        let assigned = session
            .get_message(Some(offer.id), 2)
            .await
            .unwrap()
            .expect("JobAssigned");
        assert_eq!(assigned.jobs_assigned().count(), 1);
        let refreshed = lab.counter(refresh).await;
        assert_eq!(
            refreshed,
            patches + 1,
            "a 401 from the queue refreshes the session"
        );
        let get = "GET /_services/:tenant/_apis/runtime/runnerscalesets/:id";
        lab.admin(
            Method::POST,
            "/_sim/faults",
            Some(json!({"route": get, "count": 1, "latency_ms": 400})),
        )
        .await;
        let began = Instant::now();
        client.get_runner_scale_set_by_id(id).await.unwrap();
        assert!(began.elapsed() >= Duration::from_millis(400), "slow answer");

        lab.admin(
            Method::POST,
            &format!("/_sim/scalesets/{}/drop-session", id.get()),
            None,
        )
        .await;
        let gone = session.get_message(Some(assigned.id), 2).await.unwrap_err();
        assert!(gone.is_not_found(), "{gone}");
        assert_eq!(
            lab.job(job).await["state"],
            "queued",
            "its unstarted job is given back"
        );
        let fresh = client.create_message_session(id, "owner-2").await.unwrap();
        let offered = fresh
            .get_message(None, 2)
            .await
            .unwrap()
            .expect("offered again");
        assert_eq!(
            offered
                .jobs_available()
                .next()
                .unwrap()
                .job
                .runner_request_id
                .get(),
            job as i64
        );
        fresh.close().await.unwrap();
    });
}
