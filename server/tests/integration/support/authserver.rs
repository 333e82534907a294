//! The real authorization server (end2end/authserver, oidc-provider) on
//! loopback: started, waited for until it reports its address, and killed
//! when the value drops (it also stops by itself when this process dies: it
//! watches its standard input).
//!
//! Shared by the integration tests and the benchmarks (`server/benches`
//! include this file): [`AuthServer::launch`] and [`AuthServer::try_admin`]
//! report failures as errors for a benchmark to print, the other calls
//! panic as a test should.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The redirect URI registered for the interactive clients when a test
/// needs no other.
pub const CALLBACK: &str = "http://127.0.0.1:3000/oauth/callback";

/// The test CA (end2end/authserver/tls): it issued the server's certificate
/// for `--tls` and the client certificate of `mtls-pki`.
pub const TEST_CA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../end2end/authserver/tls/ca.pem"
);

/// A file of the test PKI, as text.
pub fn tls_file(name: &str) -> String {
    let path = format!(
        "{}/../end2end/authserver/tls/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Longest the server may take to report that it is ready.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A client for the server's admin API that never waits forever and goes
/// straight to loopback, whatever the proxy variables say.
fn client() -> reqwest::Client {
    // Trusting the test CA too: the server serves https with --tls.
    let ca = std::fs::read(TEST_CA).expect("the test CA certificate");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("a PEM certificate"))
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a reqwest client")
}

pub struct AuthServer {
    pub issuer: String,
    /// The ready line's JSON: endpoints, client secrets.
    pub info: Value,
    child: Child,
    _stdin: ChildStdin,
}

impl AuthServer {
    /// Starts the server for a test; `redirect_uri` is registered for the
    /// interactive clients.
    pub fn start(redirect_uri: &str) -> Self {
        Self::launch(redirect_uri, &["--max-lifetime-seconds", "600"])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the server on a free port with `redirect_uri` registered and
    /// `options` (`--access-token-ttl 3600`, …) given to it, and waits
    /// until it reports its address.
    pub fn launch(redirect_uri: &str, options: &[&str]) -> Result<Self, String> {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../end2end/authserver/server.js"
        );
        let mut child = Command::new("node")
            .arg(script)
            .args(["--port", "0", "--redirect-uri", redirect_uri])
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start node (./dev setup installs it and the npm packages): {e}")
            })?;
        let stopped = |child: &mut Child, problem: String| {
            let _ = child.kill();
            let _ = child.wait();
            Err(problem)
        };
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return stopped(&mut child, "the authorization server has no pipes".into());
        };
        // Read the ready line on a thread, so that a server that never
        // starts fails the run instead of blocking it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let Ok(line) = rx.recv_timeout(START_DEADLINE) else {
            return stopped(
                &mut child,
                format!("the authorization server did not start within {START_DEADLINE:?}"),
            );
        };
        let Some(ready) = line.strip_prefix("AUTHSERVER_READY ") else {
            return stopped(
                &mut child,
                format!("the authorization server did not start: {line:?}"),
            );
        };
        let info: Value = match serde_json::from_str(ready.trim()) {
            Ok(info) => info,
            Err(e) => return stopped(&mut child, format!("its ready line {ready:?}: {e}")),
        };
        let Some(issuer) = info["issuer"].as_str().map(str::to_owned) else {
            return stopped(&mut child, format!("no issuer in its ready line {ready:?}"));
        };
        Ok(Self {
            issuer,
            info,
            child,
            _stdin: stdin,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The URL of one of its endpoints (`token`, `authorization`, …).
    pub fn endpoint(&self, name: &str) -> String {
        self.info["endpoints"][name]
            .as_str()
            .unwrap_or_else(|| panic!("the authorization server has no {name} endpoint"))
            .to_owned()
    }

    /// The secret of one of its clients.
    pub fn client_secret(&self, client_id: &str) -> String {
        self.info["clientSecrets"][client_id]
            .as_str()
            .unwrap_or_else(|| panic!("the authorization server has no secret for {client_id}"))
            .to_owned()
    }

    /// A call to its admin API (`/__admin…`): the answer's JSON (null when
    /// it is not JSON), or what went wrong.
    pub async fn try_admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let method: reqwest::Method = method.parse().map_err(|_| format!("method {method}"))?;
        let mut request =
            client().request(method.clone(), format!("{}/__admin{path}", self.issuer));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("authserver admin {method} {path}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("authserver admin {method} {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A call to its admin API that must succeed.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_admin(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
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

    /// The provider's introspection of a token (RFC 7662).
    pub async fn introspection(&self, token: &str) -> Value {
        client()
            .post(self.endpoint("introspection"))
            .basic_auth("cc-basic", Some("cc-basic-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
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

    /// The provider JSON for a client of this server, as Quiver's REST API
    /// takes it.
    pub fn provider(&self, name: &str, client_id: &str, method: &str) -> Value {
        json!({
            "name": name,
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorization"),
            "token_endpoint": self.endpoint("token"),
            "revocation_endpoint": self.endpoint("revocation"),
            "jwks_uri": self.endpoint("jwks"),
            "client_id": client_id,
            "client_secret": self.info["clientSecrets"][client_id],
            "client_auth_method": method,
        })
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
