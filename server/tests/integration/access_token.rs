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
    // A credential: no cache along the way may keep it.
    assert_eq!(r.header("cache-control"), "no-store");
    assert_eq!(r.header("x-content-type-options"), "nosniff");
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
    assert_eq!(r.header("cache-control"), "no-store");
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

/// One access-token call; the status and the answer.
async fn fetch(app: &TestApp, auth: &Option<Auth>, id: &str) -> (StatusCode, Value) {
    let r = app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/access-token"),
            auth.clone(),
        ))
        .await;
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

/// A new user with an API key: (user id, key id, key).
async fn user_with_key(app: &TestApp, email: &str) -> (String, String, Option<Auth>) {
    let pw = app.user(email, server::account::Role::User).await;
    let cookie = app.login(email, &pw).await;
    let (key, key_id) = app.api_key(&cookie, "k").await;
    let user_id = app
        .send(request(
            "GET",
            "/api/v1/session",
            Some(Auth::Cookie(cookie.clone())),
        ))
        .await
        .json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (user_id, key_id, Some(Auth::Bearer(key)))
}

/// Keys and tokens are served from memory between changes (the cache lasts
/// 60 s here, so only the change itself can explain what follows): a reset,
/// a revoked key, a disabled account and another user's token all take
/// effect on the very next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_keys_and_tokens_give_way_to_every_change_at_once() {
    let w = World::with_env(&[("QUIVER_CACHE_TTL", "60s")]).await;
    let cc = w.provider_id("cc").await;
    let id = w
        .token(json!({"name": "cc", "provider_id": cc, "flow": "client_credentials"}))
        .await;
    w.auth.admin("POST", "/stats/reset", None).await;
    let (s, first) = fetch(&w.app, &w.key, &id).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    for _ in 0..20 {
        let (s, again) = fetch(&w.app, &w.key, &id).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        assert_eq!(again, first);
    }

    // A reset: the next answer is the new token, never the revoked one.
    let r = w
        .app
        .send(json_request(
            "POST",
            &format!("/api/v1/tokens/{id}/reset"),
            w.key.clone(),
            json!({}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (s, after_reset) = fetch(&w.app, &w.key, &id).await;
    assert_eq!(s, StatusCode::OK, "{after_reset}");
    assert_ne!(after_reset["access_token"], first["access_token"]);
    assert!(
        w.auth
            .introspect(after_reset["access_token"].as_str().unwrap())
            .await
    );

    // Another user never gets a token served to its owner moments ago.
    let (_, carol_key_id, carol) = user_with_key(&w.app, "carol@example.com").await;
    let (s, body) = fetch(&w.app, &carol, &id).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");

    // Carol's own token, served, then her key revoked: refused at once.
    let carol_token = {
        let r = w
            .app
            .send(json_request(
                "POST",
                "/api/v1/tokens",
                carol.clone(),
                json!({"name": "carol cc", "provider_id": cc, "flow": "client_credentials"}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_owned()
    };
    assert_eq!(fetch(&w.app, &carol, &carol_token).await.0, StatusCode::OK);
    assert_eq!(fetch(&w.app, &carol, &carol_token).await.0, StatusCode::OK);
    let r = w
        .app
        .send(request(
            "DELETE",
            &format!("/api/v1/api-keys/{carol_key_id}"),
            Some(w.admin.clone()),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (s, body) = fetch(&w.app, &carol, &carol_token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");

    // Dave, served, then his account disabled: refused at once.
    let (dave_id, _, dave) = user_with_key(&w.app, "dave@example.com").await;
    let dave_token = {
        let r = w
            .app
            .send(json_request(
                "POST",
                "/api/v1/tokens",
                dave.clone(),
                json!({"name": "dave cc", "provider_id": cc, "flow": "client_credentials"}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_owned()
    };
    assert_eq!(fetch(&w.app, &dave, &dave_token).await.0, StatusCode::OK);
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/users/{dave_id}"),
            Some(w.admin.clone()),
            json!({"disabled": true}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (s, body) = fetch(&w.app, &dave, &dave_token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");

    // Deleted: gone at once.
    let r = w
        .app
        .send(request(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            w.key.clone(),
        ))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(fetch(&w.app, &w.key, &id).await.0, StatusCode::NOT_FOUND);
    // Only the creations and the reset reached the provider.
    assert_eq!(
        w.auth.stats().await["providerGrantTypes"]["client_credentials"],
        3
    );
}

/// On PostgreSQL a change made on one replica is announced to the others,
/// which drop what they keep in memory: a key revoked on one replica is
/// refused by the other within moments, long before its 60 s cache lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_replica_is_refused_by_the_other_at_once() {
    let db = crate::support::test_database("access_token").await;
    let env = [
        ("QUIVER_DATABASE_URL", db.url.as_str()),
        ("QUIVER_CACHE_TTL", "60s"),
    ];
    let w = World::with_env(&env).await;
    let mut replica_env = ENV.to_vec();
    replica_env.extend_from_slice(&env);
    let second = w.app.replica(&replica_env).await;
    let cc = w.provider_id("cc").await;
    let (_, key_id, erin) = user_with_key(&w.app, "erin@example.com").await;
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/tokens",
            erin.clone(),
            json!({"name": "erin cc", "provider_id": cc, "flow": "client_credentials"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // Served (and kept) by the second replica.
    assert_eq!(fetch(&second, &erin, &id).await.0, StatusCode::OK);
    assert_eq!(fetch(&second, &erin, &id).await.0, StatusCode::OK);
    let r = w
        .app
        .send(request(
            "DELETE",
            &format!("/api/v1/api-keys/{key_id}"),
            Some(w.admin.clone()),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let started = std::time::Instant::now();
    loop {
        let (s, body) = fetch(&second, &erin, &id).await;
        if s == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "the second replica still accepts the revoked key after 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    eprintln!(
        "revocation reached the other replica in {:?}",
        started.elapsed()
    );
}
