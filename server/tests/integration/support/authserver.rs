//! The real authorization server (end2end/authserver, oidc-provider) on
//! loopback, started per test and stopped when the fixture drops.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::{Value, json};

/// A client for the server's admin API that never waits forever.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

pub struct AuthServer {
    pub issuer: String,
    pub info: Value,
    child: Child,
    _stdin: ChildStdin,
}

impl AuthServer {
    /// Starts the server; `redirect_uri` is registered for the interactive clients.
    pub fn start(redirect_uri: &str) -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../end2end/authserver/server.js"
        );
        let mut child = Command::new("node")
            .arg(script)
            .args([
                "--port",
                "0",
                "--redirect-uri",
                redirect_uri,
                "--max-lifetime-seconds",
                "600",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed (./dev test installs the npm packages)");
        let stdin = child.stdin.take().unwrap();
        // Read the ready line on a thread, so that a server that never
        // starts fails the test instead of blocking it.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("the authorization server did not start within 30 s");
        };
        let json = line
            .strip_prefix("AUTHSERVER_READY ")
            .unwrap_or_else(|| panic!("the authorization server did not start: {line:?}"));
        let info: Value = serde_json::from_str(json.trim()).unwrap();
        Self {
            issuer: info["issuer"].as_str().unwrap().to_owned(),
            info,
            child,
            _stdin: stdin,
        }
    }

    pub fn endpoint(&self, name: &str) -> String {
        self.info["endpoints"][name].as_str().unwrap().to_owned()
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let client = client();
        let mut req = client.request(
            method.parse().unwrap(),
            format!("{}/__admin{path}", self.issuer),
        );
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status.is_success(),
            "admin {method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn fault(&self, fault: Value) {
        self.admin("POST", "/faults", Some(fault)).await;
    }

    pub async fn clear_faults(&self) {
        self.admin("DELETE", "/faults", None).await;
    }

    pub async fn last_token_request(&self) -> Value {
        self.admin("GET", "/last-token-request", None).await
    }

    pub async fn stats(&self) -> Value {
        self.admin("GET", "/stats", None).await
    }

    /// Whether the provider still considers a token active.
    pub async fn introspect(&self, token: &str) -> bool {
        let response = client()
            .post(self.endpoint("introspection"))
            .basic_auth("cc-basic", Some("cc-basic-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        let v: Value = response.json().await.unwrap();
        v["active"].as_bool().unwrap_or(false)
    }

    /// The provider JSON for a client of this server.
    pub fn provider(&self, name: &str, client_id: &str, method: &str) -> Value {
        let secret = self.info["clientSecrets"][client_id].clone();
        json!({
            "name": name,
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorization"),
            "token_endpoint": self.endpoint("token"),
            "revocation_endpoint": self.endpoint("revocation"),
            "jwks_uri": self.endpoint("jwks"),
            "client_id": client_id,
            "client_secret": secret,
            "client_auth_method": method,
        })
    }
}

/// Signs `claims` as an id_token with the test server's own ES256 key
/// (`end2end/authserver/test-signing-keys.json`, published in its JWKS), as
/// a provider whose answers were tampered with, or a mixed-up one, would.
pub fn sign_id_token(claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../end2end/authserver/test-signing-keys.json"
    );
    let keys: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "EC")
        .unwrap();
    let part = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let mut public = vec![4u8];
    public.extend(part("x"));
    public.extend(part("y"));
    let rng = ring::rand::SystemRandom::new();
    let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &part("d"),
        &public,
        &rng,
    )
    .unwrap();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": jwk["kid"]});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = pair.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// The claims of a JWT, unverified (for tests that build on a real one).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
