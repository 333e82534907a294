//! Token usage: every access token handed out is counted per token and per
//! caller, in memory and then in batches, on SQLite and PostgreSQL; views
//! are exact before and after a write; the list filters tokens unused for
//! some days and sorts by last use; old buckets are deleted.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::Duration;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use server::db::entity::{api_key, token, token_use, user};

use crate::support::world::World;
use crate::support::{Auth, TestApp, request, test_database};

/// `n` simultaneous access-token calls; all must succeed.
async fn hand_out(app: &Arc<TestApp>, who: &Option<Auth>, id: &str, n: usize) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (app, who) = (app.clone(), who.clone());
        let path = format!("/api/v1/tokens/{id}/access-token");
        set.spawn(async move { app.send(request("GET", &path, who)).await.status });
    }
    let mut ok = 0;
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
        ok += 1;
    }
    assert_eq!(ok, n);
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

async fn write(w: &World) {
    w.app
        .state
        .instance
        .tokens
        .tokens
        .usage
        .write()
        .await
        .unwrap();
}

/// Stored uses of token `id` per bucket length, by caller.
async fn stored(w: &World, id: &str, span: token_use::Span) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = token_use::Entity::find()
        .filter(token_use::Column::TokenId.eq(id))
        .filter(token_use::Column::Span.eq(span))
        .all(&w.app.state.instance.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.caller_id, r.uses))
        .collect();
    rows.sort();
    rows
}

