//! Accounts, sessions, API keys, access rules, request hygiene and the
//! audit log, through the real router.

use crate::support::{Auth, TestApp, json_request, request, server_fn_request};
use axum::http::StatusCode;
use chrono::Duration;
use serde_json::json;
use server::account::Role;

fn cookie(c: &str) -> Option<Auth> {
    Some(Auth::Cookie(c.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_hardened_cookie_and_a_new_id_each_time() {
    let app = TestApp::new().await;
    let pw = app.user("alice@example.com", Role::User).await;
    let reply = app
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "Alice@Example.com", "password": pw}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let set = reply.header("set-cookie");
    assert!(set.starts_with("quiver_session="), "{set}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Secure"), "http instance: {set}");
    assert_eq!(reply.json()["user"]["email"], "alice@example.com");
    assert!(!reply.body.contains(&pw));
    let first = reply.session_cookie();

    // Logging in again while holding a session gives a new id and ends the old one.
    let mut again = json_request(
        "POST",
        "/api/v1/session",
        cookie(&first),
        json!({"email": "alice@example.com", "password": pw}),
    );
    again.headers_mut().insert("cookie", first.parse().unwrap());
    let second = app.send(again).await.session_cookie();
    assert_ne!(first, second);
    assert_eq!(
        app.send(request("GET", "/api/v1/session", cookie(&first)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(request("GET", "/api/v1/session", cookie(&second)))
            .await
            .status,
        StatusCode::OK
    );

    // On an https instance the cookie is Secure.
    let https = TestApp::with_env(&[("QUIVER_PUBLIC_URL", "https://quiver.example.com")]).await;
    let pw = https.user("bob@example.com", Role::User).await;
    let reply = https
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "bob@example.com", "password": pw}),
        ))
        .await;
    assert!(reply.header("set-cookie").contains("; Secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_instance_sends_hsts_and_names_the_cookie_host_only() {
    let https = TestApp::with_env(&[("QUIVER_PUBLIC_URL", "https://quiver.example.com")]).await;
    let pw = https.user("alice@example.com", Role::User).await;
    let login = https
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "alice@example.com", "password": pw}),
        ))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let set = login.header("set-cookie");
    assert!(set.starts_with("__Host-quiver_session="), "{set}");
    for attr in ["; Secure", "; Path=/;", "; HttpOnly", "; SameSite=Lax"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    let c = login.session_cookie();
    let token = c.split_once('=').unwrap().1;

    // The cookie authenticates the API and the app's server functions;
    // the same id under the http name (which any host can set) does not.
    let me = https
        .send(request("GET", "/api/v1/session", cookie(&c)))
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let plain = format!("quiver_session={token}");
    let me = https
        .send(request("GET", "/api/v1/session", cookie(&plain)))
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let ui = https
        .send(server_fn_request("get_current_user", cookie(&c), ""))
        .await;
    assert!(ui.body.contains("alice@example.com"), "{}", ui.body);
    let ui = https
        .send(server_fn_request("get_current_user", cookie(&plain), ""))
        .await;
    assert!(!ui.body.contains("alice@example.com"), "{}", ui.body);

    // Signing in from the page sets the same cookie; signing out clears it.
    let page_login = https
        .send(server_fn_request(
            "login",
            None,
            &format!(
                "email=alice%40example.com&password={}",
                pw.replace(' ', "+")
            ),
        ))
        .await;
    assert!(
        page_login
            .header("set-cookie")
            .starts_with("__Host-quiver_session="),
        "{}",
        page_login.header("set-cookie")
    );
    let logout = https
        .send(request("DELETE", "/api/v1/session", cookie(&c)))
        .await;
    let cleared = logout.header("set-cookie");
    assert!(
        cleared.starts_with("__Host-quiver_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // Every response carries Strict-Transport-Security: pages, API
    // errors, health, the OAuth callback and static files.
    for r in [
        &login,
        &logout,
        &https.send(request("GET", "/login", None)).await,
        &https.send(request("GET", "/api/v1/session", None)).await,
        &https
            .send(request("GET", "/api/v1/nothing-here", None))
            .await,
        &https.send(request("GET", "/healthz", None)).await,
        &https
            .send(request("GET", "/oauth/callback?state=x&code=y", None))
            .await,
        &https.send(request("GET", "/pkg/none.js", None)).await,
    ] {
        assert_eq!(r.header("strict-transport-security"), "max-age=31536000");
    }

    // On http: the plain name, no Secure, no HSTS.
    let http = TestApp::new().await;
    let pw = http.user("bob@example.com", Role::User).await;
    let login = http
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "bob@example.com", "password": pw}),
        ))
        .await;
    assert!(login.header("set-cookie").starts_with("quiver_session="));
    for r in [
        &login,
        &http.send(request("GET", "/login", None)).await,
        &http.send(request("GET", "/healthz", None)).await,
    ] {
        assert!(r.header("strict-transport-security").is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_never_says_whether_the_email_exists() {
    let app = TestApp::new().await;
    app.user("alice@example.com", Role::User).await;
    let wrong_pw = app
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "alice@example.com", "password": "not the password"}),
        ))
        .await;
    let no_user = app
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "nobody@example.com", "password": "not the password"}),
        ))
        .await;
    assert_eq!(wrong_pw.status, no_user.status);
    assert_eq!(wrong_pw.body, no_user.body);
    assert!(wrong_pw.header("set-cookie").is_empty());
    assert_eq!(
        wrong_pw.json()["error"]["message"],
        "The email or password is not correct."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_rate_limited_per_account_and_per_address() {
    let app = TestApp::new().await;
    let pw = app.user("alice@example.com", Role::User).await;
    let attempt = |email: &str, password: &str, ip: [u8; 4]| {
        let mut r = json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": email, "password": password}),
        );
        r.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                ip, 5000,
            ))));
        r
    };
    for _ in 0..5 {
        let r = app
            .send(attempt(
                "alice@example.com",
                "wrong password!",
                [10, 0, 0, 1],
            ))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Even the right password is refused now, from any address, with a wait.
    let blocked = app
        .send(attempt("alice@example.com", &pw, [10, 0, 0, 2]))
        .await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        blocked.body
    );
    let wait: u64 = blocked.header("retry-after").parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert_eq!(blocked.json()["error"]["code"], "rate_limited");
    app.clock.advance(Duration::minutes(15));
    assert_eq!(
        app.send(attempt("alice@example.com", &pw, [10, 0, 0, 2]))
            .await
            .status,
        StatusCode::OK
    );

    // One address guessing many accounts is stopped too.
    for i in 0..20 {
        app.send(attempt(
            &format!("guess{i}@example.com"),
            "x-wrong-password",
            [10, 9, 9, 9],
        ))
        .await;
    }
    let r = app
        .send(attempt("alice@example.com", &pw, [10, 9, 9, 9]))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        app.send(attempt("alice@example.com", &pw, [10, 9, 9, 8]))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_when_idle_and_after_their_absolute_lifetime() {
    let app = TestApp::new().await;
    let pw = app.user("alice@example.com", Role::User).await;
    let c = app.login("alice@example.com", &pw).await;
    let whoami = |c: String| request("GET", "/api/v1/session", Some(Auth::Cookie(c)));
    app.clock.advance(Duration::hours(11));
    assert_eq!(app.send(whoami(c.clone())).await.status, StatusCode::OK);
    app.clock.advance(Duration::hours(12));
    assert_eq!(
        app.send(whoami(c.clone())).await.status,
        StatusCode::UNAUTHORIZED,
        "idle 12 h"
    );

    let c = app.login("alice@example.com", &pw).await;
    for _ in 0..16 {
        app.clock.advance(Duration::hours(10));
        assert_eq!(app.send(whoami(c.clone())).await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::hours(10));
    assert_eq!(
        app.send(whoami(c)).await.status,
        StatusCode::UNAUTHORIZED,
        "7 days"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lifetimes_are_configurable() {
    let app = TestApp::with_env(&[
        ("QUIVER_SESSION_IDLE_TIMEOUT", "30m"),
        ("QUIVER_SESSION_MAX_AGE", "2h"),
    ])
    .await;
    let pw = app.user("alice@example.com", Role::User).await;
    let c = app.login("alice@example.com", &pw).await;
    app.clock.advance(Duration::minutes(31));
    assert_eq!(
        app.send(request("GET", "/api/v1/session", cookie(&c)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_revocation_end_sessions_at_once() {
    let app = TestApp::new().await;
    let admin_pw = app.user("admin@example.com", Role::Admin).await;
    let pw = app.user("alice@example.com", Role::User).await;
    let admin = app.login("admin@example.com", &admin_pw).await;
    let c = app.login("alice@example.com", &pw).await;

    let out = app
        .send(request("DELETE", "/api/v1/session", cookie(&c)))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(
        app.send(request("GET", "/api/v1/session", cookie(&c)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let c1 = app.login("alice@example.com", &pw).await;
    let c2 = app.login("alice@example.com", &pw).await;
    let alice = app
        .send(request("GET", "/api/v1/session", cookie(&c1)))
        .await
        .json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .send(request(
            "POST",
            &format!("/api/v1/users/{alice}/revoke-sessions"),
            cookie(&admin),
        ))
        .await;
    assert_eq!(r.json()["revoked"], 2, "{}", r.body);
    for c in [c1, c2] {
        assert_eq!(
            app.send(request("GET", "/api/v1/session", cookie(&c)))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }

    // Disabling ends sessions and API keys, and blocks login.
    let c = app.login("alice@example.com", &pw).await;
    let (key, _) = app.api_key(&c, "ci").await;
    let r = app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/users/{alice}"),
            cookie(&admin),
            json!({"disabled": true}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        app.send(request("GET", "/api/v1/session", cookie(&c)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(request("GET", "/api/v1/session", Some(Auth::Bearer(key))))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "alice@example.com", "password": pw}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_stored_hashed_and_revocable_at_once() {
    let app = TestApp::new().await;
    let pw = app.user("alice@example.com", Role::User).await;
    let c = app.login("alice@example.com", &pw).await;
    let (key, id) = app.api_key(&c, "deploy bot").await;
    assert!(key.starts_with("qvk_") && key.len() > 40);

    let list = app
        .send(request("GET", "/api/v1/api-keys", cookie(&c)))
        .await;
    assert!(!list.body.contains(&key), "the list must not show the key");
    let item = &list.json()["items"][0];
    assert_eq!(item["name"], "deploy bot");
    assert!(key.starts_with(item["prefix"].as_str().unwrap()));
    assert!(item["last_used_at"].is_null());

    // The key works as its user, and its use is recorded.
    let me = app
        .send(request(
            "GET",
            "/api/v1/session",
            Some(Auth::Bearer(key.clone())),
        ))
        .await;
    assert_eq!(me.json()["user"]["email"], "alice@example.com");
    let list = app
        .send(request("GET", "/api/v1/api-keys", cookie(&c)))
        .await;
    assert!(list.json()["items"][0]["last_used_at"].is_string());

    // Only a hash is stored.
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.state.instance.db;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT key_hash, prefix FROM api_keys",
        ))
        .await
        .unwrap();
    let hash: String = rows[0].try_get_by_index(0).unwrap();
    assert_ne!(hash, key);
    assert_eq!(hash.len(), 64);

    let r = app
        .send(request(
            "DELETE",
            &format!("/api/v1/api-keys/{id}"),
            cookie(&c),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["revoked_at"].is_string());
    assert_eq!(
        app.send(request("GET", "/api/v1/session", Some(Auth::Bearer(key))))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let bad = app
        .send(request(
            "GET",
            "/api/v1/session",
            Some(Auth::Bearer("qvk_made_up".into())),
        ))
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.json()["error"]["code"], "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_are_refused() {
    let app = TestApp::new().await;
    let pw = app.user("alice@example.com", Role::User).await;
    let c = app.login("alice@example.com", &pw).await;
    let mut cross = json_request("POST", "/api/v1/api-keys", cookie(&c), json!({"name": "x"}));
    cross
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    let r = app.send(cross).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"]["code"], "cross_site_request");

    let mut evil = json_request("POST", "/api/v1/api-keys", cookie(&c), json!({"name": "x"}));
    evil.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(app.send(evil).await.status, StatusCode::FORBIDDEN);

    let mut same = json_request("POST", "/api/v1/api-keys", cookie(&c), json!({"name": "x"}));
    same.headers_mut()
        .insert("origin", "http://127.0.0.1:3000".parse().unwrap());
    assert_eq!(app.send(same).await.status, StatusCode::CREATED);

    // Server functions too, including the login form.
    let mut sf = server_fn_request("create_api_key", cookie(&c), "name=y");
    sf.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(app.send(sf).await.status, StatusCode::FORBIDDEN);
    let mut sf = server_fn_request("login", None, "email=alice%40example.com&password=x");
    sf.headers_mut()
        .insert("sec-fetch-site", "same-site".parse().unwrap());
    assert_eq!(app.send(sf).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.send(server_fn_request("create_api_key", cookie(&c), "name=y"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_json_only_and_answers_every_error_in_json() {
    let app = TestApp::new().await;
    let r = app
        .send(
            axum::http::Request::post("/api/v1/session")
                .header("content-type", "text/plain")
                .body(axum::body::Body::from("email=a&password=b"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.json()["error"]["code"], "unsupported_media_type");

    let r = app
        .send(
            axum::http::Request::post("/api/v1/session")
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{\"email\":"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], "invalid_json");

    let r = app
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": 5}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["code"], "validation_failed");

    let big = "x".repeat(2 * 1024 * 1024);
    let r = app
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": big, "password": "p"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");

    let pw = app.user("admin@example.com", Role::Admin).await;
    let c = app.login("admin@example.com", &pw).await;
    let r = app
        .send(request("GET", "/api/v1/audit?limit=lots", cookie(&c)))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["code"], "validation_failed");

    let r = app.send(request("GET", "/api/v1/nothing-here", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "not_found");
    assert!(!r.body.contains("panicked") && !r.body.contains("src/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_their_field() {
    let app = TestApp::new().await;
    let pw = app.user("admin@example.com", Role::Admin).await;
    let c = app.login("admin@example.com", &pw).await;
    for (body, field) in [
        (json!({"email": "not-an-email"}), "email"),
        (
            json!({"email": "b@example.com", "password": "short"}),
            "password",
        ),
        (json!({"email": "b@example.com", "role": "root"}), "role"),
    ] {
        let r = app
            .send(json_request("POST", "/api/v1/users", cookie(&c), body))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["error"]["field"], field, "{}", r.body);
    }
    let r = app
        .send(json_request(
            "POST",
            "/api/v1/users",
            cookie(&c),
            json!({"email": "admin@example.com"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let me = app
        .send(request("GET", "/api/v1/session", cookie(&c)))
        .await
        .json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/users/{me}"),
            cookie(&c),
            json!({"role": "user"}),
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an admin cannot demote themself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_admin_pages_an_admin() {
    let app = TestApp::new().await;
    for path in [
        "/tokens",
        "/providers",
        "/import-export",
        "/settings",
        "/users",
        "/audit",
    ] {
        let mut page = request("GET", path, None);
        page.headers_mut()
            .insert("accept", "text/html,application/xhtml+xml".parse().unwrap());
        let r = app.send(page).await;
        assert_eq!(r.status, StatusCode::FOUND, "{path}");
        assert_eq!(r.header("location"), format!("/login?next={path}"));
    }
    let login = app.send(request("GET", "/login", None)).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login
            .body
            .contains("quiver user create --email you@example.com --admin"),
        "first-admin hint"
    );

    let pw = app.user("alice@example.com", Role::User).await;
    let c = app.login("alice@example.com", &pw).await;
    let page = app.send(request("GET", "/tokens", cookie(&c))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("OAuth tokens") && page.body.contains("alice@example.com"));
    assert!(
        !page.body.contains("href=\"/users\""),
        "no admin links for a user"
    );
    let users = app.send(request("GET", "/users", cookie(&c))).await;
    assert!(users.body.contains("Not allowed") && !users.body.contains("New account"));
    let login = app.send(request("GET", "/login", None)).await;
    assert!(
        !login.body.contains("quiver user create"),
        "hint only while no account exists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_security_headers_and_pages_a_nonce_csp() {
    let app = TestApp::new().await;
    let pw = app.user("alice@example.com", Role::User).await;
    let c = app.login("alice@example.com", &pw).await;
    let page = app.send(request("GET", "/settings", cookie(&c))).await;
    let csp = page.header("content-security-policy");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains(" 'unsafe-eval'"),
        "{csp}"
    );
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"),
        "{csp}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        page.body.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry the nonce"
    );
    for r in [
        &page,
        &app.send(request("GET", "/api/v1/session", None)).await,
        &app.send(request("GET", "/healthz", None)).await,
    ] {
        assert_eq!(r.header("referrer-policy"), "no-referrer");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert!(
            r.header("content-security-policy")
                .contains("frame-ancestors 'none'")
        );
    }
    // Another request, another nonce.
    let again = app.send(request("GET", "/settings", cookie(&c))).await;
    assert_ne!(again.header("content-security-policy"), csp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_who_did_what_from_where_without_secrets() {
    let app = TestApp::new().await;
    let admin_pw = app.user("admin@example.com", Role::Admin).await;
    let pw = app.user("alice@example.com", Role::User).await;
    let admin = app.login("admin@example.com", &admin_pw).await;
    let _ = app
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "alice@example.com", "password": "wrong password!"}),
        ))
        .await;
    let c = app.login("alice@example.com", &pw).await;
    let (key, _) = app.api_key(&c, "robot").await;
    let denied = app
        .send(request(
            "GET",
            "/api/v1/users",
            Some(Auth::Bearer(key.clone())),
        ))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let created = app
        .send(json_request(
            "POST",
            "/api/v1/users",
            cookie(&admin),
            json!({"email": "carol@example.com"}),
        ))
        .await;
    let generated = created.json()["generated_password"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(request("DELETE", "/api/v1/session", cookie(&c)))
        .await;

    let log = app
        .send(request("GET", "/api/v1/audit?limit=100", cookie(&admin)))
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    for secret in [
        &pw,
        &admin_pw,
        &key,
        &generated,
        &"wrong password!".to_owned(),
    ] {
        assert!(
            !log.body.contains(secret.as_str()),
            "the audit log holds a secret"
        );
    }
    let items = log.json()["items"].as_array().unwrap().clone();
    let find = |action: &str, outcome: &str| {
        items
            .iter()
            .find(|e| e["action"] == action && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action}/{outcome} in {items:#?}"))
            .clone()
    };
    let failed = find("login", "failure");
    assert_eq!(failed["actor"], "alice@example.com");
    assert_eq!(failed["client_addr"], "127.0.0.1");
    assert_eq!(find("login", "success")["actor_kind"], "user");
    assert_eq!(
        find("api_key.create", "success")["actor"],
        "alice@example.com"
    );
    assert_eq!(find("user.create", "success")["actor"], "admin@example.com");
    assert_eq!(find("logout", "success")["actor"], "alice@example.com");

    // Filters and paging.
    let only = app
        .send(request(
            "GET",
            "/api/v1/audit?action=login&limit=1",
            cookie(&admin),
        ))
        .await
        .json();
    assert_eq!(only["items"].as_array().unwrap().len(), 1);
    assert_eq!(only["total"], 3);
    let by_actor = app
        .send(request("GET", "/api/v1/audit?actor=alice", cookie(&admin)))
        .await
        .json();
    assert!(
        by_actor["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"].as_str().unwrap().contains("alice"))
    );
    let bad = app
        .send(request(
            "GET",
            "/api/v1/audit?since=yesterday",
            cookie(&admin),
        ))
        .await;
    assert_eq!(bad.json()["error"]["field"], "since");
    let future = app
        .send(request(
            "GET",
            "/api/v1/audit?since=2999-01-01T00:00:00Z",
            cookie(&admin),
        ))
        .await
        .json();
    assert_eq!(future["total"], 0);
}

/// The login page is a plain form: the browser posts it without the web app
/// and the server sends it on, to `next` or back with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_works_without_the_web_app() {
    let app = TestApp::new().await;
    let pw = app.user("alice@example.com", Role::User).await;
    let html = |mut r: axum::http::Request<axum::body::Body>| {
        r.headers_mut().insert(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
                .parse()
                .unwrap(),
        );
        r
    };

    // The page carries the form and next, and no web app.
    let page = app
        .send(html(request("GET", "/login?next=%2Fsettings", None)))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let login_path = TestApp::server_fn_path("login");
    assert!(
        page.body.contains(&format!("action=\"{login_path}\"")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"<input type="hidden" name="next" value="/settings""#),
        "{}",
        page.body
    );
    assert!(!page.body.contains("modulepreload"), "{}", page.body);
    assert!(!page.body.contains(".wasm"), "{}", page.body);

    // Other pages hydrate.
    let signed_in = app
        .send(json_request(
            "POST",
            "/api/v1/session",
            None,
            json!({"email": "alice@example.com", "password": pw}),
        ))
        .await
        .session_cookie();
    let tokens = app
        .send(html(request("GET", "/tokens", cookie(&signed_in))))
        .await;
    assert_eq!(tokens.status, StatusCode::OK);
    assert!(tokens.body.contains("modulepreload"), "{}", tokens.body);

    let post = |form: String| html(server_fn_request("login", None, &form));

    // Refused: back to the login page with the reason, next kept, no session.
    let refused = app
        .send(post(
            "email=alice%40example.com&password=wrong&next=%2Fsettings".into(),
        ))
        .await;
    assert_eq!(refused.status, StatusCode::FOUND, "{}", refused.body);
    assert_eq!(
        refused.header("location"),
        "/login?next=/settings&failed=credentials"
    );
    assert!(!refused.header("set-cookie").contains("quiver_session="));
    let shown = app
        .send(html(request("GET", &refused.header("location"), None)))
        .await;
    assert!(
        shown.body.contains("The email or password is not correct."),
        "{}",
        shown.body
    );
    // A link cannot put its own words on the page.
    let crafted = app
        .send(html(request(
            "GET",
            "/login?failed=Call%20555-0100%20now",
            None,
        )))
        .await;
    assert!(!crafted.body.contains("555-0100"), "{}", crafted.body);
    assert!(crafted.body.contains("Signing in failed; try again."));

    // Accepted: on to next when it stays on this site, else the tokens.
    let encoded =
        |next: &str| url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>();
    for (next, target) in [
        ("/settings", "/settings"),
        ("/tokens?x=1#y", "/tokens?x=1#y"),
        ("http://127.0.0.1:3000/audit", "/audit"),
        ("https://127.0.0.1:3000/audit", "/audit"),
        ("//evil.example", "/tokens"),
        ("/\t/evil.example", "/tokens"),
        ("https://evil.example/", "/tokens"),
        ("", "/tokens"),
    ] {
        let reply = app
            .send(post(format!(
                "email=alice%40example.com&password={}&next={}",
                encoded(&pw),
                encoded(next)
            )))
            .await;
        assert_eq!(reply.status, StatusCode::FOUND, "{next:?}: {}", reply.body);
        assert_eq!(reply.header("location"), target, "{next:?}");
        assert!(reply.header("set-cookie").contains("quiver_session="));
    }

    // The web app's call (JSON wanted) gets its answer and no redirect.
    let reply = app
        .send(server_fn_request(
            "login",
            None,
            &format!(
                "email=alice%40example.com&password={}&next=%2Fsettings",
                encoded(&pw)
            ),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.header("location").is_empty());
    assert!(reply.body.contains("alice@example.com"), "{}", reply.body);
}
