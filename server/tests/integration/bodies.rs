//! Memory before authentication: what a caller who has not signed in, or
//! is not an admin, can make the server read. Every request body here is
//! 60 MiB, produced lazily and counted as the server pulls it, so a test
//! sees exactly how much of it was read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use server::account::Role;

use crate::support::{Auth, BOUNDARY, TestApp};

/// The size of every hostile body.
const HUGE: usize = 60 * 1024 * 1024;

/// The size of the pieces it arrives in.
const CHUNK: usize = 64 * 1024;

/// The most any route may read for a caller who is not allowed the import:
/// the router-wide limit, plus the piece that crossed it.
const READ_AT_MOST: usize = server::http::BODY_LIMIT + CHUNK;

/// A body of `HUGE` bytes starting with `head`, and how many of its bytes
/// the server has pulled so far.
fn huge_body(head: &[u8]) -> (Body, Arc<AtomicUsize>) {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let head = Bytes::copy_from_slice(head);
    let filler = Bytes::from(vec![b'x'; CHUNK]);
    let stream = futures_util::stream::unfold(0usize, move |sent| {
        let counter = counter.clone();
        let piece = if sent == 0 {
            head.clone()
        } else {
            filler.slice(..CHUNK.min(HUGE - sent))
        };
        async move {
            if sent >= HUGE {
                return None;
            }
            counter.fetch_add(piece.len(), Ordering::SeqCst);
            Some((Ok::<_, std::io::Error>(piece.clone()), sent + piece.len()))
        }
    });
    (Body::from_stream(stream), pulled)
}

/// The start of a multipart upload whose file part runs on and on.
fn upload_head() -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"bundle\"; \
         filename=\"bundle.json\"\r\nContent-Type: application/json\r\n\r\n{{\"format\": \"quiver-export\", \"x\": \""
    )
    .into_bytes()
}

/// A 60 MiB request (no length announced, as a streaming client sends it).
fn huge(
    method: &str,
    path: &str,
    content_type: &str,
    head: &[u8],
    auth: Option<&Auth>,
) -> (Request<Body>, Arc<AtomicUsize>) {
    let (body, pulled) = huge_body(head);
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:3000")
        .header("content-type", content_type)
        .header("sec-fetch-site", "same-origin");
    match auth {
        Some(Auth::Cookie(c)) => b = b.header("cookie", c),
        Some(Auth::Bearer(k)) => b = b.header("authorization", format!("Bearer {k}")),
        None => {}
    }
    (b.body(body).unwrap(), pulled)
}

fn upload_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// Every route that takes a body, with a body of the kind it expects.
fn routes() -> Vec<(&'static str, String, String, Vec<u8>)> {
    let json = "application/json".to_owned();
    let form = "application/x-www-form-urlencoded".to_owned();
    let json_head = br#"{"bundle": {"format": "quiver-export", "x": ""#.to_vec();
    vec![
        (
            "POST",
            app::transfer::IMPORT_ENDPOINT.to_owned(),
            upload_type(),
            upload_head(),
        ),
        // The import server function as it took JSON before.
        (
            "POST",
            app::transfer::IMPORT_ENDPOINT.to_owned(),
            json.clone(),
            br#"{"input": {"bundle": ""#.to_vec(),
        ),
        (
            "POST",
            "/api/v1/import".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/api/v1/export".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/api/v1/session".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/api/v1/users".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/api/v1/api-keys".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/api/v1/providers".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/api/v1/tokens".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "PATCH",
            "/api/v1/tokens/t1".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/api/v1/jobs".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/api/v1/nowhere".into(),
            json.clone(),
            json_head.clone(),
        ),
        (
            "POST",
            "/oauth/callback".into(),
            form.clone(),
            b"state=".to_vec(),
        ),
        (
            "POST",
            TestApp::server_fn_path("login"),
            form.clone(),
            b"email=".to_vec(),
        ),
        (
            "POST",
            TestApp::server_fn_path("run_job"),
            form.clone(),
            b"id=".to_vec(),
        ),
        (
            "POST",
            TestApp::server_fn_path("export_bundle"),
            json.clone(),
            br#"{"input": {"passphrase": ""#.to_vec(),
        ),
        ("POST", "/login".into(), form, b"email=".to_vec()),
    ]
}