async fn counts_equal_calls(w: World) {
    let id = w
        .token(json!({"name": "cc", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"}))
        .await;
    let db = &w.app.state.instance.db;
    let key_id = api_key::Entity::find().one(db).await.unwrap().unwrap().id;
    let admin_id = user::Entity::find()
        .filter(user::Column::Email.eq("admin@example.com"))
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .id;

    // Never handed out yet.
    let v = view(&w, &id).await;
    assert_eq!(v["last_used_at"], Value::Null);
    assert_eq!(v["uses_24h"], 0);

    hand_out(&w.app, &w.key, &id, 1000).await;
    hand_out(&w.app, &Some(w.admin.clone()), &id, 3).await;
    // Refused calls are not uses.
    let r = w
        .app
        .send(request(
            "GET",
            "/api/v1/tokens/no-such-token/access-token",
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Counted in memory: the view already says so, nothing is stored yet.
    let v = view(&w, &id).await;
    assert_eq!(v["uses_24h"], 1003, "{v}");
    assert_eq!(v["last_used_by"], "admin@example.com");
    assert!(v["last_used_at"].is_string());
    assert!(stored(&w, &id, token_use::Span::Hour).await.is_empty());

    write(&w).await;
    let mut expected = vec![(admin_id.clone(), 3), (key_id.clone(), 1000)];
    expected.sort();
    assert_eq!(stored(&w, &id, token_use::Span::Hour).await, expected);
    assert_eq!(stored(&w, &id, token_use::Span::Day).await, expected);
    let row = token::Entity::find_by_id(id.clone())
        .one(&w.app.state.instance.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.last_used_by.as_deref(), Some("admin@example.com"));
    assert!(row.last_used_at.is_some());
    // Stored once, counted once.
    assert_eq!(view(&w, &id).await["uses_24h"], 1003);

    // More uses add to the stored buckets.
    hand_out(&w.app, &w.key, &id, 500).await;
    write(&w).await;
    let mut expected = vec![(admin_id, 3), (key_id, 1500)];
    expected.sort();
    assert_eq!(stored(&w, &id, token_use::Span::Hour).await, expected);
    let v = view(&w, &id).await;
    assert_eq!(v["uses_24h"], 1503);
    assert_eq!(v["last_used_by"], "robot");

    // Counted per API key too: the keys list says how many it fetched.
    let keys = w
        .app
        .send(request("GET", "/api/v1/api-keys", w.key.clone()))
        .await
        .json();
    assert_eq!(keys["items"][0]["access_tokens_24h"], 1500, "{keys}");

    // The usage endpoint: 30 days, today last.
    let usage = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/usage"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.body);
    let usage = usage.json();
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["uses"], 1503);
    assert_eq!(
        days[29]["date"],
        server::clock::Clock::now(&w.app.clock)
            .date_naive()
            .to_string()
    );
    assert_eq!(
        days.iter()
            .map(|d| d["uses"].as_u64().unwrap())
            .sum::<u64>(),
        1503
    );
    assert_eq!(usage["uses_24h"], 1503);
    assert_eq!(usage["last_used_by"], "robot");

    // A deleted token's uses not written yet are dropped, not retried.
    let other = w
        .token(json!({"name": "gone", "provider_id": w.provider_id("cc").await, "flow": "client_credentials"}))
        .await;
    hand_out(&w.app, &w.key, &other, 5).await;
    let r = w
        .app
        .send(request(
            "DELETE",
            &format!("/api/v1/tokens/{other}"),
            w.key.clone(),
        ))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    write(&w).await;
    assert!(stored(&w, &other, token_use::Span::Hour).await.is_empty());
    write(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_equal_the_calls_made_on_sqlite() {
    counts_equal_calls(World::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_equal_the_calls_made_on_postgres() {
    let db = test_database("usage").await;
    counts_equal_calls(World::with_env(&[("QUIVER_DATABASE_URL", &db.url)]).await).await;
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn list(w: &World, query: &str) -> Value {
    let r = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens?{query}"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_tokens_are_found_and_old_buckets_deleted() {
    let w = World::new().await;
    let cc = w.provider_id("cc").await;
    let make = |name: &str| json!({"name": name, "provider_id": cc, "flow": "client_credentials"});
    let a = w.token(make("a")).await;
    let _d = w.token(make("d")).await;
    hand_out(&w.app, &w.key, &a, 2).await;
    write(&w).await;

    w.app.clock.advance(Duration::days(10));
    let b = w.token(make("b")).await;
    let _c = w.token(make("c")).await;
    hand_out(&w.app, &w.key, &b, 1).await;

    // A: used 10 days ago; D: never used, created 10 days ago. B is used
    // now (not written yet: filtering writes it first), C is new.
    assert_eq!(names(&list(&w, "unused_days=7").await), ["a", "d"]);
    assert_eq!(
        names(&list(&w, "unused_days=11").await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&list(&w, "sort=last_used_at&order=desc").await)[..2],
        ["b", "a"]
    );
    let asc = names(&list(&w, "sort=last_used_at").await);
    assert_eq!(asc[2..], ["a", "b"], "never used sorts first: {asc:?}");
    let r = w
        .app
        .send(request(
            "GET",
            "/api/v1/tokens?unused_days=0",
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "unused_days");

    // Yesterday's uses are out of the last 24 hours but in the chart.
    let v = view(&w, &a).await;
    assert_eq!(v["uses_24h"], 0);
    let days: Vec<u64> = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{a}/usage"),
            w.key.clone(),
        ))
        .await
        .json()["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uses"].as_u64().unwrap())
        .collect();
    assert_eq!(days[19], 2, "{days:?}");
    assert_eq!(days.iter().sum::<u64>(), 2);
    assert_eq!(view(&w, &b).await["uses_24h"], 1);

    // After 40 days only the last buckets remain: hourly ones two days,
    // daily ones a month.
    w.app.clock.advance(Duration::days(40));
    hand_out(&w.app, &w.key, &b, 1).await;
    write(&w).await;
    assert!(stored(&w, &a, token_use::Span::Hour).await.is_empty());
    assert!(stored(&w, &a, token_use::Span::Day).await.is_empty());
    let b_hours = stored(&w, &b, token_use::Span::Hour).await;
    assert_eq!(
        b_hours.iter().map(|(_, n)| n).sum::<i64>(),
        1,
        "{b_hours:?}"
    );
    // Kept on the token: when it was last used.
    assert!(view(&w, &a).await["last_used_at"].is_string());
}
