//! Mutual TLS client authentication (RFC 8705) against the real
//! authorization server served over https by a test CA: a CA-issued client
//! certificate (`tls_client_auth`), a self-signed one registered at the
//! provider (`self_signed_tls_client_auth`), certificate-bound access tokens
//! passed through, and the refusals.

use axum::http::StatusCode;
use serde_json::{Value, json};
use server::account::Role;

use crate::support::authserver::{AuthServer, CALLBACK, TEST_CA, tls_file};
use crate::support::{Auth, TestApp, json_request, request};

struct World {
    app: TestApp,
    auth: AuthServer,
    key: Option<Auth>,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::with_env(&[
            ("QUIVER_ALLOW_INSECURE_LOOPBACK", "true"),
            ("QUIVER_OUTBOUND_CA_FILE", TEST_CA),
        ])
        .await;
        let auth = AuthServer::launch(CALLBACK, &["--tls", "--max-lifetime-seconds", "600"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(auth.issuer.starts_with("https://"), "{}", auth.issuer);
        let pw = app.user("admin@example.com", Role::Admin).await;
        let cookie = app.login("admin@example.com", &pw).await;
        let (key, _) = app.api_key(&cookie, "robot").await;
        Self {
            app,
            auth,
            key: Some(Auth::Bearer(key)),
        }
    }

    async fn provider(&self, body: Value) -> crate::support::Reply {
        self.app
            .send(json_request(
                "POST",
                "/api/v1/providers",
                self.key.clone(),
                body,
            ))
            .await
    }

    async fn token(&self, provider: &str) -> Value {
        let r = self
            .app
            .send(json_request(
                "POST",
                "/api/v1/tokens",
                self.key.clone(),
                json!({"name": format!("mtls {provider}"), "provider_id": provider,
                       "flow": "client_credentials", "scope": "api:read"}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()
    }

    async fn access_token(&self, id: &str) -> String {
        let r = self
            .app
            .send(request(
                "GET",
                &format!("/api/v1/tokens/{id}/access-token"),
                self.key.clone(),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.json()["access_token"].as_str().unwrap().to_owned()
    }
}

fn base(auth: &AuthServer, name: &str, client_id: &str, method: &str) -> Value {
    json!({
        "name": name,
        "issuer": auth.issuer,
        "token_endpoint": auth.endpoint("token"),
        "client_id": client_id,
        "client_auth_method": method,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_issued_certificate_authenticates_and_binds_the_token() {
    let w = World::new().await;
    let mut body = base(&w.auth, "pki", "mtls-pki", "tls_client_auth");
    body["private_key_pem"] = json!(tls_file("client-key.pem"));
    body["certificate_pem"] = json!(tls_file("client.pem"));
    let r = w.provider(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let provider = r.json();
    assert_eq!(provider["client_auth_method"], "tls_client_auth");
    assert_eq!(
        provider["certificate"]["subject"],
        "CN=quiver-client, O=Quiver Tests"
    );
    let thumbprint = provider["certificate"]["x5t_s256"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = w.token(provider["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "active", "{t}");
    // No secret and no assertion travelled: the handshake proved the client.
    let sent = w.auth.last_token_request().await;
    assert_eq!(sent["body"]["client_id"], "mtls-pki", "{sent}");
    assert!(sent["body"]["client_secret"].is_null() && sent["body"]["client_assertion"].is_null());
    // The access token is bound to the certificate, and passed on as it came.
    let access = w.access_token(t["id"].as_str().unwrap()).await;
    let seen = w.auth.introspection(&access).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["cnf"]["x5t#S256"], thumbprint, "{seen}");
    assert!(!t.to_string().contains("BEGIN PRIVATE KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_registered_at_the_provider_authenticates() {
    let w = World::new().await;
    let mut body = base(&w.auth, "self", "mtls-self", "self_signed_tls_client_auth");
    body["generate_key"] = json!(true);
    body["generate_certificate"] = json!(true);
    let r = w.provider(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let provider = r.json();
    let id = provider["id"].as_str().unwrap();
    // Before the certificate is registered the provider refuses the client.
    let t = w.token(id).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["error"], "invalid_client", "{t}");
    // Registered as the provider's page shows it (the JWK carries x5c).
    let jwk = provider["public_jwk"].clone();
    assert!(jwk["x5c"].is_array(), "{jwk}");
    w.auth
        .admin(
            "PUT",
            "/clients/mtls-self/jwks",
            Some(json!({"keys": [jwk]})),
        )
        .await;
    let r = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{}/request", t["id"].as_str().unwrap()),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
    let access = w.access_token(t["id"].as_str().unwrap()).await;
    let seen = w.auth.introspection(&access).await;
    assert_eq!(
        seen["cnf"]["x5t#S256"], provider["certificate"]["x5t_s256"],
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_certificate_and_the_providers_client() {
    let w = World::new().await;
    // A self-signed certificate where a CA-issued one is wanted: refused
    // by the provider, in its words.
    let mut body = base(&w.auth, "wrong", "mtls-pki", "tls_client_auth");
    body["generate_key"] = json!(true);
    body["generate_certificate"] = json!(true);
    let r = w.provider(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = w.token(r.json()["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error"]["error"], "invalid_client", "{t}");
    // A key without its certificate.
    let mut body = base(&w.auth, "no cert", "mtls-pki", "tls_client_auth");
    body["generate_key"] = json!(true);
    let r = w.provider(body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "certificate_pem");
    // A certificate of another key.
    let mut body = base(&w.auth, "mismatch", "mtls-pki", "tls_client_auth");
    body["generate_key"] = json!(true);
    body["certificate_pem"] = json!(tls_file("client.pem"));
    let r = w.provider(body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "certificate_pem");
    // A token cannot bring its own client to the provider's certificate.
    let mut body = base(&w.auth, "pki", "mtls-pki", "tls_client_auth");
    body["private_key_pem"] = json!(tls_file("client-key.pem"));
    body["certificate_pem"] = json!(tls_file("client.pem"));
    let provider = w.provider(body).await.json();
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/tokens",
            w.key.clone(),
            json!({"name": "own", "provider_id": provider["id"], "flow": "client_credentials",
                   "use_default_keys": false, "client_id": "someone", "client_secret": "x"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "use_default_keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_and_revocation_present_the_same_certificate() {
    let w = World::new().await;
    let mut body = base(&w.auth, "pki renewing", "mtls-password", "tls_client_auth");
    body["private_key_pem"] = json!(tls_file("client-key.pem"));
    body["certificate_pem"] = json!(tls_file("client.pem"));
    body["revocation_endpoint"] = json!(w.auth.endpoint("revocation"));
    let r = w.provider(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let provider = r.json();
    let thumbprint = provider["certificate"]["x5t_s256"].clone();
    let r = w
        .app
        .send(json_request(
            "POST",
            "/api/v1/tokens",
            w.key.clone(),
            json!({"name": "alice over mtls", "provider_id": provider["id"], "flow": "password",
                   "username": "alice", "password": "wonderland", "scope": "api:read"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = r.json();
    assert_eq!(t["status"], "active", "{t}");
    assert_eq!(t["has_refresh_token"], true, "{t}");
    let id = t["id"].as_str().unwrap().to_owned();
    let first = w.access_token(&id).await;

    // A refresh: the refresh token goes once, authenticated by the
    // handshake alone, and the new access token is bound to the certificate.
    let refresh = w.app.token_secret(&id, "refresh_token").await.unwrap();
    w.auth.admin("POST", "/stats/reset", None).await;
    let r = w
        .app
        .send(request(
            "POST",
            &format!("/api/v1/tokens/{id}/refresh"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["status"], "active", "{}", r.body);
    let sent = w.auth.last_token_request().await;
    assert_eq!(sent["body"]["grant_type"], "refresh_token", "{sent}");
    assert_eq!(sent["body"]["client_id"], "mtls-password", "{sent}");
    assert!(sent["body"]["client_secret"].is_null() && sent["body"]["client_assertion"].is_null());
    let stats = w.auth.stats().await;
    assert_eq!(stats["tokenResults"]["refresh_token"]["ok"], 1, "{stats}");
    assert!(stats["tokenErrors"]["refresh_token"].is_null(), "{stats}");
    let renewed = w.access_token(&id).await;
    assert_ne!(renewed, first);
    let seen = w.auth.introspection(&renewed).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["cnf"]["x5t#S256"], thumbprint, "{seen}");

    // Deleting revokes at the provider over the same handshake: the
    // refresh token the provider holds for the client is dead.
    let refresh = w
        .app
        .token_secret(&id, "refresh_token")
        .await
        .unwrap_or(refresh);
    assert!(w.auth.introspect(&refresh).await, "alive before the delete");
    let r = w
        .app
        .send(request(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            w.key.clone(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["revocation"], "revoked", "{}", r.body);
    assert!(
        !w.auth.introspect(&refresh).await,
        "revoked at the provider"
    );
}
