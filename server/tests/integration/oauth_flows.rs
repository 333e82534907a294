//! Providers and tokens through the REST API against a real authorization
//! server (oidc-provider on loopback): each client authentication method,
//! Client Credentials, Password, refresh with rotation, reset, delete with
//! revocation, re-request after a failure, and provider faults.

use crate::support::authserver::AuthServer;
use crate::support::{Auth, TestApp, json_request, request};
use axum::http::StatusCode;
use serde_json::{Value, json};
use server::account::Role;

struct World {
    app: TestApp,
    auth: AuthServer,
    admin: Option<Auth>,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::with_env(&[("QUIVER_ALLOW_INSECURE_LOOPBACK", "true")]).await;
        let auth = AuthServer::start("http://127.0.0.1:3000/oauth/callback");
        let pw = app.user("admin@example.com", Role::Admin).await;
        let admin = Some(Auth::Cookie(app.login("admin@example.com", &pw).await));
        Self { app, auth, admin }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .app
            .send(json_request("POST", path, self.admin.clone(), body))
            .await;
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(Value::Null),
        )
    }

    /// `PATCH /api/v1/providers/{id}` as the admin; the whole reply.
    async fn patch_provider(&self, id: &str, body: Value) -> crate::support::Reply {
        self.app
            .send(json_request(
                "PATCH",
                &format!("/api/v1/providers/{id}"),
                self.admin.clone(),
                body,
            ))
            .await
    }

    async fn call(&self, method: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .app
            .send(request(method, path, self.admin.clone()))
            .await;
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(Value::Null),
        )
    }

    async fn provider(&self, name: &str, client: &str, method: &str) -> String {
        let (status, v) = self
            .post(
                "/api/v1/providers",
                self.auth.provider(name, client, method),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(
            v["has_client_secret"],
            self.auth.info["clientSecrets"][client].is_string()
        );
        assert!(v.get("client_secret").is_none(), "secrets are write-only");
        v["id"].as_str().unwrap().to_owned()
    }

    async fn token(&self, body: Value) -> Value {
        let (status, v) = self.post("/api/v1/tokens", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_fills_the_endpoints() {
    let w = World::new().await;
    let (status, v) = w
        .post(
            "/api/v1/providers/discover",
            json!({"issuer": w.auth.issuer}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["token_endpoint"], w.auth.endpoint("token"));
    assert_eq!(
        v["authorization_endpoint"],
        w.auth.endpoint("authorization")
    );
    assert_eq!(v["revocation_endpoint"], w.auth.endpoint("revocation"));
    assert_eq!(v["jwks_uri"], w.auth.endpoint("jwks"));
    assert_eq!(v["authorization_response_iss_parameter_supported"], true);
    let (status, v) = w
        .post(
            "/api/v1/providers/discover",
            json!({"issuer": "http://127.0.0.1:1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "issuer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_basic_and_post_authentication() {
    let w = World::new().await;
    for (client, method) in [
        ("cc-basic", "client_secret_basic"),
        ("cc-post", "client_secret_post"),
    ] {
        let provider = w.provider(client, client, method).await;
        let t = w
            .token(json!({"name": format!("{client} token"), "provider_id": provider, "flow": "client_credentials", "scope": "api:read", "resource": "https://api.example.com"}))
            .await;
        assert_eq!(t["status"], "active", "{t}");
        assert!(t["expires_at"].is_string());
        assert_eq!(t["token_type"], "Bearer");
        assert!(
            t.get("access_token").is_none(),
            "access tokens are never returned here"
        );
        let sent = w.auth.last_token_request().await;
        assert_eq!(sent["grantType"], "client_credentials");
        assert_eq!(sent["body"]["scope"], "api:read");
        assert_eq!(sent["body"]["resource"], "https://api.example.com");
        if method == "client_secret_basic" {
            assert_eq!(sent["basicAuth"]["clientId"], client);
            assert!(sent["body"].get("client_secret").is_none());
        } else {
            assert_eq!(sent["body"]["client_id"], client);
            assert!(sent["basicAuth"].is_null());
        }
        let access = w
            .app
            .token_secret(t["id"].as_str().unwrap(), "access_token")
            .await
            .unwrap();
        assert!(w.auth.introspect(&access).await);
    }
    // The provider grants less than asked: the granted scope is recorded.
    let provider = w
        .provider("narrow", "cc-basic", "client_secret_basic")
        .await;
    let t = w.token(json!({"name": "narrow", "provider_id": provider, "flow": "client_credentials", "scope": "api:read unknown-scope"})).await;
    assert_eq!(t["scope"], "api:read unknown-scope");
    assert_eq!(t["granted_scope"], "api:read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_signs_an_rfc_7523_assertion_and_allows_only_client_credentials() {
    let w = World::new().await;
    let mut body = w.auth.provider("pkjwt", "cc-pkjwt", "private_key_jwt");
    body["generate_key"] = json!(true);
    let (status, p) = w.post("/api/v1/providers", body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap();
    assert!(p["public_jwk"]["x"].is_string() && p["public_jwk"].get("d").is_none());
    // The JWKS Quiver serves is what gets registered at the provider.
    let r = w
        .app
        .send(request("GET", &format!("/oauth/jwks/{id}"), None))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let jwks = r.json();
    assert_eq!(jwks["keys"][0]["kid"], p["key_id"]);
    w.auth
        .admin("PUT", "/clients/cc-pkjwt/jwks", Some(jwks))
        .await;

    let t = w.token(json!({"name": "pk", "provider_id": id, "flow": "client_credentials", "scope": "api:read"})).await;
    assert_eq!(t["status"], "active", "{t}");
    let first = w.auth.last_token_request().await["clientAssertion"].clone();
    let claims = &first["payload"];
    assert_eq!(claims["iss"], "cc-pkjwt");
    assert_eq!(claims["sub"], "cc-pkjwt");
    assert_eq!(
        claims["aud"], w.auth.issuer,
        "aud is the issuer when the provider has one"
    );
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime > 0 && lifetime <= 300, "{lifetime}");
    assert_eq!(first["header"]["alg"], "ES256");
    let (_, again) = w
        .post(
            &format!("/api/v1/tokens/{}/request", t["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(again["status"], "active");
    let second = w.auth.last_token_request().await["clientAssertion"]["payload"].clone();
    assert_ne!(claims["jti"], second["jti"]);

    for flow in ["password", "authorization_code", "oidc_hybrid"] {
        let (status, v) = w
            .post("/api/v1/tokens", json!({"name": "x", "provider_id": id, "flow": flow, "username": "a", "password": "b"}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{flow}");
        assert_eq!(v["error"]["field"], "flow");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Client Credentials")
        );
    }
    // An unknown flow is refused with the accepted names.
    let (status, v) = w
        .post(
            "/api/v1/tokens",
            json!({"name": "x", "provider_id": id, "flow": "implicit"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        (&v["error"]["field"], &v["error"]["message"]),
        (
            &json!("flow"),
            &json!(
                "must be authorization_code, client_credentials, password, oidc_hybrid or device_code"
            )
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_flow_refresh_rotation_and_revocation_on_delete() {
    let w = World::new().await;
    let provider = w.provider("pw", "password", "client_secret_basic").await;
    let t = w
        .token(json!({"name": "alice", "provider_id": provider, "flow": "password", "username": "alice", "password": "wonderland", "scope": "openid api:read"}))
        .await;
    assert_eq!(t["status"], "active", "{t}");
    assert_eq!(t["has_password"], true);
    assert!(t.get("password").is_none());
    let id = t["id"].as_str().unwrap().to_owned();
    let old_refresh = w.app.token_secret(&id, "refresh_token").await.unwrap();
    let old_access = w.app.token_secret(&id, "access_token").await.unwrap();

    let (status, r) = w
        .post(&format!("/api/v1/tokens/{id}/refresh"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "active");
    let sent = w.auth.last_token_request().await;
    assert_eq!(sent["grantType"], "refresh_token");
    assert_eq!(
        sent["basicAuth"]["clientId"], "password",
        "refresh authenticates like the token request"
    );
    let new_refresh = w.app.token_secret(&id, "refresh_token").await.unwrap();
    let new_access = w.app.token_secret(&id, "access_token").await.unwrap();
    assert_ne!(
        old_refresh, new_refresh,
        "the rotated refresh token replaced the old one"
    );
    assert_ne!(old_access, new_access);
    assert!(w.auth.introspect(&new_access).await);

    let (status, d) = w.call("DELETE", &format!("/api/v1/tokens/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["revocation"], "revoked");
    assert!(
        !w.auth.introspect(&new_access).await,
        "revoked at the provider"
    );
    assert_eq!(
        w.call("GET", &format!("/api/v1/tokens/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_flow_gets_a_new_token_with_the_saved_credentials_when_refresh_fails() {
    let w = World::new().await;
    let provider = w.provider("pw", "password", "client_secret_basic").await;
    let t = w
        .token(json!({"name": "alice", "provider_id": provider, "flow": "password", "username": "alice", "password": "wonderland"}))
        .await;
    let id = t["id"].as_str().unwrap().to_owned();
    w.auth
        .fault(json!({"endpoint": "token", "mode": "status", "status": 400, "body": {"error": "invalid_grant"}, "grantType": "refresh_token"}))
        .await;
    let (_, r) = w
        .post(&format!("/api/v1/tokens/{id}/refresh"), json!({}))
        .await;
    assert_eq!(r["status"], "active", "{r}");
    assert_eq!(w.auth.last_token_request().await["grantType"], "password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_are_kept_on_the_token_and_it_can_be_requested_again() {
    let w = World::new().await;
    let provider = w.provider("cc", "cc-basic", "client_secret_basic").await;
    // Wrong secret: saved anyway, failed, with the provider's words.
    let t = w
        .token(json!({"name": "t", "provider_id": provider, "flow": "client_credentials", "use_default_keys": false, "client_id": "cc-basic", "client_secret": "wrong"}))
        .await;
    assert_eq!(t["status"], "failed");
    assert_eq!(t["error"]["error"], "invalid_client");
    assert_eq!(t["error"]["http_status"], 401);
    let id = t["id"].as_str().unwrap().to_owned();
    // Corrected, then requested again.
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/tokens/{id}"),
            w.admin.clone(),
            json!({"client_secret": "cc-basic-secret"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, again) = w
        .post(&format!("/api/v1/tokens/{id}/request"), json!({}))
        .await;
    assert_eq!(again["status"], "active", "{again}");
    assert!(again["error"].is_null());

    // A scope this client may not have.
    let bad_scope = w.token(json!({"name": "s", "provider_id": provider, "flow": "client_credentials", "scope": "openid"})).await;
    assert_eq!(bad_scope["status"], "failed");
    assert_eq!(bad_scope["error"]["error"], "invalid_scope");

    let pw_provider = w.provider("pw", "password", "client_secret_basic").await;
    let bad_pw = w
        .token(json!({"name": "p", "provider_id": pw_provider, "flow": "password", "username": "alice", "password": "nope"}))
        .await;
    assert_eq!(bad_pw["error"]["error"], "invalid_grant");
    assert_eq!(bad_pw["error"]["http_status"], 400);

    // request: false saves without asking the provider.
    let quiet = w.token(json!({"name": "later", "provider_id": provider, "flow": "client_credentials", "request": false})).await;
    assert_eq!(quiet["has_access_token"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_faults_never_lose_the_last_good_token() {
    let w = World::new().await;
    let mut p = w.auth.provider("cc", "cc-basic", "client_secret_basic");
    p["timeout_ms"] = json!(1500);
    p["connect_timeout_ms"] = json!(1000);
    let (_, p) = w.post("/api/v1/providers", p).await;
    let t = w
        .token(json!({"name": "t", "provider_id": p["id"], "flow": "client_credentials"}))
        .await;
    let id = t["id"].as_str().unwrap().to_owned();
    let good = w.app.token_secret(&id, "access_token").await.unwrap();
    for (fault, code, status) in [
        (
            json!({"mode": "status", "status": 500, "body": "<html>oops</html>"}),
            "server_error",
            Some(500),
        ),
        (
            json!({"mode": "status", "status": 503, "headers": {"Retry-After": "2"}, "body": {"error": "temporarily_unavailable"}}),
            "temporarily_unavailable",
            Some(503),
        ),
        (json!({"mode": "malformed"}), "invalid_response", Some(200)),
        (json!({"mode": "html"}), "invalid_response", Some(200)),
        (json!({"mode": "hang"}), "unreachable", None),
        (
            json!({"mode": "status", "status": 302, "headers": {"Location": "http://127.0.0.1:1/steal"}, "body": ""}),
            "invalid_response",
            Some(302),
        ),
        (
            json!({"mode": "status", "status": 200, "bodyRepeat": {"text": "x", "times": 1024 * 1024 + 10}}),
            "unreachable",
            None,
        ),
    ] {
        let mut f = fault.clone();
        f["endpoint"] = json!("token");
        w.auth.fault(f).await;
        let (answer, r) = w
            .post(&format!("/api/v1/tokens/{id}/refresh"), json!({}))
            .await;
        // An error status names the failure; the token comes with it.
        assert!(
            matches!(answer.as_u16(), 502 | 503),
            "{fault}: {answer} {r}"
        );
        assert!(
            r["error"]["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("provider_")),
            "{fault}: {r}"
        );
        let r = &r["token"];
        assert_eq!(r["status"], "failed", "{fault}: {r}");
        assert_eq!(r["error"]["error"], code, "{fault}: {r}");
        assert_eq!(
            r["error"]["http_status"],
            status.map_or(Value::Null, |s| json!(s)),
            "{fault}"
        );
        assert_eq!(
            w.app.token_secret(&id, "access_token").await.unwrap(),
            good,
            "last good token kept after {fault}"
        );
        w.auth.admin("POST", "/faults/release-hung", None).await;
        w.auth.clear_faults().await;
    }
    let (_, r) = w
        .post(&format!("/api/v1/tokens/{id}/refresh"), json!({}))
        .await;
    assert_eq!(r["status"], "active");
    assert!(r["error"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_revokes_the_old_token_and_issues_a_new_one_with_overrides() {
    let w = World::new().await;
    let provider = w.provider("cc", "cc-basic", "client_secret_basic").await;
    let t = w.token(json!({"name": "t", "provider_id": provider, "flow": "client_credentials", "scope": "api:read"})).await;
    let id = t["id"].as_str().unwrap().to_owned();
    let old = w.app.token_secret(&id, "access_token").await.unwrap();
    let (status, r) = w
        .post(
            &format!("/api/v1/tokens/{id}/reset"),
            json!({"scope": "api:write", "resource": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "active");
    assert_eq!(r["scope"], "api:write");
    let new = w.app.token_secret(&id, "access_token").await.unwrap();
    assert_ne!(old, new);
    assert!(!w.auth.introspect(&old).await, "the old token was revoked");
    assert!(w.auth.introspect(&new).await);
    // No body keeps everything.
    let r = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/reset"),
            w.admin.clone(),
        ))
        .await;
    assert_eq!(r.json()["scope"], "api:write");

    let pw = w.provider("pw", "password", "client_secret_basic").await;
    let p = w.token(json!({"name": "p", "provider_id": pw, "flow": "password", "username": "alice", "password": "wonderland"})).await;
    let (status, v) = w
        .post(
            &format!("/api/v1/tokens/{}/reset", p["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_reports_revocation_it_could_not_do_and_deletes_anyway() {
    let w = World::new().await;
    let mut body = w
        .auth
        .provider("no-revoke", "cc-basic", "client_secret_basic");
    body["revocation_endpoint"] = json!("");
    let (_, p) = w.post("/api/v1/providers", body).await;
    let t = w
        .token(json!({"name": "t", "provider_id": p["id"], "flow": "client_credentials"}))
        .await;
    let (_, d) = w
        .call(
            "DELETE",
            &format!("/api/v1/tokens/{}", t["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(d["revocation"], "not_supported");

    let provider = w.provider("cc", "cc-basic", "client_secret_basic").await;
    let t = w
        .token(json!({"name": "t", "provider_id": provider, "flow": "client_credentials"}))
        .await;
    w.auth
        .fault(json!({"endpoint": "revocation", "mode": "status", "status": 500, "body": "down"}))
        .await;
    let (status, d) = w
        .call(
            "DELETE",
            &format!("/api/v1/tokens/{}", t["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["revocation"], "failed");
    assert!(
        d["revocation_error"].as_str().unwrap().contains("500"),
        "{d}"
    );
    assert_eq!(
        w.call(
            "GET",
            &format!("/api/v1/tokens/{}", t["id"].as_str().unwrap())
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_rules_urls_origins_and_the_delete_guard() {
    let w = World::new().await;
    let base = w.auth.provider("rules", "cc-basic", "client_secret_basic");
    for (field, value, needle) in [
        (
            "token_endpoint",
            "https://169.254.169.254/token",
            "metadata",
        ),
        (
            "token_endpoint",
            "https://[::ffff:169.254.169.254]/token",
            "metadata",
        ),
        ("token_endpoint", "ftp://example.com/token", "https"),
        ("authorization_endpoint", "not a url", "not a URL"),
        ("client_auth_method", "magic", "client_secret_basic"),
    ] {
        let mut b = base.clone();
        b[field] = json!(value);
        let (status, v) = w.post("/api/v1/providers", b).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}: {v}"
        );
        assert_eq!(v["error"]["field"], field);
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    let mut b = base.clone();
    b["client_auth_method"] = json!("private_key_jwt");
    let (status, v) = w.post("/api/v1/providers", b).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "private_key_pem");

    let id = w.provider("rules", "cc-basic", "client_secret_basic").await;
    let (status, _) = w.post("/api/v1/providers", base.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "names are unique");
    // Same origin keeps the secret; another origin drops it unless given again.
    let patch = |body: Value| {
        json_request(
            "PATCH",
            &format!("/api/v1/providers/{id}"),
            w.admin.clone(),
            body,
        )
    };
    let same = w
        .app
        .send(patch(
            json!({"token_endpoint": format!("{}/token?x=1", w.auth.issuer)}),
        ))
        .await
        .json();
    assert_eq!(same["has_client_secret"], true, "{same}");
    let moved = w
        .app
        .send(patch(json!({"token_endpoint": "http://localhost:9/token"})))
        .await
        .json();
    assert_eq!(moved["has_client_secret"], false, "{moved}");
    let again = w
        .app
        .send(patch(
            json!({"token_endpoint": "http://127.0.0.2:9/token", "client_secret": "new"}),
        ))
        .await
        .json();
    assert_eq!(again["has_client_secret"], true);
    w.app
        .send(patch(
            json!({"token_endpoint": w.auth.endpoint("token"), "client_secret": "cc-basic-secret"}),
        ))
        .await;

    let t = w
        .token(json!({"name": "t", "provider_id": id, "flow": "client_credentials"}))
        .await;
    let (status, v) = w.call("DELETE", &format!("/api/v1/providers/{id}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 tokens use this provider")
    );
    let (status, v) = w
        .call("DELETE", &format!("/api/v1/providers/{id}?force=true"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["deleted_tokens"], 1);
    assert_eq!(v["revocations"][0]["revocation"], "revoked");
    assert_eq!(
        w.call(
            "GET",
            &format!("/api/v1/tokens/{}", t["id"].as_str().unwrap())
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_and_act_on_their_own_tokens_only() {
    let w = World::new().await;
    let provider = w.provider("cc", "cc-basic", "client_secret_basic").await;
    let pa = w.app.user("a@example.com", Role::User).await;
    let pb = w.app.user("b@example.com", Role::User).await;
    let a = Some(Auth::Cookie(w.app.login("a@example.com", &pa).await));
    let b = Some(Auth::Cookie(w.app.login("b@example.com", &pb).await));
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/tokens",
            a.clone(),
            json!({"name": "mine", "provider_id": provider, "flow": "client_credentials"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["owner_email"], "a@example.com");
    for (method, path) in [
        ("GET", format!("/api/v1/tokens/{id}")),
        ("DELETE", format!("/api/v1/tokens/{id}")),
        ("POST", format!("/api/v1/tokens/{id}/refresh")),
        ("POST", format!("/api/v1/tokens/{id}/request")),
        ("POST", format!("/api/v1/tokens/{id}/reset")),
    ] {
        let r = w.app.send(request(method, &path, b.clone())).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path} as another user"
        );
    }
    let list_b = w
        .app
        .send(request("GET", "/api/v1/tokens", b.clone()))
        .await
        .json();
    assert_eq!(list_b["total"], 0);
    let list_a = w
        .app
        .send(request("GET", "/api/v1/tokens", a.clone()))
        .await
        .json();
    assert_eq!(list_a["total"], 1);
    let list_admin = w.call("GET", "/api/v1/tokens").await.1;
    assert_eq!(list_admin["total"], 1, "admins see every token");
    // Users can read providers (to pick one) but not change them.
    assert_eq!(
        w.app
            .send(request("GET", "/api/v1/providers", b.clone()))
            .await
            .status,
        StatusCode::OK
    );
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/providers",
            b.clone(),
            w.auth.provider("x", "cc-basic", "client_secret_basic"),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w
        .app
        .send(request(
            "DELETE",
            &format!("/api/v1/providers/{provider}"),
            b.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_list_filters_and_pages() {
    let w = World::new().await;
    let cc = w.provider("cc", "cc-basic", "client_secret_basic").await;
    for i in 0..5 {
        w.token(
            json!({"name": format!("alpha {i}"), "provider_id": cc, "flow": "client_credentials"}),
        )
        .await;
    }
    w.token(
        json!({"name": "beta", "provider_id": cc, "flow": "client_credentials", "scope": "openid"}),
    )
    .await;
    let page = w
        .call("GET", "/api/v1/tokens?limit=2&offset=0&q=ALPHA")
        .await
        .1;
    assert_eq!(page["total"], 5);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["name"], "alpha 0");
    let failed = w.call("GET", "/api/v1/tokens?status=failed").await.1;
    assert_eq!(failed["total"], 1);
    assert_eq!(failed["items"][0]["name"], "beta");
    let active = w
        .call(
            "GET",
            &format!("/api/v1/tokens?status=active&provider_id={cc}&flow=client_credentials"),
        )
        .await
        .1;
    assert_eq!(active["total"], 5);
    let (status, v) = w.call("GET", "/api/v1/tokens?status=weird").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_rsa_key_signs_rs256_and_ps256_assertions() {
    let w = World::new().await;
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl makes the test key");
    let pem = String::from_utf8(out.stdout).unwrap();
    assert!(pem.contains("BEGIN PRIVATE KEY"));
    for alg in ["RS256", "PS256"] {
        let mut body = w
            .auth
            .provider(&format!("rsa {alg}"), "cc-pkjwt", "private_key_jwt");
        body["private_key_pem"] = json!(pem);
        body["signing_alg"] = json!(alg);
        body["key_id"] = json!(format!("rsa-{alg}"));
        let (status, p) = w.post("/api/v1/providers", body).await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
        assert_eq!(p["public_jwk"]["kty"], "RSA");
        assert!(p["public_jwk"].get("d").is_none() && p["public_jwk"].get("p").is_none());
        assert_eq!(p["public_jwk"]["alg"], alg);
        let jwks = w
            .app
            .send(request(
                "GET",
                &format!("/oauth/jwks/{}", p["id"].as_str().unwrap()),
                None,
            ))
            .await
            .json();
        w.auth
            .admin("PUT", "/clients/cc-pkjwt/jwks", Some(jwks))
            .await;
        let t = w.token(json!({"name": alg, "provider_id": p["id"], "flow": "client_credentials", "scope": "api:read"})).await;
        assert_eq!(t["status"], "active", "{alg}: {t}");
        let assertion = w.auth.last_token_request().await["clientAssertion"].clone();
        assert_eq!(assertion["header"]["alg"], alg);
        assert_eq!(assertion["header"]["kid"], format!("rsa-{alg}"));
    }
    // A PKCS#1 PEM is refused with how to convert it.
    let mut body = w.auth.provider("pkcs1", "cc-pkjwt", "private_key_jwt");
    body["private_key_pem"] =
        json!("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n");
    let (status, v) = w.post("/api/v1/providers", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "private_key_pem");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openssl pkcs8")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_registered_under_its_thumbprint_works_without_a_key_id() {
    let w = World::new().await;
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .output()
        .expect("openssl makes the test key");
    let pem = String::from_utf8(out.stdout).unwrap();
    let mut body = w.auth.provider("no kid", "cc-pkjwt", "private_key_jwt");
    body["private_key_pem"] = json!(pem);
    let (status, p) = w.post("/api/v1/providers", body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let key_id = p["key_id"].as_str().unwrap().to_owned();
    assert_eq!(key_id.len(), 43, "the whole SHA-256 thumbprint: {key_id}");
    // Registered the way an admin pastes a public key into most providers:
    // without `kid`, so the provider files it under the thumbprint it
    // computes itself (the test server uses `jose`).
    let mut public = p["public_jwk"].clone();
    public.as_object_mut().unwrap().remove("kid");
    let registered = w
        .auth
        .admin(
            "PUT",
            "/clients/cc-pkjwt/jwks",
            Some(json!({"keys": [public]})),
        )
        .await;
    assert_eq!(registered["jwks"]["keys"][0]["kid"], key_id.as_str());
    let t = w.token(json!({"name": "thumbprint", "provider_id": p["id"], "flow": "client_credentials", "scope": "api:read"})).await;
    assert_eq!(t["status"], "active", "{t}");
    let assertion = w.auth.last_token_request().await["clientAssertion"].clone();
    assert_eq!(assertion["header"]["kid"], key_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_list_filters_expiring_soon_and_sorts() {
    let w = World::new().await;
    let p = w.provider("list", "cc-basic", "client_secret_basic").await;
    for name in ["b-active", "a-active"] {
        w.token(json!({"name": name, "provider_id": p, "flow": "client_credentials"}))
            .await;
    }
    w.token(json!({"name": "c-saved", "provider_id": p, "flow": "client_credentials", "request": false}))
        .await;
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, v) = w.call("GET", "/api/v1/tokens?sort=name&order=desc").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(names(&v), ["c-saved", "b-active", "a-active"]);
    let (_, v) = w.call("GET", "/api/v1/tokens?status=expiring_soon").await;
    assert_eq!(v["total"], 0, "{v}");
    // Fifty-five minutes later the one-hour tokens expire within ten.
    w.app.clock.advance(chrono::Duration::minutes(55));
    let (_, v) = w
        .call("GET", "/api/v1/tokens?status=expiring_soon&sort=name")
        .await;
    assert_eq!(names(&v), ["a-active", "b-active"]);
    let (_, v) = w.call("GET", "/api/v1/tokens?status=active").await;
    assert_eq!(v["total"], 2, "expiring soon is still active: {v}");
    w.app.clock.advance(chrono::Duration::minutes(10));
    let (_, v) = w.call("GET", "/api/v1/tokens?status=expiring_soon").await;
    assert_eq!(v["total"], 0, "{v}");
    let (_, v) = w.call("GET", "/api/v1/tokens?status=expired").await;
    assert_eq!(v["total"], 2, "{v}");
    for (query, field) in [
        ("sort=secret", "sort"),
        ("order=up", "order"),
        ("status=soon", "status"),
    ] {
        let (s, v) = w.call("GET", &format!("/api/v1/tokens?{query}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
}

/// Runs openssl with `input` on standard input; its standard output.
fn openssl(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A P-256 key and a certificate for it valid `days`, both made by openssl.
fn key_and_certificate(days: u32) -> (String, String) {
    let key = openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.pem");
    std::fs::write(&file, &key).unwrap();
    let days = days.to_string();
    let cert = openssl(
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            file.to_str().unwrap(),
            "-subj",
            "/CN=quiver.example",
            "-days",
            &days,
        ],
        "",
    );
    (key, cert)
}

/// The fingerprint openssl computes, base64url as in a JOSE header.
fn fingerprint(cert: &str, algorithm: &str) -> String {
    use base64::Engine;
    let line = openssl(&["x509", "-noout", "-fingerprint", algorithm], cert);
    let hex = line.trim().rsplit('=').next().unwrap().replace(':', "");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(hex).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_puts_its_thumbprints_in_every_assertion() {
    let w = World::new().await;
    let mut body = w.auth.provider("entra-like", "cc-pkjwt", "private_key_jwt");
    body["generate_key"] = json!(true);
    body["generate_certificate"] = json!(true);
    body["send_sha1_thumbprint"] = json!(true);
    let (status, p) = w.post("/api/v1/providers", body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    let cert = p["certificate"].clone();
    assert_eq!(cert["subject"], "CN=Quiver entra-like", "{cert}");
    let pem = cert["pem"].as_str().unwrap();
    assert_eq!(cert["x5t_s256"], fingerprint(pem, "-sha256").as_str());
    assert_eq!(cert["x5t"], fingerprint(pem, "-sha1").as_str());
    let not_after =
        chrono::DateTime::parse_from_rfc3339(cert["not_after"].as_str().unwrap()).unwrap();
    let days = (not_after.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((729..=730).contains(&days), "{days}");
    // The JWKS carries the certificate too.
    let jwks = w
        .app
        .send(request("GET", &format!("/oauth/jwks/{id}"), None))
        .await
        .json();
    assert_eq!(jwks["keys"][0]["x5t#S256"], cert["x5t_s256"]);
    assert!(jwks["keys"][0]["x5c"][0].is_string());
    w.auth
        .admin("PUT", "/clients/cc-pkjwt/jwks", Some(jwks))
        .await;

    let t = w.token(json!({"name": "with cert", "provider_id": id, "flow": "client_credentials", "scope": "api:read"})).await;
    assert_eq!(t["status"], "active", "{t}");
    let header = w.auth.last_token_request().await["clientAssertion"]["header"].clone();
    assert_eq!(
        header["x5t#S256"],
        fingerprint(pem, "-sha256").as_str(),
        "{header}"
    );
    assert_eq!(
        header["x5t"],
        fingerprint(pem, "-sha1").as_str(),
        "{header}"
    );

    // Without the SHA-1 switch, only x5t#S256.
    let r = w
        .patch_provider(&id, json!({"send_sha1_thumbprint": false}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["certificate"], cert, "the certificate stays");
    let (_, again) = w
        .post(
            &format!("/api/v1/tokens/{}/request", t["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(again["status"], "active", "{again}");
    let header = w.auth.last_token_request().await["clientAssertion"]["header"].clone();
    assert_eq!(header["x5t#S256"], cert["x5t_s256"], "{header}");
    assert!(header.get("x5t").is_none(), "{header}");

    // A certificate for another key is refused, naming the field.
    let (_, other) = key_and_certificate(30);
    let r = w
        .patch_provider(&id, json!({"certificate_pem": other}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["field"], "certificate_pem");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another key"),
        "{v}"
    );
    // A new key drops the old key's certificate.
    let r = w.patch_provider(&id, json!({"generate_key": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["certificate"], Value::Null);
    // An uploaded key with the certificate made for it elsewhere is taken.
    let (key, cert_pem) = key_and_certificate(90);
    let r = w
        .patch_provider(
            &id,
            json!({"private_key_pem": key, "certificate_pem": cert_pem}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["certificate"]["subject"], "CN=quiver.example");
    assert_eq!(
        r.json()["certificate"]["x5t_s256"],
        fingerprint(&cert_pem, "-sha256").as_str()
    );
    // And removed with an empty one.
    let r = w.patch_provider(&id, json!({"certificate_pem": ""})).await;
    assert_eq!(r.json()["certificate"], Value::Null);
    // Without a key there is nothing to certify.
    let mut body = w.auth.provider("no key", "cc-basic", "client_secret_basic");
    body["generate_certificate"] = json!(true);
    let (status, v) = w.post("/api/v1/providers", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "generate_certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_about_to_expire_is_announced_once() {
    let w = World::new().await;
    let (key, cert) = key_and_certificate(40);
    let mut body = w.auth.provider("expiring", "cc-pkjwt", "private_key_jwt");
    body["private_key_pem"] = json!(key.clone());
    body["certificate_pem"] = json!(cert);
    let (status, p) = w.post("/api/v1/providers", body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    let engine = &w.app.state.instance.tokens;
    let announce = || {
        engine
            .providers
            .announce_expiring_certificates(&engine.events)
    };
    // Read from storage: the admin's session does not outlive the clock's jump.
    let certificate_events = || async {
        use sea_orm::{EntityTrait, QueryOrder};
        server::db::entity::event::Entity::find()
            .order_by_desc(server::db::entity::event::Column::CreatedAt)
            .all(&w.app.state.instance.db)
            .await
            .unwrap()
            .into_iter()
            .map(|e| serde_json::to_value(server::events::EventView::from(e)).unwrap())
            .filter(|e| e["kind"] == "provider.certificate_expiring")
            .collect::<Vec<_>>()
    };
    assert_eq!(announce().await, 0, "40 days ahead is not yet");
    w.app.clock.advance(chrono::Duration::days(11));
    assert_eq!(announce().await, 1, "29 days ahead is");
    assert_eq!(announce().await, 0, "once");
    let events = certificate_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["provider_id"], id.as_str());
    assert_eq!(
        events[0]["detail"]["x5t#S256"],
        p["certificate"]["x5t_s256"]
    );
    // The certificate is dated by the real clock, a moment after the fake
    // one started: 29 days and some seconds count as 30 on a slow machine.
    let message = events[0]["message"].as_str().unwrap();
    assert!(
        message.contains("expires in 29 days") || message.contains("expires in 30 days"),
        "{}",
        events[0]
    );
    // A new certificate for the same key starts over.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.pem");
    std::fs::write(&file, key.as_str()).unwrap();
    let renewed = openssl(
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            file.to_str().unwrap(),
            "-subj",
            "/CN=renewed",
            "-days",
            "5",
        ],
        "",
    );
    // Signed in again: the first session did not outlive the clock's jump.
    let pw = w.app.user("certs@example.com", Role::Admin).await;
    let admin = Auth::Cookie(w.app.login("certs@example.com", &pw).await);
    let r = w
        .app
        .send(json_request(
            "PATCH",
            &format!("/api/v1/providers/{id}"),
            Some(admin),
            json!({"certificate_pem": renewed}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Its real validity ends 5 days from the real now: expired by the clock.
    assert_eq!(announce().await, 1);
    let events = certificate_events().await;
    assert_eq!(events.len(), 2);
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("expired on"),
        "{}",
        events[0]
    );
}
