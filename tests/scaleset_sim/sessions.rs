//! Sessions and runners over time: a session that stops polling times out and its job
//! goes to another scale set; scale-set runners, in the scale set's runner group, are
//! agents and REST runners at once.

use std::time::{Duration, Instant};

use scaleset::reqwest::{Method, StatusCode};
use scaleset::{JitRunnerSetting, JobRequestId, RunnerGroupId, RunnerScaleSetSpec};
use serde_json::json;

use super::{create_set, run, Lab, PAT};

#[test]
fn a_session_that_stops_polling_times_out_and_gives_its_jobs_to_other_scale_sets() {
    let lab = Lab::start();
    run(async {
        lab.set_long_poll(1.0).await;
        lab.admin(
            Method::POST,
            "/_sim/scalesets/session-timeout",
            Some(json!({"secs": 1.5})),
        )
        .await;
        let client = lab.client("acme");
        let a = create_set(&client, "shared-a", &["shared"]).await;
        let b = create_set(&client, "shared-b", &["shared"]).await;
        let crashed = client.create_message_session(a, "crashed").await.unwrap();
        let other = client.create_message_session(b, "other").await.unwrap();
        let job = lab.queue_job("acme/web", &["shared"]).await;
        let to_a = crashed.get_message(None, 1).await.unwrap().unwrap();
        let to_b = other.get_message(None, 1).await.unwrap().unwrap();
        let request = JobRequestId(job as i64);
        assert_eq!(
            to_b.jobs_available().next().unwrap().job.runner_request_id,
            request,
            "offered to both"
        );
        assert_eq!(crashed.acquire_jobs(&[request]).await.unwrap(), [request]);
        assert!(
            other.acquire_jobs(&[request]).await.unwrap().is_empty(),
            "the first acquirer has it"
        );
        crashed.delete_message(to_a.id).await.unwrap();
        other.delete_message(to_b.id).await.unwrap();
        assert!(client
            .create_message_session(a, "successor")
            .await
            .unwrap_err()
            .is_conflict());

        // `crashed` polls no more; `other` keeps polling and hears of the job again.
        let began = Instant::now();
        let again = other.get_message(Some(to_b.id), 1).await.unwrap();
        let again = match again {
            Some(message) => message,
            None => other
                .get_message(Some(to_b.id), 1)
                .await
                .unwrap()
                .expect("offered again"),
        };
        assert!(
            began.elapsed() >= Duration::from_millis(1000),
            "not before the timeout"
        );
        assert_eq!(
            again.jobs_available().next().unwrap().job.runner_request_id,
            request
        );
        assert_eq!(other.acquire_jobs(&[request]).await.unwrap(), [request]);
        assert_eq!(lab.job(job).await["scale_set_id"], b.get());
        assert!(lab.scale_set(a).await["session"].is_null());
        let successor = client.create_message_session(a, "successor").await.unwrap();
        assert_eq!(lab.scale_set(a).await["session"]["owner"], "successor");
        successor.close().await.unwrap();
        other.close().await.unwrap();
    });
}

#[test]
fn scale_set_runners_are_agents_and_rest_runners_of_its_group() {
    let lab = Lab::start();
    run(async {
        let group = json!({"name": "ci"});
        let made = lab
            .admin(Method::POST, "/_sim/orgs/acme/runner-groups", Some(group))
            .await;
        let client = lab.client("acme");
        let ci = client
            .get_runner_group_by_name("CI")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (ci.id.get(), ci.is_default),
            (made["id"].as_i64().unwrap(), false)
        );
        let spec = RunnerScaleSetSpec::new("agents").runner_group_id(ci.id);
        let set = client.create_runner_scale_set(&spec).await.unwrap();
        assert_eq!(
            (set.runner_group_id, set.runner_group_name.as_str()),
            (ci.id, "ci")
        );
        let in_default = client.get_runner_scale_set_by_name(RunnerGroupId::DEFAULT, "agents");
        assert!(in_default.await.unwrap().is_none(), "names are per group");
        let id = set.id;
        for name in ["agent-1", "agent-2", "agent-3"] {
            client
                .generate_jit_config(id, &JitRunnerSetting::new(name))
                .await
                .unwrap();
        }
        let exists = client
            .generate_jit_config(id, &JitRunnerSetting::new("agent-1"))
            .await
            .unwrap_err();
        assert!(exists.is_runner_exists(), "{exists}");
        let one = client.get_runner_by_name("agent-1").await.unwrap().unwrap();
        assert_eq!(client.get_runner(one.id).await.unwrap(), one);
        client.remove_runner(one.id).await.unwrap();
        assert!(client
            .get_runner(one.id)
            .await
            .unwrap_err()
            .is_runner_not_found());
        let two = client.get_runner_by_name("agent-2").await.unwrap().unwrap();
        let auth = format!("token {PAT}");
        let rest = format!("/api/v3/orgs/acme/actions/runners/{}", two.id);
        assert_eq!(
            lab.call(Method::DELETE, &rest, Some(&auth), None).await.0,
            StatusCode::NO_CONTENT
        );
        assert!(client
            .get_runner_by_name("agent-2")
            .await
            .unwrap()
            .is_none());
        assert_eq!(lab.rest_runner_names().await, ["agent-3"]);
        assert_eq!(lab.statistics(id).await.total_registered_runners, 1);
        let runners = lab.admin(Method::GET, "/_sim/runners", None).await;
        assert_eq!(runners[0]["group_id"], ci.id.get(), "{runners}");
    });
}