/// Sends every route a 60 MiB body as `auth`; returns what each answered
/// and how much of it was read.
async fn flood(app: &TestApp, auth: Option<&Auth>) -> Vec<(String, StatusCode, usize)> {
    let mut seen = Vec::new();
    for (method, path, content_type, head) in routes() {
        let (request, pulled) = huge(method, &path, &content_type, &head, auth);
        let reply = app.send(request).await;
        seen.push((
            format!("{method} {path} ({content_type})"),
            reply.status,
            pulled.load(Ordering::SeqCst),
        ));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_signed_out_gets_more_than_a_mebibyte_read_anywhere() {
    let app = TestApp::with_env(&[("QUIVER_IMPORT_MAX_BYTES", "100MiB")]).await;
    let seen = flood(&app, None).await;
    for (what, status, pulled) in &seen {
        assert!(
            status.is_client_error(),
            "{what}: {status} after reading {pulled} bytes"
        );
        assert!(
            *pulled <= READ_AT_MOST,
            "{what}: read {pulled} bytes before answering {status}"
        );
    }
    // The import itself reads nothing at all before it knows who calls.
    for (what, status, pulled) in &seen[..3] {
        assert!(
            matches!(
                *status,
                StatusCode::UNAUTHORIZED | StatusCode::UNSUPPORTED_MEDIA_TYPE
            ),
            "{what}: {status}"
        );
        assert!(*pulled <= CHUNK, "{what}: read {pulled} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_for_callers_knows_the_caller_before_it_reads_the_body() {
    let app = TestApp::new().await;
    let seen = flood(&app, None).await;
    let mut checked = 0;
    for (what, status, pulled) in &seen {
        let needs_a_caller = what.contains(" /api/v1/")
            && !what.contains(" /api/v1/session ")
            && !what.contains(" /api/v1/nowhere ");
        if !needs_a_caller {
            continue;
        }
        checked += 1;
        // Refused as nobody, not for the body it never looked at.
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(*pulled <= CHUNK, "{what}: read {pulled} bytes");
    }
    assert!(checked >= 8, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_non_admin_is_refused_the_import_without_it_being_read() {
    let app = TestApp::with_env(&[("QUIVER_IMPORT_MAX_BYTES", "100MiB")]).await;
    let pw = app.user("someone@example.com", Role::User).await;
    let cookie = app.login("someone@example.com", &pw).await;
    let (key, _) = app.api_key(&cookie, "script").await;
    for auth in [Auth::Cookie(cookie), Auth::Bearer(key)] {
        let seen = flood(&app, Some(&auth)).await;
        for (what, status, pulled) in &seen {
            assert!(
                *pulled <= READ_AT_MOST,
                "{auth:?} {what}: read {pulled} bytes before answering {status}"
            );
        }
        for (what, status, pulled) in &seen[..3] {
            assert!(
                matches!(
                    *status,
                    StatusCode::FORBIDDEN
                        | StatusCode::PAYLOAD_TOO_LARGE
                        | StatusCode::UNSUPPORTED_MEDIA_TYPE
                ),
                "{auth:?} {what}: {status}"
            );
            assert!(*pulled <= CHUNK, "{auth:?} {what}: read {pulled} bytes");
        }
    }
    // Each refusal is in the audit log.
    let admin_pw = app.user("admin@example.com", Role::Admin).await;
    let admin = app.login("admin@example.com", &admin_pw).await;
    let audit = app
        .send(crate::support::request(
            "GET",
            "/api/v1/audit?action=transfer.import&limit=100",
            Some(Auth::Cookie(admin)),
        ))
        .await
        .json();
    let denied = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .count();
    assert_eq!(denied, 4, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_upload_is_counted_as_it_is_read_and_cut_off_at_the_import_limit() {
    let app = TestApp::with_env(&[("QUIVER_IMPORT_MAX_BYTES", "1MiB")]).await;
    let pw = app.user("admin@example.com", Role::Admin).await;
    let admin = Auth::Cookie(app.login("admin@example.com", &pw).await);
    let (request, pulled) = huge(
        "POST",
        app::transfer::IMPORT_ENDPOINT,
        &upload_type(),
        &upload_head(),
        Some(&admin),
    );
    let reply = app.send(request).await;
    let pulled = pulled.load(Ordering::SeqCst);
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains("1048576 bytes") && reply.body.contains("QUIVER_IMPORT_MAX_BYTES"),
        "{}",
        reply.body
    );
    assert!(
        pulled <= 1024 * 1024 + 2 * CHUNK,
        "read {pulled} bytes of an upload over a 1 MiB limit"
    );
    // A part before the file that never ends is cut off at the limit of
    // the whole upload, and named the same way.
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"a.json\"\r\n"
    );
    let (request, pulled) = huge(
        "POST",
        app::transfer::IMPORT_ENDPOINT,
        &upload_type(),
        head.as_bytes(),
        Some(&admin),
    );
    let reply = app.send(request).await;
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(reply.status.is_client_error(), "{}", reply.body);
    assert!(
        pulled <= 1024 * 1024 + server::http::security::UPLOAD_SLACK + CHUNK,
        "read {pulled} bytes"
    );
}
