//! Scheduled jobs against the real authorization server: validation, a
//! reset job that runs on time and resets its targets, pause and resume,
//! cron schedules, manual runs with per-token outcomes and a failure
//! event, and one run per occurrence across two replicas.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Timelike, Utc};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use server::clock::Clock;
use server::db::entity::token;
use server::schedule::jobs::Jobs;

use crate::support::world::World;
use crate::support::{Auth, json_request, request};

async fn call(
    w: &World,
    method: &str,
    path: &str,
    auth: Option<Auth>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let r = match body {
        Some(b) => w.app.send(json_request(method, path, auth, b)).await,
        None => w.app.send(request(method, path, auth)).await,
    };
    let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

async fn access_token(w: &World, id: &str) -> Option<String> {
    token::Entity::find_by_id(id.to_owned())
        .one(&w.app.state.instance.db)
        .await
        .unwrap()
        .unwrap()
        .access_token
}

/// Times on the wire carry whole seconds.
fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap()
}

fn at(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_input_is_checked_and_only_admins_manage_jobs() {
    let w = World::new().await;
    let admin = Some(w.admin.clone());
    let pw = w
        .token(json!({"name": "pw", "provider_id": w.provider_id("pw").await, "flow": "password", "username": "alice", "password": "alice-password", "request": false}))
        .await;
    for (body, field) in [
        (
            json!({"name": "j", "action": "refresh", "target": "client_credentials"}),
            "every_minutes",
        ),
        (
            json!({"name": "j", "action": "refresh", "target": "client_credentials", "every_minutes": 5, "cron": "* * * * *"}),
            "cron",
        ),
        (
            json!({"name": "j", "action": "refresh", "target": "client_credentials", "cron": "61 * * * *"}),
            "cron",
        ),
        (
            json!({"name": "j", "action": "refresh", "target": "client_credentials", "cron": "* * * *"}),
            "cron",
        ),
        (
            json!({"name": "j", "action": "refresh", "target": "client_credentials", "every_minutes": 0}),
            "every_minutes",
        ),
        (
            json!({"name": "j", "action": "explode", "target": "client_credentials", "every_minutes": 5}),
            "action",
        ),
        (
            json!({"name": "j", "action": "refresh", "target": "everything", "every_minutes": 5}),
            "target",
        ),
        (
            json!({"name": "j", "action": "refresh", "target": "token", "every_minutes": 5}),
            "target_id",
        ),
        (
            json!({"name": "j", "action": "refresh", "target": "token", "target_id": "nope", "every_minutes": 5}),
            "target_id",
        ),
        (
            json!({"name": "j", "action": "reset_client_credentials", "target": "token", "target_id": pw, "every_minutes": 5}),
            "target_id",
        ),
        (
            json!({"name": "", "action": "refresh", "target": "client_credentials", "every_minutes": 5}),
            "name",
        ),
    ] {
        let (status, v) = call(
            &w,
            "POST",
            "/api/v1/jobs",
            admin.clone(),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    // Unknown names are refused with the accepted ones.
    for (body, field, message) in [
        (
            json!({"name": "j", "action": "rotate", "target": "token", "every_minutes": 5}),
            "action",
            "must be refresh or reset_client_credentials",
        ),
        (
            json!({"name": "j", "action": "refresh", "target": "everything", "every_minutes": 5}),
            "target",
            "must be token, provider or client_credentials",
        ),
    ] {
        let (status, v) = call(&w, "POST", "/api/v1/jobs", admin.clone(), Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(
            (&v["error"]["field"], &v["error"]["message"]),
            (&json!(field), &json!(message))
        );
    }
    let (status, v) = call(&w, "POST", "/api/v1/jobs", admin.clone(), Some(json!({"name": "j", "action": "refresh", "target": "client_credentials", "every_minutes": 5, "surprise": 1}))).await;
    assert!(status.is_client_error(), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("surprise"),
        "{v}"
    );
    // A user may neither create nor list jobs.
    let (status, _) = call(&w, "POST", "/api/v1/jobs", w.key.clone(), Some(json!({"name": "j", "action": "refresh", "target": "client_credentials", "every_minutes": 5}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&w, "GET", "/api/v1/jobs", w.key.clone(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Names are unique.
    let ok = json!({"name": "nightly", "action": "refresh", "target": "client_credentials", "cron": "0 3 * * *"});
    assert_eq!(
        call(&w, "POST", "/api/v1/jobs", admin.clone(), Some(ok.clone()))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, v) = call(&w, "POST", "/api/v1/jobs", admin.clone(), Some(ok)).await;
    assert_eq!(
        (status, v["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("name"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_reset_job_runs_on_time_and_resets_its_targets() {
    let w = World::new().await;
    let admin = Some(w.admin.clone());
    let cc = w.provider_id("cc").await;
    let a = w
        .token(json!({"name": "cc-a", "provider_id": cc, "flow": "client_credentials"}))
        .await;
    let b = w
        .token(json!({"name": "cc-b", "provider_id": cc, "flow": "client_credentials"}))
        .await;
    let other = w
        .token(json!({"name": "pw", "provider_id": w.provider_id("pw").await, "flow": "password", "username": "alice", "password": "wonderland"}))
        .await;
    let before = (
        access_token(&w, &a).await,
        access_token(&w, &b).await,
        access_token(&w, &other).await,
    );
    let created_at = w.app.clock.now();
    let (status, job) = call(&w, "POST", "/api/v1/jobs", admin.clone(), Some(json!({"name": "rotate", "action": "reset_client_credentials", "target": "client_credentials", "every_minutes": 15}))).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        at(&job["next_run_at"]),
        secs(created_at + Duration::minutes(15))
    );
    assert_eq!(job["target_label"], "all Client Credentials tokens");
    let jobs = Jobs::new(w.app.state.instance.tokens.clone());
    // Not yet.
    w.app.clock.advance(Duration::minutes(14));
    assert_eq!(jobs.pass().await, 0);
    w.auth.admin("POST", "/stats/reset", None).await;
    // On time: both Client Credentials tokens are reset, the other is not touched.
    w.app.clock.advance(Duration::minutes(1));
    assert_eq!(jobs.pass().await, 1);
    assert_eq!(jobs.pass().await, 0, "one run per occurrence");
    let stats = w.auth.stats().await;
    assert_eq!(
        stats["providerGrantTypes"]["client_credentials"], 2,
        "{stats}"
    );
    assert_ne!(access_token(&w, &a).await, before.0);
    assert_ne!(access_token(&w, &b).await, before.1);
    assert_eq!(access_token(&w, &other).await, before.2);
    let (_, detail) = call(
        &w,
        "GET",
        &format!("/api/v1/jobs/{id}"),
        admin.clone(),
        None,
    )
    .await;
    let run = &detail["runs"][0];
    assert_eq!(run["status"], "success", "{detail}");
    assert_eq!(run["trigger"], "schedule");
    assert_eq!(
        (run["total"].clone(), run["succeeded"].clone()),
        (json!(2), json!(2))
    );
    let names: Vec<&str> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["token_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cc-a", "cc-b"]);
    assert_eq!(
        at(&detail["job"]["next_run_at"]),
        secs(w.app.clock.now() + Duration::minutes(15))
    );
    // Paused: nothing runs; resumed: scheduled again.
    let (_, paused) = call(
        &w,
        "PATCH",
        &format!("/api/v1/jobs/{id}"),
        admin.clone(),
        Some(json!({"paused": true})),
    )
    .await;
    assert_eq!(
        (paused["paused"].clone(), paused["next_run_at"].clone()),
        (json!(true), Value::Null)
    );
    w.app.clock.advance(Duration::hours(1));
    assert_eq!(jobs.pass().await, 0);
    let (_, resumed) = call(
        &w,
        "PATCH",
        &format!("/api/v1/jobs/{id}"),
        admin.clone(),
        Some(json!({"paused": false})),
    )
    .await;
    assert_eq!(
        at(&resumed["next_run_at"]),
        secs(w.app.clock.now() + Duration::minutes(15))
    );
    // A cron schedule: the next 10-minute mark.
    let (_, cron) = call(
        &w,
        "PATCH",
        &format!("/api/v1/jobs/{id}"),
        admin.clone(),
        Some(json!({"cron": "*/10 * * * *"})),
    )
    .await;
    let next = at(&cron["next_run_at"]);
    assert_eq!((next.minute() % 10, next.second()), (0, 0), "{cron}");
    assert!(next > w.app.clock.now() && next <= w.app.clock.now() + Duration::minutes(10));
    assert_eq!(cron["every_minutes"], Value::Null);
    // Deleting removes the job and its runs.
    assert_eq!(
        call(
            &w,
            "DELETE",
            &format!("/api/v1/jobs/{id}"),
            admin.clone(),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&w, "GET", &format!("/api/v1/jobs/{id}"), admin, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_run_reports_each_token_and_raises_an_event_on_failure() {
    let w = World::new().await;
    let admin = Some(w.admin.clone());
    let cc = w.provider_id("cc").await;
    let one = w
        .token(json!({"name": "one", "provider_id": cc, "flow": "client_credentials"}))
        .await;
    w.token(json!({"name": "two", "provider_id": cc, "flow": "client_credentials"}))
        .await;
    let (_, job) = call(&w, "POST", "/api/v1/jobs", admin.clone(), Some(json!({"name": "refresh cc", "action": "refresh", "target": "provider", "target_id": cc, "every_minutes": 60}))).await;
    let (status, other) = call(&w, "POST", "/api/v1/jobs", admin.clone(), Some(json!({"name": "refresh one", "action": "refresh", "target": "token", "target_id": one, "every_minutes": 60}))).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let id = job["id"].as_str().unwrap();
    assert!(
        job["target_label"].as_str().unwrap().contains("cc"),
        "{job}"
    );
    w.auth
        .fault(json!({"mode": "status", "status": 400, "body": {"error": "invalid_client", "error_description": "disabled"}}))
        .await;
    let (status, run) = call(
        &w,
        "POST",
        &format!("/api/v1/jobs/{id}/run"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "partial", "{run}");
    assert_eq!(run["trigger"], "manual");
    let failed: Vec<&Value> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "failure")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{run}"
    );
    // The schedule is not moved by a manual run.
    let (_, detail) = call(
        &w,
        "GET",
        &format!("/api/v1/jobs/{id}"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(detail["job"]["next_run_at"], job["next_run_at"]);
    let (_, runs) = call(
        &w,
        "GET",
        &format!("/api/v1/jobs/{id}/runs"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(runs["total"], 1);
    // The list: each job with its own newest run and target names.
    let (_, list) = call(&w, "GET", "/api/v1/jobs", admin.clone(), None).await;
    let by_name = |name: &str| -> Value {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|j| j["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no job {name} in {list}"))
    };
    let listed = by_name("refresh cc");
    assert_eq!(listed["last_run"]["status"], "partial", "{listed}");
    assert_eq!(listed["last_run"]["id"], run["id"], "{listed}");
    assert_eq!(listed["target_label"], "all tokens of cc", "{listed}");
    let listed = by_name("refresh one");
    assert!(listed["last_run"].is_null(), "{listed}");
    assert_eq!(listed["target_label"], "token one", "{listed}");
    let (_, events) = call(&w, "GET", "/api/v1/events", admin, None).await;
    let event = &events["items"][0];
    assert_eq!(event["kind"], "job.failed", "{events}");
    assert_eq!(event["job_id"], id);
    assert!(
        event["message"].as_str().unwrap().contains("1 of 2"),
        "{event}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_a_due_job_once() {
    let w = World::new().await;
    let second = Arc::new(w.app.replica(crate::support::world::ENV).await);
    let cc = w.provider_id("cc").await;
    for n in 0..6 {
        w.token(
            json!({"name": format!("cc-{n}"), "provider_id": cc, "flow": "client_credentials"}),
        )
        .await;
    }
    let (_, job) = call(&w, "POST", "/api/v1/jobs", Some(w.admin.clone()), Some(json!({"name": "all", "action": "refresh", "target": "client_credentials", "every_minutes": 1}))).await;
    w.app.clock.advance(Duration::minutes(1));
    w.auth.admin("POST", "/stats/reset", None).await;
    let a = Jobs::new(w.app.state.instance.tokens.clone());
    let b = Jobs::new(second.state.instance.tokens.clone());
    let (ra, rb) = tokio::join!(a.pass(), b.pass());
    assert_eq!(ra + rb, 1, "{ra} + {rb}");
    assert_eq!(
        w.auth.stats().await["providerGrantTypes"]["client_credentials"],
        6
    );
    let (_, runs) = call(
        &w,
        "GET",
        &format!("/api/v1/jobs/{}/runs", job["id"].as_str().unwrap()),
        Some(w.admin.clone()),
        None,
    )
    .await;
    assert_eq!(runs["total"], 1);
}
