//! Client-secret rotation against the real authorization server: a wrong
//! current and a right next secret still get tokens (one `invalid_client`,
//! then success, recorded), a refresh token refused for the client is sent
//! again with the other secret and never reaches `invalid_grant`, an admin
//! promotes the next secret, and coming expiries are announced once.

use axum::http::StatusCode;
use chrono::Duration;
use serde_json::{Value, json};

use crate::support::world::World;
use crate::support::{Auth, json_request};

async fn call(
    w: &World,
    method: &str,
    path: &str,
    who: Option<Auth>,
    body: Value,
) -> (StatusCode, Value) {
    let r = w.app.send(json_request(method, path, who, body)).await;
    let value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, value)
}

/// How often the provider answered `code` to grant `grant`.
async fn errors(w: &World, grant: &str, code: &str) -> u64 {
    w.auth.stats().await["tokenErrors"][grant][code]
        .as_u64()
        .unwrap_or(0)
}

async fn ok(w: &World, grant: &str) -> u64 {
    w.auth.stats().await["tokenResults"][grant]["ok"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_current_secret_falls_back_to_the_next_and_is_recorded() {
    let w = World::new().await;
    let admin = Some(w.admin.clone());
    let cc = w.provider_id("cc").await;
    let right = w.auth.client_secret("cc-basic");
    let (status, p) = call(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{cc}"),
        admin.clone(),
        json!({"client_secret": "not-the-secret", "next_client_secret": right}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["has_next_client_secret"], true);
    assert_eq!(p["secret_in_use"], Value::Null);
    assert!(!p.to_string().contains(&right), "a secret is never shown");

    w.auth.admin("POST", "/stats/reset", None).await;
    let id = w
        .token(json!({"name": "cc", "provider_id": cc, "flow": "client_credentials"}))
        .await;
    let (_, t) = call(
        &w,
        "GET",
        &format!("/api/v1/tokens/{id}"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(t["status"], "active", "{t}");
    assert_eq!(errors(&w, "client_credentials", "invalid_client").await, 1);
    assert_eq!(ok(&w, "client_credentials").await, 1);
    // Recorded: the next secret works, and it is tried first from now on.
    let (_, p) = call(
        &w,
        "GET",
        &format!("/api/v1/providers/{cc}"),
        admin.clone(),
        json!({}),
    )
    .await;
    assert_eq!(p["secret_in_use"], "next", "{p}");
    assert!(p["secret_in_use_since"].is_string());
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/request"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(errors(&w, "client_credentials", "invalid_client").await, 1);
    assert_eq!(ok(&w, "client_credentials").await, 2);

    // Only an admin promotes; then the next secret is the current one.
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/v1/providers/{cc}/promote-secret"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, p) = call(
        &w,
        "POST",
        &format!("/api/v1/providers/{cc}/promote-secret"),
        admin.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["has_next_client_secret"], false);
    assert_eq!(p["has_client_secret"], true);
    assert_eq!(p["secret_in_use"], Value::Null);
    let (status, _) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/request"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(errors(&w, "client_credentials", "invalid_client").await, 1);
    // Nothing left to promote: said, at its field.
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/v1/providers/{cc}/promote-secret"),
        admin.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "next_client_secret");
    // An audit entry names the promotion.
    let (_, audit) = call(
        &w,
        "GET",
        "/api/v1/audit?action=provider.promote_secret",
        admin.clone(),
        json!({}),
    )
    .await;
    assert!(
        audit.to_string().contains("provider.promote_secret"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_refused_for_the_client_is_sent_once_more_and_never_reused() {
    let w = World::new().await;
    let admin = Some(w.admin.clone());
    let pw = w.provider_id("pw").await;
    let right = w.auth.client_secret("password");
    let id = w
        .token(
            json!({"name": "alice", "provider_id": pw, "flow": "password", "username": "alice",
                      "password": "wonderland", "scope": "openid offline_access"}),
        )
        .await;
    let (_, t) = call(
        &w,
        "GET",
        &format!("/api/v1/tokens/{id}"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(t["has_refresh_token"], true, "{t}");

    // The provider rotated its secret: the current one is now wrong.
    let (status, _) = call(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{pw}"),
        admin.clone(),
        json!({"client_secret": "retired-secret", "next_client_secret": right}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    w.auth.admin("POST", "/stats/reset", None).await;
    let (status, t) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/refresh"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"], "active");
    // Refused for the client once, then accepted; the refresh token was
    // never refused as reused.
    assert_eq!(errors(&w, "refresh_token", "invalid_client").await, 1);
    assert_eq!(errors(&w, "refresh_token", "invalid_grant").await, 0);
    assert_eq!(ok(&w, "refresh_token").await, 1);
    let (status, t) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/refresh"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(errors(&w, "refresh_token", "invalid_client").await, 1);
    assert_eq!(errors(&w, "refresh_token", "invalid_grant").await, 0);
    assert_eq!(ok(&w, "refresh_token").await, 2);

    // Both secrets wrong: one retry, then the failure as before, and the
    // last good token is kept.
    let (status, _) = call(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{pw}"),
        admin.clone(),
        json!({"client_secret": "wrong-1", "next_client_secret": "wrong-2"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/refresh"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status} {body}"
    );
    assert_eq!(errors(&w, "refresh_token", "invalid_client").await, 3);
    assert_eq!(errors(&w, "refresh_token", "invalid_grant").await, 0);
    let (_, t) = call(
        &w,
        "GET",
        &format!("/api/v1/tokens/{id}"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(t["has_access_token"], true);
    assert_eq!(t["has_refresh_token"], true);
}

async fn events_of(w: &World, who: Auth) -> Vec<Value> {
    let (_, page) = call(w, "GET", "/api/v1/events?limit=100", Some(who), json!({})).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "provider.secret_expiring")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_keys_rotate_too_and_expiries_are_announced_once() {
    let w = World::new().await;
    let admin = w.admin.clone();
    let key = w.key.clone().unwrap();
    let cc = w.provider_id("cc").await;
    let right = w.auth.client_secret("cc-basic");
    let now = server::clock::Clock::now(&w.app.clock);
    let in_20_days = (now + Duration::days(20)).date_naive().to_string();
    let in_400_days = (now + Duration::days(400)).date_naive().to_string();

    // A wrong expiry is named at its field.
    let (status, body) = call(
        &w,
        "POST",
        "/api/v1/tokens",
        w.key.clone(),
        json!({"name": "own", "provider_id": cc, "flow": "client_credentials",
               "use_default_keys": false, "client_id": "cc-basic", "client_secret": "old",
               "client_secret_expires_at": "soon"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "client_secret_expires_at");

    let id = w
        .token(
            json!({"name": "own", "provider_id": cc, "flow": "client_credentials",
                      "use_default_keys": false, "client_id": "cc-basic", "client_secret": "old",
                      "next_client_secret": right, "client_secret_expires_at": in_20_days,
                      "next_client_secret_expires_at": in_400_days}),
        )
        .await;
    let (_, t) = call(
        &w,
        "GET",
        &format!("/api/v1/tokens/{id}"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(t["status"], "active", "{t}");
    assert_eq!(t["secret_in_use"], "next");
    assert_eq!(t["has_next_client_secret"], true);
    assert!(
        t["client_secret_expires_at"]
            .as_str()
            .unwrap()
            .starts_with(&in_20_days)
    );

    let providers = &w.app.state.instance.providers;
    let events = &w.app.state.instance.tokens.events;
    // The token's current secret expires within 30 days: announced once,
    // to its owner.
    assert_eq!(providers.announce_expiring_secrets(events).await, 1);
    assert_eq!(providers.announce_expiring_secrets(events).await, 0);
    let seen = events_of(&w, key.clone()).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["token_id"], id.as_str());
    assert_eq!(seen[0]["detail"]["secret"], "current");
    assert!(
        seen[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("expires in 21 days, on {in_20_days}"))
            && seen[0]["message"]
                .as_str()
                .unwrap()
                .contains("promote the next secret"),
        "{seen:?}"
    );

    // The provider's default secret too, seen by admins.
    let (status, _) = call(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{cc}"),
        Some(admin.clone()),
        json!({"client_secret_expires_at": (now + Duration::days(10)).to_rfc3339()}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(providers.announce_expiring_secrets(events).await, 1);
    let seen = events_of(&w, admin.clone()).await;
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .any(|e| e["token_id"].is_null() && e["detail"]["provider_id"] == cc.as_str())
    );
    assert_eq!(
        events_of(&w, key.clone()).await.len(),
        1,
        "a user sees only their tokens' events"
    );

    // A year later the next secret's own expiry comes near.
    w.app.clock.advance(Duration::days(380));
    assert_eq!(providers.announce_expiring_secrets(events).await, 1);
    let seen = events_of(&w, key.clone()).await;
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().any(|e| e["detail"]["secret"] == "next"));

    // The owner promotes the token's next secret; it keeps its expiry.
    let (status, t) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/promote-secret"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["has_next_client_secret"], false);
    assert!(
        t["client_secret_expires_at"]
            .as_str()
            .unwrap()
            .starts_with(&in_400_days)
    );
    assert_eq!(
        providers.announce_expiring_secrets(events).await,
        0,
        "already announced for that date"
    );
    let (status, t) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{id}/request"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_switches_secrets_answers_the_secret_it_used() {
    let w = World::new().await;
    let cc = w.provider_id("cc").await;
    let right = w.auth.client_secret("cc-basic");
    let id = w
        .token(
            json!({"name": "switching", "provider_id": cc, "flow": "client_credentials",
                   "use_default_keys": false, "client_id": "cc-basic", "client_secret": right,
                   "next_client_secret": right}),
        )
        .await;
    let path = format!("/api/v1/tokens/{id}");
    let (_, t) = call(&w, "GET", &path, w.key.clone(), json!({})).await;
    assert_eq!(t["secret_in_use"], "current", "{t}");

    // The provider retires the current secret; the next one still works.
    let (status, body) = call(
        &w,
        "PATCH",
        &path,
        w.key.clone(),
        json!({"client_secret": "retired"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = errors(&w, "client_credentials", "invalid_client").await;

    let (status, answer) = call(
        &w,
        "POST",
        &format!("{path}/request"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        errors(&w, "client_credentials", "invalid_client").await,
        refused + 1,
        "the retired secret was tried once"
    );
    // The answer of the request itself shows the switch, as a later read does.
    assert_eq!(answer["status"], "active", "{answer}");
    assert_eq!(answer["secret_in_use"], "next", "{answer}");
    assert!(answer["secret_in_use_since"].is_string(), "{answer}");
    let (_, t) = call(&w, "GET", &path, w.key.clone(), json!({})).await;
    assert_eq!(t["secret_in_use"], "next", "{t}");
    assert_eq!(t["secret_in_use_since"], answer["secret_in_use_since"]);
}
