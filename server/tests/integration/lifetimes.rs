//! Refresh-token lifetimes and renewal notes against the quirks server,
//! with the fake clock: what a provider states is kept, a provider's
//! setting fills in when it states nothing (absolute or sliding), the
//! re-authorization warning comes once, at the configured notice, and a
//! renewal that drops the refresh token, narrows the scope or leaves out
//! `expires_in` is noted on the token and raised as events.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use server::clock::Clock;

use crate::support::quirks::{QuirksWorld, hand_made};

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

/// Within a few seconds (the request took some).
fn near(got: DateTime<Utc>, want: DateTime<Utc>) {
    assert!(
        (got - want).num_seconds().abs() <= 5,
        "{got} is not about {want}"
    );
}

async fn events(w: &QuirksWorld, kind: &str) -> Vec<Value> {
    let page = w.get("/api/v1/events?limit=200").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

async fn announce(w: &QuirksWorld) -> usize {
    w.app
        .state
        .instance
        .tokens
        .announce_reauthorization_due()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stated_lifetime_is_kept_and_reauthorization_is_announced_once_at_the_notice() {
    let w = QuirksWorld::with_env(&[("QUIVER_REAUTHORIZATION_NOTICE", "20d")]).await;
    // Intuit states the refresh token's life in every answer.
    w.quirks
        .shape(
            "intuit",
            json!({"rotates": true,
                   "refresh_lifetime": {"member": "x_refresh_token_expires_in", "seconds": 100 * 86_400}}),
        )
        .await;
    let p = hand_made(&w, "intuit", json!({"refresh_token_rotates": true})).await;
    let t = w.authorized_token(&p, "books").await;
    let id = t["id"].as_str().unwrap();
    let now = w.app.clock.now();
    near(
        time(&t["refresh_token_expires_at"]),
        now + Duration::days(100),
    );
    assert_eq!(t["reauthorization_due_at"], t["refresh_token_expires_at"]);
    assert_eq!(t["renewal_notes"], json!([]));

    assert_eq!(announce(&w).await, 0, "100 days ahead is not yet");
    w.app.clock.advance(Duration::days(79));
    assert_eq!(announce(&w).await, 0, "21 days ahead is not yet");
    w.app.clock.advance(Duration::days(2));
    assert_eq!(
        announce(&w).await,
        1,
        "19 days ahead is, with a 20-day notice"
    );
    assert_eq!(announce(&w).await, 0, "once");
    let due = events(&w, "token.reauthorization_due").await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0]["token_id"], id);
    assert_eq!(due[0]["detail"]["reason"], "refresh_token_expires");
    let message = due[0]["message"].as_str().unwrap();
    assert!(message.contains("within 19 days"), "{message}");

    // A renewal: the provider states a new lifetime, and the new date is
    // announced again only when it comes near.
    let renewed = w.refresh(id).await;
    assert_eq!(renewed["status"], "active", "{renewed}");
    near(
        time(&renewed["refresh_token_expires_at"]),
        w.app.clock.now() + Duration::days(100),
    );
    assert_eq!(announce(&w).await, 0);
    w.app.clock.advance(Duration::days(85));
    assert_eq!(announce(&w).await, 1);
    assert_eq!(events(&w, "token.reauthorization_due").await.len(), 2);
    assert_eq!(w.quirks.stats().await["invalidGrant"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_setting_fills_in_absolute_or_sliding() {
    let w = QuirksWorld::new().await;
    w.quirks.shape("silent", json!({"rotates": true})).await;
    let p = hand_made(
        &w,
        "silent",
        json!({"refresh_token_rotates": true, "refresh_token_lifetime_seconds": 30 * 86_400}),
    )
    .await;
    let provider = w.get(&format!("/api/v1/providers/{p}")).await;
    assert_eq!(provider["refresh_token_lifetime_seconds"], 30 * 86_400);
    assert_eq!(provider["refresh_token_lifetime_sliding"], false);

    let t = w.authorized_token(&p, "silent").await;
    let id = t["id"].as_str().unwrap();
    let granted = w.app.clock.now();
    near(
        time(&t["refresh_token_expires_at"]),
        granted + Duration::days(30),
    );

    // Absolute: ten days on, a renewal keeps the date of the grant.
    w.app.clock.advance(Duration::days(10));
    let renewed = w.refresh(id).await;
    assert_eq!(renewed["status"], "active", "{renewed}");
    assert_eq!(
        renewed["refresh_token_expires_at"],
        t["refresh_token_expires_at"]
    );

    // Sliding: each renewal restarts it.
    let r = w
        .app
        .send(crate::support::json_request(
            "PATCH",
            &format!("/api/v1/providers/{p}"),
            w.key.clone(),
            json!({"refresh_token_lifetime_sliding": true}),
        ))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.body);
    let renewed = w.refresh(id).await;
    near(
        time(&renewed["refresh_token_expires_at"]),
        w.app.clock.now() + Duration::days(30),
    );

    // Out of range is refused at its field; 0 clears it.
    for (value, ok) in [
        (json!(-1), false),
        (json!(700_000_000), false),
        (json!(0), true),
    ] {
        let r = w
            .app
            .send(crate::support::json_request(
                "PATCH",
                &format!("/api/v1/providers/{p}"),
                w.key.clone(),
                json!({"refresh_token_lifetime_seconds": value}),
            ))
            .await;
        if ok {
            assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.body);
            assert_eq!(r.json()["refresh_token_lifetime_seconds"], Value::Null);
        } else {
            assert_eq!(
                r.status,
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "{}",
                r.body
            );
            assert_eq!(
                r.json()["error"]["field"],
                "refresh_token_lifetime_seconds",
                "{}",
                r.body
            );
        }
    }
    // Nothing known now: a rotated refresh token's date is unknown.
    let renewed = w.refresh(id).await;
    assert_eq!(
        renewed["refresh_token_expires_at"],
        Value::Null,
        "{renewed}"
    );
    assert_eq!(renewed["reauthorization_due_at"], Value::Null, "{renewed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_leaves_things_out_is_noted_and_announced_once() {
    let w = QuirksWorld::new().await;
    w.quirks
        .shape(
            "stingy",
            json!({"rotates": true, "refresh_without_new": true, "refresh_scope": "read",
                   "refresh_without_expires_in": true}),
        )
        .await;
    let p = hand_made(&w, "stingy", json!({"refresh_token_rotates": true})).await;
    let t = w.authorized_token(&p, "stingy").await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(t["granted_scope"], "read write");
    assert_eq!(t["renewal_notes"], json!([]));

    let renewed = w.refresh(id).await;
    assert_eq!(renewed["status"], "active", "{renewed}");
    assert_eq!(
        renewed["renewal_notes"],
        json!([
            {"kind": "refresh_token_dropped"},
            {"kind": "scope_narrowed", "lost": ["write"]},
            {"kind": "expires_in_missing", "assumed_seconds": null},
        ]),
        "{renewed}"
    );
    // Without a refresh token, the person must authorize again when the
    // access token expires (here: unknown, none was stated).
    assert_eq!(renewed["has_refresh_token"], false);
    assert_eq!(renewed["reauthorization_due_at"], renewed["expires_at"]);
    for kind in [
        "token.refresh_token_dropped",
        "token.scope_narrowed",
        "token.expires_in_missing",
    ] {
        let raised = events(&w, kind).await;
        assert_eq!(raised.len(), 1, "{kind}: {raised:?}");
        assert_eq!(raised[0]["token_id"], id);
    }
    let narrowed = &events(&w, "token.scope_narrowed").await[0];
    assert_eq!(narrowed["detail"]["note"]["lost"], json!(["write"]));

    // Authorized again: a whole answer clears the notes.
    let link = w
        .post(&format!("/api/v1/tokens/{id}/auth-link"), json!({}))
        .await
        .json();
    let back = w.quirks.authorize(link["url"].as_str().unwrap()).await;
    let path = back.strip_prefix("http://127.0.0.1:3000").unwrap();
    let page = w.app.send(crate::support::request("GET", path, None)).await;
    assert_eq!(page.status, axum::http::StatusCode::OK, "{}", page.body);
    let again = w.get(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(again["has_refresh_token"], true, "{again}");
    assert_eq!(again["renewal_notes"], json!([]), "{again}");
}
