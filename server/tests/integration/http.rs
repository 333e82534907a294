//! The router in-process: health, pages rendered on the server, the
//! server functions, and a database outage.

use crate::support::{Auth, TestApp, request, server_fn_request};
use axum::http::StatusCode;
use server::account::Role;

async fn signed_in(env: &[(&str, &str)]) -> (TestApp, Option<Auth>) {
    let app = TestApp::with_env(env).await;
    let pw = app.user("admin@example.com", Role::Admin).await;
    let cookie = app.login("admin@example.com", &pw).await;
    (app, Some(Auth::Cookie(cookie)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ok_then_503_when_the_database_is_gone() {
    let app = TestApp::new().await;
    let r = app.send(request("GET", "/healthz", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, r#"{"database":"ok","status":"ok"}"#);
    app.state.instance.db.clone().close().await.unwrap();
    let r = app.send(request("GET", "/healthz", None)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("unavailable"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_on_the_server_with_its_navigation() {
    let (app, auth) = signed_in(&[]).await;
    for (path, heading) in [
        ("/tokens", "OAuth tokens"),
        ("/providers", "OAuth providers"),
        ("/import-export", "Import and export"),
        ("/settings", "Settings"),
        ("/users", "Users"),
        ("/audit", "Audit log"),
    ] {
        let r = app.send(request("GET", path, auth.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.body.contains(heading), "{path}: {}", r.body);
        for link in [
            "/tokens",
            "/providers",
            "/import-export",
            "/settings",
            "/users",
            "/audit",
        ] {
            assert!(
                r.body.contains(&format!("href=\"{link}\"")),
                "{path} lacks {link}"
            );
        }
        assert!(
            r.body.contains("/pkg/quiver.js"),
            "{path} lacks the hydration script"
        );
    }
    // Empty states lead somewhere.
    let r = app.send(request("GET", "/tokens", auth.clone())).await;
    assert!(r.body.contains("No tokens yet") && r.body.contains("Create token"));
    let r = app.send(request("GET", "/providers", auth.clone())).await;
    assert!(r.body.contains("No providers yet") && r.body.contains("href=\"/providers/new\""));
    let r = app
        .send(request("GET", "/providers/new", auth.clone()))
        .await;
    assert!(r.body.contains("Discover from issuer"), "{}", r.body);
    let r = app
        .send(request("GET", "/tokens/no-such-token", auth.clone()))
        .await;
    assert!(r.body.contains("was not found"), "{}", r.body);
    let r = app.send(request("GET", "/no-such-page", auth)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("Page not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_warns_about_http_and_not_about_https() {
    let (app, auth) = signed_in(&[]).await;
    let r = app.send(request("GET", "/settings", auth)).await;
    assert!(r.body.contains("not reachable over HTTPS"), "{}", r.body);
    assert!(r.body.contains("http://127.0.0.1:3000/oauth/callback"));

    let (app, auth) = signed_in(&[("QUIVER_PUBLIC_URL", "https://quiver.example.com")]).await;
    let r = app.send(request("GET", "/settings", auth)).await;
    assert!(!r.body.contains("not reachable over HTTPS"));
    assert!(r.body.contains("https://quiver.example.com/oauth/callback"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_functions_answer_over_http() {
    let (app, auth) = signed_in(&[]).await;
    let r = app
        .send(server_fn_request("get_instance_info", auth.clone(), ""))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let value = r.json();
    assert_eq!(value["database_kind"], "SQLite");
    assert_eq!(value["https"], false);
    assert_eq!(value["version"], server::VERSION);

    let r = app
        .send(server_fn_request("check_database", auth, ""))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["reachable"], true);
    assert_eq!(r.json()["migrations"], 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_rest_route() {
    let app = TestApp::new().await;
    let r = app.send(request("GET", "/api/v1/openapi.json", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every route the router serves (method, path) is in the document.
    let routes = [
        ("post", "/session"),
        ("get", "/session"),
        ("delete", "/session"),
        ("get", "/users"),
        ("post", "/users"),
        ("patch", "/users/{id}"),
        ("post", "/users/{id}/revoke-sessions"),
        ("get", "/api-keys"),
        ("post", "/api-keys"),
        ("delete", "/api-keys/{id}"),
        ("get", "/audit"),
        ("get", "/providers"),
        ("post", "/providers"),
        ("post", "/providers/discover"),
        ("get", "/provider-templates"),
        ("get", "/provider-templates/{id}"),
        ("get", "/providers/{id}"),
        ("patch", "/providers/{id}"),
        ("delete", "/providers/{id}"),
        ("get", "/tokens"),
        ("post", "/tokens"),
        ("get", "/tokens/{id}"),
        ("patch", "/tokens/{id}"),
        ("delete", "/tokens/{id}"),
        ("post", "/tokens/{id}/request"),
        ("post", "/tokens/{id}/refresh"),
        ("post", "/tokens/{id}/reset"),
        ("post", "/tokens/{id}/auth-link"),
        ("post", "/tokens/{id}/test"),
        ("get", "/tokens/{id}/usage"),
        ("post", "/tokens/{id}/promote-secret"),
        ("post", "/providers/{id}/promote-secret"),
        ("get", "/tokens/{id}/access-token"),
        ("get", "/tokens/{id}/verification-qr"),
        ("get", "/events"),
        ("get", "/overview"),
        ("get", "/jobs"),
        ("post", "/jobs"),
        ("get", "/jobs/{id}"),
        ("patch", "/jobs/{id}"),
        ("delete", "/jobs/{id}"),
        ("post", "/jobs/{id}/run"),
        ("get", "/jobs/{id}/runs"),
        ("post", "/export"),
        ("post", "/import"),
        ("get", "/import/{import_id}/progress"),
    ];
    for (method, path) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let r = app
            .send(request(
                &method.to_uppercase(),
                &format!("/api/v1{concrete}"),
                None,
            ))
            .await;
        assert_ne!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed"
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        assert_ne!(
            body["error"]["message"], "this API endpoint was not found",
            "{method} {path} is not routed"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "the document lists routes the test does not know"
    );
}
