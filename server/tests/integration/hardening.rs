//! What an attacker on the network can do to sign-in: guesses are counted
//! before their password is checked, so parallel guesses never get more
//! than the limit verified, and a flood of logins cannot starve the server.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;

use axum::http::StatusCode;
use serde_json::json;
use server::account::Role;

use crate::support::{TestApp, json_request, request};

async fn guess(app: &TestApp, email: &str, password: &str) -> StatusCode {
    guess_from(app, [127, 0, 0, 1], email, password).await
}

/// A sign-in attempt from the client address `from`.
async fn guess_from(app: &TestApp, from: [u8; 4], email: &str, password: &str) -> StatusCode {
    let mut r = json_request(
        "POST",
        "/api/v1/session",
        None,
        json!({"email": email, "password": password}),
    );
    r.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((from, 40000))));
    app.send(r).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_parallel_guesses_get_five_checked_and_the_rest_429() {
    let app = Arc::new(TestApp::new().await);
    let password = app.user("victim@example.com", Role::User).await;
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..30 {
        let app = app.clone();
        guesses
            .spawn(async move { guess(&app, "victim@example.com", &format!("wrong {i}")).await });
    }
    let (mut checked, mut limited) = (0, 0);
    while let Some(status) = guesses.join_next().await {
        match status.unwrap() {
            StatusCode::UNPROCESSABLE_ENTITY => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((checked, limited), (5, 25));
    // Even the right password waits for the window now.
    assert_eq!(
        guess(&app, "victim@example.com", &password).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The audit log says so.
    let admin = app.user("admin@example.com", Role::Admin).await;
    let cookie = app.login("admin@example.com", &admin).await;
    let audit = app
        .send(request(
            "GET",
            "/api/v1/audit?action=login&limit=100",
            Some(crate::support::Auth::Cookie(cookie)),
        ))
        .await
        .json();
    let denied = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .count();
    assert_eq!(denied, 26, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_during_a_flood_of_two_hundred_logins() {
    let app = Arc::new(TestApp::new().await);
    app.user("someone@example.com", Role::User).await;
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..200 {
        let app = app.clone();
        // Distinct accounts and addresses: no limit stops them, so every
        // one reaches the password check.
        flood.spawn(async move {
            let from = [198, 51, 100, u8::try_from(i).unwrap()];
            guess_from(&app, from, &format!("nobody{i}@example.com"), "a guess").await
        });
    }
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let r = app.send(request("GET", "/healthz", None)).await;
        assert_eq!(r.status, StatusCode::OK);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(status) = flood.join_next().await {
        *statuses.entry(status.unwrap().as_u16()).or_insert(0) += 1;
    }
    eprintln!("200 parallel logins: {statuses:?}; slowest /healthz meanwhile {slowest:?}");
    // Bad credentials, or busy (waited 5 s for a place): never a fault.
    assert!(
        statuses.keys().all(|s| matches!(s, 422 | 503)),
        "{statuses:?}"
    );
    assert!(statuses.get(&422).copied().unwrap_or(0) > 0, "{statuses:?}");
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "/healthz took {slowest:?} during the flood"
    );
}

/// Failed sign-ins from a proxy at 127.0.0.1 on behalf of `client`, and
/// the address the audit log recorded for the last one.
async fn through_proxy(app: &TestApp, client: &str, tries: usize) -> (Vec<StatusCode>, String) {
    let mut statuses = Vec::new();
    for i in 0..tries {
        let mut r = json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": format!("nobody{i}@example.com"), "password": "a guess"}),
        );
        r.headers_mut().insert(
            "x-forwarded-for",
            format!("6.6.6.6, {client}").parse().unwrap(),
        );
        statuses.push(app.send(r).await.status);
    }
    let auditor = format!("auditor-{client}@example.com");
    let admin = app.user(&auditor, Role::Admin).await;
    let cookie = app.login(&auditor, &admin).await;
    let audit = app
        .send(request(
            "GET",
            "/api/v1/audit?action=login&limit=20",
            Some(crate::support::Auth::Cookie(cookie)),
        ))
        .await
        .json();
    // Newest first: the last failed guess.
    let addr = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == "failure")
        .and_then(|e| e["client_addr"].as_str())
        .unwrap_or_default()
        .to_owned();
    (statuses, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_names_the_client_and_an_untrusted_one_does_not() {
    let trusted = TestApp::with_env(&[("QUIVER_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let (statuses, addr) = through_proxy(&trusted, "203.0.113.77", 21).await;
    assert_eq!(addr, "203.0.113.77", "audited with the client's address");
    // Limited by the client's address (20 per window), not the proxy's.
    assert!(
        statuses[..20]
            .iter()
            .all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY)
    );
    assert_eq!(statuses[20], StatusCode::TOO_MANY_REQUESTS);
    let (statuses, addr) = through_proxy(&trusted, "203.0.113.78", 1).await;
    assert_eq!(
        (statuses[0], addr.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "203.0.113.78"),
        "another client behind the same proxy is not locked out"
    );

    let untrusted = TestApp::new().await;
    let (_, addr) = through_proxy(&untrusted, "203.0.113.77", 1).await;
    assert_eq!(
        addr, "127.0.0.1",
        "the header is ignored from an untrusted peer"
    );

    let bad = server::config::Config::load(
        None,
        [(
            "QUIVER_TRUSTED_PROXIES".to_owned(),
            "10.0.0.0/40".to_owned(),
        )],
    );
    let Err(err) = bad else {
        panic!("a bad block is refused")
    };
    let err = err.to_string();
    assert!(err.contains("QUIVER_TRUSTED_PROXIES"), "{err}");
}

/// An API key cannot make API keys, through the REST API or the server
/// function: only a person signed in (a session) can. A leaked key must not
/// be able to outlive its own revocation through keys it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_cannot_create_api_keys() {
    use crate::support::{Auth, server_fn_request};
    let app = TestApp::new().await;
    for (email, role) in [
        ("admin@example.com", Role::Admin),
        ("someone@example.com", Role::User),
    ] {
        let password = app.user(email, role).await;
        let cookie = app.login(email, &password).await;
        let (key, _) = app.api_key(&cookie, "script").await;
        let r = app
            .send(json_request(
                "POST",
                "/api/v1/api-keys",
                Some(Auth::Bearer(key.clone())),
                json!({"name": "made by a key"}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{email}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "forbidden");
        let r = app
            .send(server_fn_request(
                "create_api_key",
                Some(Auth::Bearer(key.clone())),
                "name=made+by+a+key",
            ))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{email}: {}", r.body);
        // The key still does what keys are for, and the person can still
        // make keys with their session.
        let r = app
            .send(request(
                "GET",
                "/api/v1/api-keys",
                Some(Auth::Bearer(key.clone())),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let names: Vec<String> = r.json()["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", r.body))
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, vec!["script".to_owned()], "{email}");
        let r = app
            .send(server_fn_request(
                "create_api_key",
                Some(Auth::Cookie(cookie.clone())),
                "name=from+the+page",
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // The refusals are audited as denied.
    let admin = app
        .login("admin@example.com", "pw-admin@example.com-long-enough")
        .await;
    let audit = app
        .send(request(
            "GET",
            "/api/v1/audit?action=api_key.create&limit=100",
            Some(Auth::Cookie(admin)),
        ))
        .await
        .json();
    let denied = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .count();
    assert_eq!(denied, 4, "{audit}");
}

/// An export with secrets needs a passphrase of at least 12 characters,
/// through the REST API and the page's server function alike (422 naming
/// `passphrase`); the command line says the same (see
/// `transfer::cli::cli_round_trip_with_secrets_into_another_instance`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_passphrases_under_twelve_characters_are_refused() {
    use crate::support::{Auth, server_fn_json};
    let app = TestApp::new().await;
    let password = app.user("admin@example.com", Role::Admin).await;
    let admin = Auth::Cookie(app.login("admin@example.com", &password).await);
    let eleven = "eleven char";
    assert_eq!(eleven.chars().count(), 11);
    let r = app
        .send(json_request(
            "POST",
            "/api/v1/export",
            Some(admin.clone()),
            json!({"include_secrets": true, "passphrase": eleven}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "passphrase", "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 12 characters"),
        "{}",
        r.body
    );
    let r = app
        .send(server_fn_json(
            "export_bundle",
            Some(admin.clone()),
            json!({"input": {"provider_ids": [], "include_secrets": true, "passphrase": eleven}}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("\"field\":\"passphrase\"") && r.body.contains("at least 12 characters"),
        "{}",
        r.body
    );
    // Twelve (counted in characters, not bytes) is enough.
    let twelve = "éléven chars";
    assert_eq!(twelve.chars().count(), 12);
    let r = app
        .send(json_request(
            "POST",
            "/api/v1/export",
            Some(admin.clone()),
            json!({"include_secrets": true, "passphrase": twelve}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .send(server_fn_json(
            "export_bundle",
            Some(admin),
            json!({"input": {"provider_ids": [], "include_secrets": true, "passphrase": twelve}}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
