//! A Quiver instance wired to a real authorization server, shared by the
//! token tests.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;
use server::account::Role;

use super::authserver::AuthServer;
use super::{Auth, TestApp, json_request, request};

/// A Quiver instance with a user's API key, an admin, and providers `cc`,
/// `pw` and `code` on a fresh authorization server.
pub struct World {
    pub app: Arc<TestApp>,
    pub auth: AuthServer,
    pub key: Option<Auth>,
    pub admin: Auth,
}

/// Provider URLs on loopback are allowed.
pub const ENV: &[(&str, &str)] = &[("QUIVER_ALLOW_INSECURE_LOOPBACK", "true")];

impl World {
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// With extra settings.
    pub async fn with_env(extra: &[(&str, &str)]) -> Self {
        let mut env = ENV.to_vec();
        env.extend_from_slice(extra);
        let app = TestApp::with_env(&env).await;
        let auth = AuthServer::start("http://127.0.0.1:3000/oauth/callback");
        let pw = app.user("robot@example.com", Role::User).await;
        let cookie = app.login("robot@example.com", &pw).await;
        let (key, _) = app.api_key(&cookie, "robot").await;
        let admin_pw = app.user("admin@example.com", Role::Admin).await;
        let admin = app.login("admin@example.com", &admin_pw).await;
        for (name, client) in [
            ("cc", "cc-basic"),
            ("pw", "password"),
            ("code", "code-basic"),
        ] {
            let r = app
                .send(json_request(
                    "POST",
                    "/api/v1/providers",
                    Some(Auth::Cookie(admin.clone())),
                    auth.provider(name, client, "client_secret_basic"),
                ))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
        Self {
            app: Arc::new(app),
            auth,
            key: Some(Auth::Bearer(key)),
            admin: Auth::Cookie(admin),
        }
    }

    /// The id of a provider by name.
    pub async fn provider_id(&self, name: &str) -> String {
        let list = self
            .app
            .send(request("GET", "/api/v1/providers", self.key.clone()))
            .await
            .json();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a token as the user and returns its id.
    pub async fn token(&self, body: Value) -> String {
        let r = self
            .app
            .send(json_request(
                "POST",
                "/api/v1/tokens",
                self.key.clone(),
                body,
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_owned()
    }
}
