//! Provider calls that get no answer: a closed port, a connection that is
//! reset, a listener that never answers and a connection attempt that is
//! dropped all read the same in discovery and token errors, so that they
//! never tell whether an internal port is open.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use server::account::Role;

use crate::support::{Auth, TestApp, json_request};

/// Loopback ports, one per way of not answering; alive while this lives.
struct Silences {
    closed: u16,
    reset: u16,
    silent: u16,
    dropped: u16,
    _keep: (StdListener, tokio::net::TcpListener, Vec<TcpStream>),
}

impl Silences {
    async fn new() -> Self {
        // Nothing listens: the connection is refused.
        let closed = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Accepts, then resets (SO_LINGER 0).
        let resetting = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let reset = resetting.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = resetting.accept().await {
                let _ = stream.set_zero_linger();
                drop(stream);
            }
        });
        // The kernel completes the connection, nothing ever answers.
        let silent_listener = StdListener::bind("127.0.0.1:0").unwrap();
        let silent = silent_listener.local_addr().unwrap().port();
        // A full accept queue: further connection attempts are dropped
        // unanswered, as a firewall that drops them would.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let full = socket.listen(0).unwrap();
        let full_addr: SocketAddr = full.local_addr().unwrap();
        let fillers: Vec<TcpStream> = (0..3)
            .filter_map(|_| TcpStream::connect_timeout(&full_addr, Duration::from_millis(300)).ok())
            .collect();
        assert!(!fillers.is_empty(), "the accept queue takes one connection");
        Self {
            closed,
            reset,
            silent,
            dropped: full_addr.port(),
            _keep: (silent_listener, full, fillers),
        }
    }
}

/// The message with the port taken out, to compare across ports.
fn shape(message: &str, port: u16) -> String {
    message.replace(&format!(":{port}"), ":PORT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reset_and_unanswered_connections_read_the_same() {
    let app = TestApp::with_env(&[("QUIVER_ALLOW_INSECURE_LOOPBACK", "true")]).await;
    let pw = app.user("admin@example.com", Role::Admin).await;
    let admin = Some(Auth::Cookie(app.login("admin@example.com", &pw).await));
    let s = Silences::new().await;

    // Token endpoint: every way of not answering, with short timeouts.
    let mut messages = Vec::new();
    for (what, port) in [
        ("closed", s.closed),
        ("reset", s.reset),
        ("silent", s.silent),
        ("dropped", s.dropped),
    ] {
        let base = format!("http://127.0.0.1:{port}");
        let r = app
            .send(json_request(
                "POST",
                "/api/v1/providers",
                admin.clone(),
                json!({
                    "name": format!("quiet {what}"), "token_endpoint": format!("{base}/token"),
                    "client_id": "c", "client_secret": "s",
                    "connect_timeout_ms": 500, "timeout_ms": 1000,
                }),
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let provider = r.json()["id"].as_str().unwrap().to_owned();
        let started = std::time::Instant::now();
        let r = app
            .send(json_request(
                "POST",
                "/api/v1/tokens",
                admin.clone(),
                json!({"name": format!("t {what}"), "provider_id": provider, "flow": "client_credentials"}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let t = r.json();
        assert_eq!(t["error"]["error"], "unreachable", "{what}: {t}");
        let message = t["error"]["error_description"].as_str().unwrap().to_owned();
        assert_eq!(
            message,
            format!("could not reach 127.0.0.1:{port}: no answer"),
            "{what}"
        );
        eprintln!(
            "token endpoint, {what}: {message:?} after {:?}",
            started.elapsed()
        );
        messages.push(shape(&message, port));
    }

    let mut discovery = Vec::new();
    // Discovery: the same words (its timeouts are the defaults, 5 s to
    // connect and 30 s in all, so the listener that never answers is left
    // to the token endpoint above; both go through the same client).
    for (what, port) in [
        ("closed", s.closed),
        ("reset", s.reset),
        ("dropped", s.dropped),
    ] {
        let started = std::time::Instant::now();
        let r = app
            .send(json_request(
                "POST",
                "/api/v1/providers/discover",
                admin.clone(),
                json!({"issuer": format!("http://127.0.0.1:{port}")}),
            ))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            r.body
        );
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.ends_with(&format!(
                "discovery failed: could not reach 127.0.0.1:{port}: no answer"
            )),
            "{what}: {message}"
        );
        eprintln!(
            "discovery, {what}: {message:?} after {:?}",
            started.elapsed()
        );
        discovery.push(shape(&message, port));
    }
    messages.dedup();
    discovery.dedup();
    assert_eq!(messages, ["could not reach 127.0.0.1:PORT: no answer"]);
    assert_eq!(discovery.len(), 1, "{discovery:?}");
}
