//! One renewal path for every caller, against the real authorization server
//! with refresh-token rotation and reuse detection (a refresh token
//! presented twice answers `invalid_grant` and revokes the whole grant):
//! simultaneous manual refreshes, access-token callers, the scheduler and
//! refresh jobs never send one refresh token twice, counted at the
//! provider; and a refused renewal answers an error status with the token.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Duration;
use serde_json::{Value, json};

use crate::support::world::{ENV, World};
use crate::support::{Auth, TestApp, json_request, request};

/// `invalid_grant` answers the provider gave to refresh_token grants.
async fn invalid_grants(w: &World) -> i64 {
    w.auth.stats().await["tokenErrors"]["refresh_token"]["invalid_grant"]
        .as_i64()
        .unwrap_or(0)
}

/// refresh_token grants the provider answered.
async fn refresh_grants(w: &World) -> i64 {
    w.auth.stats().await["providerGrantTypes"]["refresh_token"]
        .as_i64()
        .unwrap_or(0)
}

/// Authorizes an interactive token as alice's browser would.
async fn authorize(w: &World, app: &TestApp, id: &str) {
    w.auth
        .admin("POST", "/config", Some(json!({"autoLogin": "alice"})))
        .await;
    let link = app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/auth-link"),
            w.key.clone(),
        ))
        .await
        .json();
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    let path = location.trim_start_matches("http://127.0.0.1:3000");
    let page = app.send(request("GET", path, None)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

/// An authorized Authorization Code token (refresh token, rotated on use).
async fn code_token(w: &World, name: &str) -> String {
    let id = w
        .token(json!({"name": name, "provider_id": w.provider_id("code").await, "flow": "authorization_code", "scope": "openid api:read"}))
        .await;
    authorize(w, &w.app, &id).await;
    id
}

async fn token(app: &TestApp, key: &Option<Auth>, id: &str) -> Value {
    let r = app
        .send(request("GET", &format!("/api/v1/tokens/{id}"), key.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

async fn refresh(app: &TestApp, key: &Option<Auth>, id: &str) -> (StatusCode, Value) {
    let r = app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/refresh"),
            key.clone(),
        ))
        .await;
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

async fn access(app: &TestApp, key: &Option<Auth>, id: &str) -> (StatusCode, Value) {
    let r = app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/access-token"),
            key.clone(),
        ))
        .await;
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_simultaneous_refreshes_send_the_refresh_token_once() {
    let w = World::new().await;
    let id = code_token(&w, "code").await;
    w.app.clock.advance(Duration::seconds(1));
    w.auth.admin("POST", "/stats/reset", None).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, key, id) = (w.app.clone(), w.key.clone(), id.clone());
        calls.spawn(async move { refresh(&app, &key, &id).await });
    }
    while let Some(done) = calls.join_next().await {
        let (status, view) = done.unwrap();
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["status"], "active", "{view}");
    }
    assert_eq!(
        invalid_grants(&w).await,
        0,
        "no refresh token was sent twice"
    );
    let sent = refresh_grants(&w).await;
    eprintln!("20 simultaneous refreshes: {sent} refresh grants at the provider, 0 invalid_grant");
    assert!(
        (1..=20).contains(&sent),
        "{sent} refresh grants for 20 refreshes"
    );
    // The grant is alive: the next refresh works, and so does its token.
    let (status, view) = refresh(&w.app, &w.key, &id).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["status"], "active");
    let (status, served) = access(&w.app, &w.key, &id).await;
    assert_eq!(status, StatusCode::OK, "{served}");
    assert!(
        w.auth
            .introspect(served["access_token"].as_str().unwrap())
            .await
    );
    assert_eq!(invalid_grants(&w).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_access_token_callers_and_jobs_at_once_never_replay() {
    let w = World::new().await;
    let second = Arc::new(w.app.replica(ENV).await);
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(code_token(&w, name).await);
    }
    ids.push(
        w.token(json!({"name": "pw", "provider_id": w.provider_id("pw").await, "flow": "password", "username": "alice", "password": "wonderland"}))
            .await,
    );
    let code = w.provider_id("code").await;
    let pw = w.provider_id("pw").await;
    let mut jobs = Vec::new();
    for (name, provider) in [("code", &code), ("pw", &pw)] {
        let r = w
            .app
            .send(json_request(
                "POST",
                "/api/v1/jobs",
                Some(w.admin.clone()),
                json!({"name": name, "action": "refresh", "target": "provider", "target_id": provider, "every_minutes": 60}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        jobs.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    w.auth.admin("POST", "/stats/reset", None).await;
    let apps = [w.app.clone(), second.clone()];
    let mut work = tokio::task::JoinSet::new();
    for round in 0..6 {
        // Inside every token's margin: each access-token caller renews.
        w.app.clock.advance(Duration::minutes(59));
        for (i, id) in ids.iter().enumerate() {
            for n in 0..4 {
                let app = apps[(i + n) % 2].clone();
                let (key, token) = (w.key.clone(), id.clone());
                work.spawn(async move { ("access", access(&app, &key, &token).await) });
                let app = apps[(i + n + 1) % 2].clone();
                let (key, token) = (w.key.clone(), id.clone());
                work.spawn(async move { ("refresh", refresh(&app, &key, &token).await) });
            }
        }
        for (j, job) in jobs.iter().enumerate() {
            let app = apps[(j + round) % 2].clone();
            let (admin, job) = (w.admin.clone(), job.clone());
            work.spawn(async move {
                let r = app
                    .send(request(
                        "POST",
                        &format!("/api/v1/jobs/{job}/run"),
                        Some(admin),
                    ))
                    .await;
                (
                    "job",
                    (
                        r.status,
                        serde_json::from_str(&r.body).unwrap_or(Value::Null),
                    ),
                )
            });
        }
        let scheduler = server::schedule::refresh::RefreshScheduler::new(
            apps[round % 2].state.instance.tokens.clone(),
        );
        work.spawn(async move {
            scheduler.pass().await;
            ("pass", (StatusCode::OK, Value::Null))
        });
        while let Some(done) = work.join_next().await {
            let (what, (status, body)) = done.unwrap();
            match what {
                // A run-now while the job runs on the other replica is 409.
                "job" if status == StatusCode::CONFLICT => {}
                "job" => {
                    assert_eq!(status, StatusCode::OK, "{body}");
                    assert_eq!(body["failed"], 0, "{body}");
                }
                _ => assert_eq!(status, StatusCode::OK, "{what}: {body}"),
            }
        }
    }
    assert_eq!(
        invalid_grants(&w).await,
        0,
        "no refresh token was sent twice"
    );
    let sent = refresh_grants(&w).await;
    eprintln!("mixed callers, two instances, 6 rounds: {sent} refresh grants, 0 invalid_grant");
    assert!(sent >= 6 * 4, "renewals happened");
    for id in &ids {
        let view = token(&w.app, &w.key, id).await;
        assert_eq!(view["status"], "active", "{view}");
        let (status, body) = refresh(&w.app, &w.key, id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(invalid_grants(&w).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_renewals_answer_an_error_status_with_the_token() {
    let w = World::new().await;
    let cc = w
        .token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"}))
        .await;
    let good = w.app.token_secret(&cc, "access_token").await.unwrap();
    let post = |path: String| {
        let (app, key) = (w.app.clone(), w.key.clone());
        async move {
            let r = app.send(request("POST", &path, key)).await;
            (r.status, r.header("retry-after"), r.json())
        }
    };

    // The provider refuses: 502 provider_refused, the token beside it.
    w.auth
        .fault(json!({"mode": "status", "status": 401, "body": {"error": "invalid_client", "error_description": "client is disabled"}}))
        .await;
    let (status, _, body) = post(format!("/api/v1/tokens/{cc}/request")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "provider_refused");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client is disabled"),
        "{body}"
    );
    assert_eq!(body["token"]["id"], cc.as_str());
    assert_eq!(body["token"]["error"]["error"], "invalid_client");
    assert_eq!(
        w.app.token_secret(&cc, "access_token").await.unwrap(),
        good,
        "the last good token stays"
    );

    // The provider is unavailable: 503 with its Retry-After.
    w.auth
        .fault(json!({"mode": "status", "status": 503, "headers": {"Retry-After": "7"}, "body": {"error": "temporarily_unavailable"}}))
        .await;
    let (status, retry, body) = post(format!("/api/v1/tokens/{cc}/reset")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "provider_unavailable");
    assert_eq!(retry, "7");
    assert_eq!(body["token"]["id"], cc.as_str());

    // Renewed again: 200 with the token.
    let (status, _, body) = post(format!("/api/v1/tokens/{cc}/refresh")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    assert!(body["error"].is_null());

    // An interactive token whose grant is gone: 409 with the auth link.
    let code = code_token(&w, "code").await;
    w.auth
        .fault(json!({"mode": "status", "status": 400, "grantType": "refresh_token", "body": {"error": "invalid_grant", "error_description": "grant request is invalid"}}))
        .await;
    let (status, _, body) = post(format!("/api/v1/tokens/{code}/refresh")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "needs_reauthorization");
    assert_eq!(
        body["error"]["auth_link"],
        format!("/api/v1/tokens/{code}/auth-link")
    );
    assert_eq!(body["token"]["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_waits_for_another_replicas_renewal_and_answers_with_it() {
    let w = World::new().await;
    let second = Arc::new(w.app.replica(ENV).await);
    let id = code_token(&w, "code").await;
    w.app.clock.advance(Duration::seconds(1));
    w.auth.admin("POST", "/stats/reset", None).await;
    // The provider takes its time with the first replica's refresh.
    w.auth
        .fault(json!({"mode": "hang", "delayMs": 1500, "grantType": "refresh_token"}))
        .await;
    let first = {
        let (app, key, id) = (w.app.clone(), w.key.clone(), id.clone());
        tokio::spawn(async move { refresh(&app, &key, &id).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let (status, other) = refresh(&second, &w.key, &id).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let (status, mine) = first.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    assert_eq!(
        other["last_refreshed_at"], mine["last_refreshed_at"],
        "the second replica answered with the first one's renewal"
    );
    assert_eq!(refresh_grants(&w).await, 1);
    assert_eq!(invalid_grants(&w).await, 0);
}
