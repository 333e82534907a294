//! The quirks server (end2end/quirks/server.mjs) on loopback: a token
//! endpoint that answers in the shapes of the catalogue's providers.
//! Killed when the value drops (and stops by itself when this process
//! dies: it watches its standard input).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

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
