//! The Device Authorization Grant (RFC 8628) against the real
//! authorization server: the code and where to type it, polls as the
//! provider says (authorization_pending, slow_down, access_denied,
//! expired_token), the token stored once approved, and refreshed after.

use std::time::Duration;

use axum::http::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use server::db::entity::token;
use server::tokens::device::PollOutcome;

use crate::support::world::World;
use crate::support::{json_request, request};

/// A little over the provider's five-second interval.
const INTERVAL: Duration = Duration::from_millis(5_300);

async fn device_provider(w: &World) -> String {
    let mut body = w.auth.provider("device", "device", "client_secret_basic");
    body["device_authorization_endpoint"] = json!(w.auth.endpoint("device_authorization"));
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/providers",
            Some(crate::support::Auth::Cookie(match &w.admin {
                crate::support::Auth::Cookie(c) => c.clone(),
                _ => unreachable!(),
            })),
            body,
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn device_token(w: &World, provider: &str, name: &str) -> Value {
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/tokens",
            w.key.clone(),
            json!({"name": name, "provider_id": provider, "flow": "device_code", "scope": "openid api:read"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()
}

/// Waits out the provider's interval, in real time (the provider's clock)
/// and on Quiver's clock.
async fn wait_interval(w: &World) {
    tokio::time::sleep(INTERVAL).await;
    w.app
        .clock
        .advance(chrono::Duration::milliseconds(INTERVAL.as_millis() as i64));
}

async fn view(w: &World, id: &str) -> Value {
    w.app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}"),
            w.key.clone(),
        ))
        .await
        .json()
}

