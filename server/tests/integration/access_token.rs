//! `GET /api/v1/tokens/{id}/access-token` against the real authorization
//! server: fresh tokens are served without a provider call; expired ones are
//! refreshed once however many callers ask at the same moment, within one
//! process and across two replicas; failures say why.

use std::sync::Arc;

use crate::support::world::{ENV, World};
use crate::support::{Auth, TestApp, json_request, request};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// `n` simultaneous calls, half on each of `apps`; returns the statuses and bodies.
async fn stampede(
    apps: &[Arc<TestApp>],
    key: &Option<Auth>,
    id: &str,
    n: usize,
) -> Vec<(StatusCode, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = apps[i % apps.len()].clone();
        let key = key.clone();
        let path = format!("/api/v1/tokens/{id}/access-token");
        set.spawn(async move {
            let r = app.send(request("GET", &path, key)).await;
            (
                r.status,
                serde_json::from_str(&r.body).unwrap_or(Value::Null),
            )
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_token_is_served_without_asking_the_provider() {
    let w = World::new().await;
    let id = w.token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"})).await;
    w.auth.admin("POST", "/stats/reset", None).await;
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_at"].is_string());
    assert!(w.auth.introspect(v["access_token"].as_str().unwrap()).await);
    assert!(
        w.auth.stats().await["tokenGrantTypes"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "no provider call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_callers_of_an_expired_token_share_one_refresh() {
    let w = World::new().await;
    let id = w.token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"})).await;
    let old = w.app.token_secret(&id, "access_token").await.unwrap();
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app.clock.advance(chrono::Duration::hours(2));
    let results = stampede(std::slice::from_ref(&w.app), &w.key, &id, 100).await;
    let tokens: std::collections::BTreeSet<String> = results
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, StatusCode::OK, "{v}");
            v["access_token"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 1, "every caller got the same new token");
    assert!(!tokens.contains(&old));
    assert_eq!(
        w.auth.stats().await["providerGrantTypes"]["client_credentials"],
        1,
        "exactly one request reached the provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_never_hands_out_a_rotated_away_token() {
    let w = World::new().await;
    let id = w
        .token(json!({"name": "pw", "provider_id": w.provider_id("pw").await, "flow": "password", "username": "alice", "password": "wonderland"}))
        .await;
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app.clock.advance(chrono::Duration::hours(2));
    let results = stampede(std::slice::from_ref(&w.app), &w.key, &id, 100).await;
    let tokens: std::collections::BTreeSet<String> = results
        .iter()
        .map(|(_, v)| v["access_token"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        w.auth.stats().await["providerGrantTypes"]["refresh_token"],
        1
    );
    assert!(
        w.auth.introspect(tokens.iter().next().unwrap()).await,
        "the served token is live at the provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_refresh_once_between_them() {
    let w = World::new().await;
    let second = Arc::new(w.app.replica(ENV).await);
    let id = w.token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"})).await;
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app.clock.advance(chrono::Duration::hours(2));
    let results = stampede(&[w.app.clone(), second.clone()], &w.key, &id, 60).await;
    let tokens: std::collections::BTreeSet<String> = results
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, StatusCode::OK, "{v}");
            v["access_token"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        w.auth.stats().await["providerGrantTypes"]["client_credentials"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_inside_its_margin_is_refreshed_first() {
    let w = World::new().await;
    w.auth
        .admin("POST", "/config", Some(json!({"accessTokenTtl": 30})))
        .await;
    let id = w
        .token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials", "refresh_margin_seconds": 60}))
        .await;
    w.auth.admin("POST", "/stats/reset", None).await;
    // 30 s lifetime, 60 s margin: the effective margin is 15 s, so after 16 s
    // (14 s left) the token is renewed first.
    w.app.clock.advance(chrono::Duration::seconds(16));
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        w.auth.stats().await["providerGrantTypes"]["client_credentials"],
        1,
        "14 s left is inside the effective 15 s margin"
    );
    // A provider lifetime (30 s) shorter than the margin (60 s): many callers
    // at once still cause a single refresh, and all are served.
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app.clock.advance(chrono::Duration::seconds(16));
    let results = stampede(std::slice::from_ref(&w.app), &w.key, &id, 30).await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::OK));
    assert_eq!(
        w.auth.stats().await["providerGrantTypes"]["client_credentials"],
        1
    );
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/tokens/{id}"),
            w.key.clone(),
            json!({"refresh_margin_seconds": 5}),
        ))
        .await;
    assert_eq!(r.json()["refresh_margin_seconds"], 5);
    w.auth.admin("POST", "/stats/reset", None).await;
    w.app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert!(
        w.auth.stats().await["providerGrantTypes"]["client_credentials"].is_null(),
        "outside a 5 s margin: served as is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_say_why() {
    let w = World::new().await;
    // The provider is down: 503 with a retry hint, the last good token kept.
    let id = w.token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"})).await;
    let good = w.app.token_secret(&id, "access_token").await.unwrap();
    w.app.clock.advance(chrono::Duration::hours(2));
    w.auth.fault(json!({"endpoint": "token", "mode": "status", "status": 503, "headers": {"Retry-After": "7"}, "body": "down"})).await;
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "provider_unavailable");
    assert!(r.header("retry-after").parse::<u64>().unwrap() > 0);
    assert_eq!(w.app.token_secret(&id, "access_token").await.unwrap(), good);
    w.auth.clear_faults().await;

    // Many callers during the outage: one request reaches the provider.
    w.auth.admin("POST", "/stats/reset", None).await;
    w.auth.fault(json!({"endpoint": "token", "mode": "status", "status": 503, "body": "down", "count": -1})).await;
    w.app.clock.advance(chrono::Duration::seconds(3));
    let results = stampede(std::slice::from_ref(&w.app), &w.key, &id, 40).await;
    assert!(
        results
            .iter()
            .all(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(
        w.auth.stats().await["tokenGrantTypes"]["client_credentials"],
        1,
        "no retry storm"
    );
    w.auth.clear_faults().await;

    // Refused credentials: 502 with the provider's words.
    let bad = w
        .token(json!({"name": "bad", "provider_id": w.provider_id("cc").await, "flow": "client_credentials", "use_default_keys": false, "client_id": "cc-basic", "client_secret": "wrong"}))
        .await;
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{bad}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "provider_refused");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_client")
    );

    // An interactive token that was never authorized needs a person.
    let code = w
        .token(json!({"name": "code", "provider_id": w.provider_id("code").await, "flow": "authorization_code", "request": false}))
        .await;
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{code}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "needs_reauthorization");
    assert_eq!(
        r.json()["error"]["auth_link"],
        format!("/api/v1/tokens/{code}/auth-link")
    );

    // Someone else's token: 404, as everywhere.
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/access-token"),
            None,
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
