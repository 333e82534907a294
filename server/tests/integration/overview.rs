//! The overview against the real authorization server: counts by status,
//! the tokens that need attention with why and what to do, renewals per
//! hour and day from the aggregate (the same before and after it is
//! written), each caller's own tokens (an admin's: all), and the metrics'
//! attention gauges.

use axum::http::StatusCode;
use chrono::Duration;
use serde_json::{Value, json};

use crate::support::world::World;
use crate::support::{Auth, json_request, request};

async fn overview(w: &World, who: Option<Auth>) -> Value {
    let r = w.app.send(request("GET", "/api/v1/overview", who)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

fn reasons_of(o: &Value, name: &str) -> Vec<String> {
    o["attention"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["token_name"] == name)
        .map(|a| a["reason"].as_str().unwrap().to_owned())
        .collect()
}

fn item<'a>(o: &'a Value, name: &str, reason: &str) -> &'a Value {
    o["attention"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["token_name"] == name && a["reason"] == reason)
        .unwrap_or_else(|| panic!("{name} is not listed for {reason}: {o}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_warns_and_charts_renewals() {
    let w = World::new().await;
    let cc = w.provider_id("cc").await;
    let pw = w.provider_id("pw").await;
    let now = server::clock::Clock::now(&w.app.clock);
    let ok = w
        .token(json!({"name": "ok", "provider_id": cc, "flow": "client_credentials"}))
        .await;
    w.token(
        json!({"name": "bad", "provider_id": pw, "flow": "password", "username": "alice",
                   "password": "not her password"}),
    )
    .await;
    w.token(json!({"name": "own", "provider_id": cc, "flow": "client_credentials",
                   "use_default_keys": false, "client_id": "cc-basic",
                   "client_secret": w.auth.client_secret("cc-basic"),
                   "client_secret_expires_at": (now + Duration::days(10)).date_naive().to_string()}))
        .await;
    // The admin's own token: in the admin's overview, not the user's.
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/tokens",
            Some(w.admin.clone()),
            json!({"name": "admins", "provider_id": cc, "flow": "client_credentials"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{ok}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let o = overview(&w, w.key.clone()).await;
    assert_eq!(o["total"], 3, "{o}");
    assert_eq!(o["counts"]["active"], 2);
    assert_eq!(o["counts"]["failed"], 1);
    assert_eq!(o["counts"]["expiring_soon"], 0);
    let bad = item(&o, "bad", "failed");
    assert!(
        bad["why"].as_str().unwrap().contains("invalid_grant"),
        "{bad}"
    );
    assert!(bad["what_to_do"].as_str().unwrap().contains("credentials"));
    let own = item(&o, "own", "secret_expiring");
    assert!(
        own["due_at"]
            .as_str()
            .unwrap()
            .starts_with(&(now + Duration::days(10)).date_naive().to_string())
    );
    assert!(own["what_to_do"].as_str().unwrap().contains("next secret"));
    assert_eq!(reasons_of(&o, "ok"), Vec::<String>::new());
    assert_eq!(o["attention_counts"]["failed"], 1);
    assert_eq!(o["attention_counts"]["secret_expiring"], 1);
    assert_eq!(o["attention_counts"]["unused"], 0);
    // Three requests at the provider, one refused: this hour and today.
    let hourly = o["renewals_hourly"].as_array().unwrap();
    let daily = o["renewals_daily"].as_array().unwrap();
    assert_eq!(hourly.len(), 24);
    assert_eq!(daily.len(), 30);
    assert_eq!(
        (
            hourly[23]["renewals"].clone(),
            hourly[23]["failures"].clone()
        ),
        (json!(3), json!(1)),
        "{o}"
    );
    assert_eq!(
        (daily[29]["renewals"].clone(), daily[29]["failures"].clone()),
        (json!(3), json!(1))
    );
    // The admin sees every token and every renewal.
    let a = overview(&w, Some(w.admin.clone())).await;
    assert_eq!(a["total"], 4);
    assert_eq!(a["renewals_hourly"][23]["renewals"], 4);

    // Written to the aggregate: the same figures, counted once.
    w.app
        .state
        .instance
        .tokens
        .tokens
        .usage
        .write()
        .await
        .unwrap();
    let o = overview(&w, w.key.clone()).await;
    assert_eq!(o["renewals_hourly"][23]["renewals"], 3);
    assert_eq!(o["renewals_daily"][29]["failures"], 1);

    // Sessions lapse within a month; a scraper uses an admin's API key.
    let Auth::Cookie(cookie) = &w.admin else {
        unreachable!()
    };
    let (scraper, _) = w.app.api_key(cookie, "scraper").await;

    // A month later: the secret has expired, nothing was fetched since,
    // and yesterday's renewals moved out of the last 24 hours.
    w.app.clock.advance(Duration::days(31));
    let o = overview(&w, w.key.clone()).await;
    let own = item(&o, "own", "secret_expiring");
    assert!(own["why"].as_str().unwrap().contains("expired on"), "{own}");
    let unused = item(&o, "ok", "unused");
    assert!(
        unused["why"].as_str().unwrap().contains("for 31 days"),
        "{unused}"
    );
    assert_eq!(
        o["attention_counts"]["unused"], 2,
        "ok and own; bad is failed, not active"
    );
    assert!(
        o["renewals_hourly"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["renewals"] == 0)
    );
    assert_eq!(
        o["renewals_daily"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["renewals"].as_u64().unwrap())
            .sum::<u64>(),
        0,
        "31 days ago is out of the 30-day chart"
    );

    // The metrics' gauges count every token's reasons.
    let m = w
        .app
        .send(request("GET", "/metrics", Some(Auth::Bearer(scraper))))
        .await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.body
            .contains("quiver_tokens_attention{reason=\"failed\"} 1"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("quiver_tokens_attention{reason=\"unused\"} 3"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("quiver_tokens_attention{reason=\"secret_expiring\"} 1")
    );
    assert!(
        m.body
            .contains("quiver_tokens_attention{reason=\"reauthorization_due\"} 0")
    );

    // `token.unused`: once per token and idle stretch, to its owner.
    let engine = &w.app.state.instance.tokens;
    assert_eq!(engine.announce_unused().await, 3, "ok, own and the admin's");
    assert_eq!(engine.announce_unused().await, 0);
    let events = w
        .app
        .send(request("GET", "/api/v1/events?limit=100", w.key.clone()))
        .await
        .json();
    let unused: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "token.unused")
        .collect();
    assert_eq!(unused.len(), 2, "{events}");
    assert!(
        unused.iter().any(|e| e["token_id"] == ok.as_str()
            && e["message"].as_str().unwrap().contains("for 31 days"))
    );
    // Used again, then idle again: announced again.
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{ok}/access-token"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(engine.announce_unused().await, 0);
    w.app
        .clock
        .advance(Duration::days(30) + Duration::minutes(1));
    assert_eq!(engine.announce_unused().await, 1);
}