async fn row(w: &World, id: &str) -> token::Model {
    token::Entity::find_by_id(id.to_owned())
        .one(&w.app.state.instance.db)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_code_is_shown_polled_and_exchanged() {
    let w = World::new().await;
    let provider = device_provider(&w).await;
    let approved = device_token(&w, &provider, "approved").await;
    let denied = device_token(&w, &provider, "denied").await;
    for t in [&approved, &denied] {
        assert_eq!(t["status"], "pending_authorization", "{t}");
        let pending = &t["pending_authorization"];
        let user_code = pending["user_code"].as_str().unwrap();
        assert_eq!(t["user_code"], user_code);
        assert_eq!(
            pending["verification_uri"],
            w.auth.endpoint("code_verification")
        );
        assert_eq!(t["verification_uri"], pending["verification_uri"]);
        let complete = pending["verification_uri_complete"].as_str().unwrap();
        assert!(complete.contains("user_code="), "{complete}");
        assert!(pending["expires_at"].is_string());
        assert_eq!(pending["interval_seconds"], 5);
        assert!(t["auth_url"].is_null());
    }
    // The device code itself never leaves Quiver.
    assert!(
        !approved.to_string().contains("device_code\":\""),
        "{approved}"
    );
    let qr = w
        .app
        .send(request(
            "GET",
            &format!(
                "/api/v1/tokens/{}/verification-qr",
                approved["id"].as_str().unwrap()
            ),
            w.key.clone(),
        ))
        .await;
    assert_eq!(qr.status, StatusCode::OK);
    assert_eq!(qr.header("content-type"), "image/svg+xml");
    assert!(
        qr.body.contains("<svg"),
        "{}",
        &qr.body[..100.min(qr.body.len())]
    );

    let engine = &w.app.state.instance.tokens;
    // Nothing is due before the interval.
    assert_eq!(engine.poll_devices().await, 0);
    wait_interval(&w).await;
    // authorization_pending: still waiting.
    assert_eq!(engine.poll_devices().await, 2);
    let approved_id = approved["id"].as_str().unwrap();
    let denied_id = denied["id"].as_str().unwrap();
    assert_eq!(
        view(&w, approved_id).await["status"],
        "pending_authorization"
    );

    // The person approves one and denies the other.
    let done = w
        .auth
        .admin(
            "POST",
            "/device",
            Some(json!({"user_code": approved["user_code"]})),
        )
        .await;
    assert_eq!(done["done"], true, "{done}");
    let done = w
        .auth
        .admin(
            "POST",
            "/device",
            Some(json!({"user_code": denied["user_code"], "deny": true})),
        )
        .await;
    assert!(
        !done["page"].as_str().unwrap_or_default().is_empty(),
        "{done}"
    );
    wait_interval(&w).await;
    assert_eq!(engine.poll_devices().await, 2);

    let t = view(&w, approved_id).await;
    assert_eq!(t["status"], "active", "{t}");
    assert_eq!(t["has_refresh_token"], true);
    assert!(t["pending_authorization"].is_null() && t["user_code"].is_null());
    let access = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{approved_id}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(access.status, StatusCode::OK, "{}", access.body);
    assert!(
        w.auth
            .introspect(access.json()["access_token"].as_str().unwrap())
            .await
    );
    let r = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{approved_id}/refresh"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.json()["status"], "active", "{}", r.body);

    let t = view(&w, denied_id).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["error"], "access_denied", "{t}");
    assert!(t["pending_authorization"].is_null());
    // Requesting it again makes a new code.
    let again = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{denied_id}/request"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let again = again.json();
    assert_eq!(again["status"], "pending_authorization");
    assert_ne!(again["user_code"], denied["user_code"]);
    // Nothing was ever refused for a reused code.
    let stats = w.auth.stats().await;
    let device_grant = "urn:ietf:params:oauth:grant-type:device_code";
    assert!(
        stats["tokenErrors"][device_grant]["invalid_grant"].is_null(),
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_slow_down_when_asked_and_codes_lapse() {
    let w = World::new().await;
    let provider = device_provider(&w).await;
    let engine = &w.app.state.instance.tokens;
    let t = device_token(&w, &provider, "eager").await;
    let id = t["id"].as_str().unwrap();
    // The provider asks to slow down (oidc-provider itself never does: the
    // test server answers it for one poll), and the interval grows by
    // five seconds.
    w.auth
        .fault(json!({"endpoint": "token", "mode": "status", "status": 400,
                      "grantType": "urn:ietf:params:oauth:grant-type:device_code",
                      "body": {"error": "slow_down"}}))
        .await;
    assert_eq!(
        engine.poll_device(&row(&w, id).await).await,
        PollOutcome::Pending
    );
    let polled_at = server::clock::Clock::now(&w.app.clock);
    let after = row(&w, id).await;
    assert_eq!(after.device_interval_secs, Some(10), "slow_down adds 5 s");
    // The next poll waits the longer interval: the scheduler takes a code
    // only once its next poll is due.
    let wait = after.device_next_poll_at.unwrap() - polled_at;
    assert!(
        (8..=10).contains(&wait.num_seconds()),
        "next poll in {wait}"
    );
    assert_eq!(
        view(&w, id).await["pending_authorization"]["interval_seconds"],
        10
    );
    // A poll claims its code: the same row read twice polls once.
    let stale = row(&w, id).await;
    let first = engine.poll_device(&stale).await;
    assert_ne!(first, PollOutcome::Superseded);
    assert_eq!(engine.poll_device(&stale).await, PollOutcome::Superseded);

    // A code that lapses ends the wait with expired_token.
    w.auth
        .admin("POST", "/config", Some(json!({"deviceCodeTtl": 2})))
        .await;
    let t = device_token(&w, &provider, "slow person").await;
    let id = t["id"].as_str().unwrap();
    wait_interval(&w).await;
    assert_eq!(
        engine.poll_device(&row(&w, id).await).await,
        PollOutcome::Ended
    );
    let t = view(&w, id).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["error"], "expired_token", "{t}");

    // A provider without a device endpoint offers no Device Code flow.
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/tokens",
            w.key.clone(),
            json!({"name": "x", "provider_id": w.provider_id("cc").await, "flow": "device_code"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "flow");
}
