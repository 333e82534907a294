//! The quirks server (end2end/quirks/server.mjs) on loopback: a token
//! endpoint that answers in the shapes of the catalogue's providers.
//! Killed when the value drops (and stops by itself when this process
//! dies: it watches its standard input).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use server::account::Role;

use super::{Auth, TestApp, json_request, request};

pub struct QuirksServer {
    pub url: String,
    child: Child,
    _stdin: ChildStdin,
}

impl Drop for QuirksServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a reqwest client")
}

impl QuirksServer {
    pub fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/quirks/server.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts the quirks server");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the quirks server starts");
        let ready: Value = serde_json::from_str(
            line.strip_prefix("QUIRKS_READY ")
                .unwrap_or_else(|| panic!("quirks server: {line:?}"))
                .trim(),
        )
        .unwrap();
        Self {
            url: ready["url"].as_str().unwrap().to_owned(),
            child,
            _stdin: stdin,
        }
    }

    /// Registers how `name` answers.
    pub async fn shape(&self, name: &str, shape: Value) {
        let r = client()
            .post(format!("{}/__shape/{name}", self.url))
            .json(&shape)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Every request it received, oldest first.
    pub async fn requests(&self) -> Vec<Value> {
        let v: Value = client()
            .get(format!("{}/__requests", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    /// The requests of one shape and action (`token`, `authorize`).
    pub async fn requests_of(&self, name: &str, action: &str) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r["shape"] == name && r["action"] == action)
            .collect()
    }

    /// `{"invalidGrant", "reuse", "issued"}`.
    pub async fn stats(&self) -> Value {
        client()
            .get(format!("{}/__stats", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Follows an authorization link as a browser would: the redirect
    /// back to Quiver's callback.
    pub async fn authorize(&self, auth_url: &str) -> String {
        let r = client().get(auth_url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302, "{auth_url}");
        r.headers()["location"].to_str().unwrap().to_owned()
    }
}

const CALLBACK_ORIGIN: &str = "http://127.0.0.1:3000";

/// An instance with an admin's API key, and the quirks server.
pub struct QuirksWorld {
    pub app: TestApp,
    pub quirks: QuirksServer,
    pub key: Option<Auth>,
}

impl QuirksWorld {
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// With settings beside the loopback allowance.
    pub async fn with_env(extra: &[(&str, &str)]) -> Self {
        let mut env = vec![("QUIVER_ALLOW_INSECURE_LOOPBACK", "true")];
        env.extend_from_slice(extra);
        let app = TestApp::with_env(&env).await;
        let pw = app.user("admin@example.com", Role::Admin).await;
        let cookie = app.login("admin@example.com", &pw).await;
        let (key, _) = app.api_key(&cookie, "robot").await;
        Self {
            app,
            quirks: QuirksServer::start(),
            key: Some(Auth::Bearer(key)),
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> crate::support::Reply {
        self.app
            .send(json_request("POST", path, self.key.clone(), body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> crate::support::Reply {
        self.app
            .send(json_request("PATCH", path, self.key.clone(), body))
            .await
    }

    pub async fn delete(&self, path: &str) -> crate::support::Reply {
        self.app
            .send(request("DELETE", path, self.key.clone()))
            .await
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.app.send(request("GET", path, self.key.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r.json()
    }

    /// Creates an Authorization Code token, authorizes it at the quirks
    /// server and answers the token's view.
    pub async fn authorized_token(&self, provider: &str, name: &str) -> Value {
        let r = self
            .post(
                "/api/v1/tokens",
                json!({"name": name, "provider_id": provider, "flow": "authorization_code"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let t = r.json();
        let location = self
            .quirks
            .authorize(t["auth_url"].as_str().expect("an auth link"))
            .await;
        let path = location
            .strip_prefix(CALLBACK_ORIGIN)
            .unwrap_or_else(|| panic!("back to Quiver: {location}"));
        let page = self.app.send(request("GET", path, None)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        self.get(&format!("/api/v1/tokens/{}", t["id"].as_str().unwrap()))
            .await
    }

    pub async fn access_token(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/tokens/{id}/access-token")).await
    }

    pub async fn refresh(&self, id: &str) -> Value {
        let r = self
            .post(&format!("/api/v1/tokens/{id}/refresh"), json!({}))
            .await;
        r.json()
    }
}

/// A provider outside the catalogue with the quirks set by hand.
pub async fn hand_made(w: &QuirksWorld, shape: &str, settings: Value) -> String {
    let base = format!("{}/{shape}", w.quirks.url);
    let mut body = json!({
        "name": shape,
        "client_id": "hand",
        "client_secret": "s3cret",
        "client_auth_method": "client_secret_basic",
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "default_scope": "read write",
    });
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let r = w.post("/api/v1/providers", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_owned()
}
