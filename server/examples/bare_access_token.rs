//! The yardstick of `scripts/bench-access-token.sh`: a bare axum handler on
//! the access-token path that answers a fixed JSON body (the one Quiver
//! returned), on a runtime built as `quiver serve` builds its own.
//!
//! `bare_access_token ADDR BODY_FILE SECONDS`: serves on `ADDR` (loopback)
//! and stops by itself after `SECONDS`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, body, seconds] = args.as_slice() else {
        return Err("usage: bare_access_token ADDR BODY_FILE SECONDS".into());
    };
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address"));
    }
    let body = Bytes::from(std::fs::read(body).map_err(|e| format!("{body}: {e}"))?);
    let seconds: u64 = seconds.parse().map_err(|e| format!("{seconds}: {e}"))?;
    let router = Router::new().route(
        "/api/v1/tokens/{id}/access-token",
        get(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, service)
            .with_graceful_shutdown(tokio::time::sleep(Duration::from_secs(seconds)));
        serve.await.map_err(|e| e.to_string())
    })
}
