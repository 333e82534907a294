//! Connection tests against the real authorization server's userinfo
//! endpoint: named on the provider, run with a fresh token, kept on the
//! token, never showing the token; a token the API refuses is reported;
//! after a renewal a refusal raises `token.test_failed`; only an admin
//! gives a token its own test request.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::world::World;
use crate::support::{Auth, json_request, request};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_test_calls_the_api_with_the_token_and_keeps_what_it_saw() {
    let w = World::new().await;
    let admin = Some(w.admin.clone());
    let pw = w.provider_id("pw").await;
    let id = w
        .token(
            json!({"name": "alice", "provider_id": pw, "flow": "password", "username": "alice",
                      "password": "wonderland", "scope": "openid email offline_access"}),
        )
        .await;
    let test_path = format!("/api/v1/tokens/{id}/test");

    // No test request yet: said, at its field.
    assert_eq!(view(&w, &id).await["can_test"], false);
    let (status, body) = call(&w, "POST", &test_path, w.key.clone(), json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "test_request_url");

    // The provider names its userinfo endpoint.
    let userinfo = format!("{}/me", w.auth.issuer);
    let (status, p) = call(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{pw}"),
        admin.clone(),
        json!({"test_request_url": userinfo}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["test_request_method"], "GET");
    let (status, test) = call(&w, "POST", &test_path, w.key.clone(), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{test}");
    assert_eq!(test["ok"], true, "{test}");
    assert_eq!(test["status"], 200);
    assert_eq!(test["method"], "GET");
    assert_eq!(test["url"], userinfo.as_str());
    let excerpt = test["excerpt"].as_str().unwrap();
    assert!(excerpt.contains("alice@example.com"), "{excerpt}");
    assert!(
        test["content_type"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    // Never the token, anywhere in what is shown.
    let access = w
        .app
        .send(request(
            "GET",
            &format!("/api/v1/tokens/{id}/access-token"),
            w.key.clone(),
        ))
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = view(&w, &id).await;
    assert!(!test.to_string().contains(&access));
    assert!(!shown.to_string().contains(&access));
    assert_eq!(shown["can_test"], true);
    assert_eq!(shown["last_test"], test, "kept on the token");

    // A token the API refuses: a Client Credentials token has no user,
    // and userinfo says so.
    let cc = w.provider_id("cc").await;
    let (status, _) = call(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{cc}"),
        admin.clone(),
        json!({"test_request_url": userinfo, "test_after_renewal": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let machine = w
        .token(json!({"name": "machine", "provider_id": cc, "flow": "client_credentials"}))
        .await;
    let (status, refused) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{machine}/test"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(refused["ok"], false, "{refused}");
    let code = refused["status"].as_u64().unwrap();
    assert!((400..500).contains(&code), "{refused}");

    // After each grant (the first request and the renewal), the refusal
    // is an event.
    let (status, renewed) = call(
        &w,
        "POST",
        &format!("/api/v1/tokens/{machine}/refresh"),
        w.key.clone(),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let mut raised = Vec::new();
    for _ in 0..100 {
        let events = w
            .app
            .send(request("GET", "/api/v1/events", admin.clone()))
            .await
            .json();
        raised = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "token.test_failed")
            .cloned()
            .collect();
        if raised.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(raised.len(), 2, "{raised:?}");
    for event in &raised {
        assert_eq!(event["token_id"], machine.as_str());
        assert_eq!(event["detail"]["test"]["ok"], false);
        assert_eq!(event["detail"]["test"]["status"], code);
    }

    // A token's own test request: only an admin sets it, and it wins.
    let token_path = format!("/api/v1/tokens/{id}");
    let (status, body) = call(
        &w,
        "PATCH",
        &token_path,
        w.key.clone(),
        json!({"test_request_url": "https://127.0.0.1:9/elsewhere"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "test_request_url");
    let (status, body) = call(
        &w,
        "PATCH",
        &token_path,
        admin.clone(),
        json!({"test_request_url": "http://127.0.0.1:9/elsewhere", "test_request_method": "HEAD"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["test_request_method"], "HEAD");
    let (status, test) = call(&w, "POST", &test_path, w.key.clone(), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{test}");
    assert_eq!(test["ok"], false);
    assert_eq!(test["method"], "HEAD");
    assert_eq!(test["status"], Value::Null);
    assert!(
        test["error"].as_str().unwrap().contains("no answer"),
        "{test}"
    );
    // Cleared: the provider's applies again.
    let (status, _) = call(
        &w,
        "PATCH",
        &token_path,
        admin.clone(),
        json!({"test_request_url": "", "test_request_method": ""}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, test) = call(&w, "POST", &test_path, w.key.clone(), json!({})).await;
    assert_eq!(test["ok"], true, "{test}");
    // A bad method is named.
    let (status, body) = call(
        &w,
        "PATCH",
        &format!("/api/v1/providers/{pw}"),
        admin,
        json!({"test_request_method": "DELETE"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "test_request_method");
}
