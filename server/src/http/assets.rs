//! How the site's files and pages are cached and compressed.
//!
//! `/pkg` holds the bundle (JavaScript glue and loader, WASM modules, CSS),
//! each file stored
//! beside its brotli (`.br`) and gzip (`.gz`) forms made at build time: the
//! browser gets the smallest one it accepts, with `Content-Encoding` and
//! `Vary: Accept-Encoding`, or the file itself. Files named after the
//! bundle's content hash never change, so browsers keep them for a year
//! without asking again; anything else there is revalidated. Pages are never
//! stored: they carry the signed-in person's data and a fresh CSP nonce.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::middleware::{self, Next};
use axum::response::Response;
use leptos::config::LeptosOptions;
use tower_http::services::ServeDir;

use crate::site::{OUTPUT_NAME, PKG_DIR};

/// For a file whose name carries its content hash.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For any other static file: kept, but checked before each use.
pub const REVALIDATE: &str = "no-cache";
/// For pages.
pub const NOT_STORED: &str = "no-store";

/// The `/pkg` files of the site in `options`.
pub fn pkg_service(options: &LeptosOptions) -> Router {
    let dir = std::path::Path::new(&*options.site_root).join(PKG_DIR);
    // Only the bundle's hash in a file name (`<name>.<hash>.<ext>`, the
    // output name being `quiver.<hash>`) marks a file that never changes.
    let hashed = options
        .output_name
        .strip_prefix(&format!("{OUTPUT_NAME}."))
        .map(|hash| format!(".{hash}."));
    Router::new()
        .fallback_service(ServeDir::new(dir).precompressed_br().precompressed_gzip())
        .layer(middleware::from_fn_with_state(hashed, pkg_cache_policy))
}

/// Middleware for `/pkg` (its paths arrive without the prefix).
async fn pkg_cache_policy(
    State(hashed): State<Option<String>>,
    request: Request,
    next: Next,
) -> Response {
    let immutable = hashed
        .as_deref()
        .is_some_and(|infix| request.uri().path().contains(infix));
    let mut response = next.run(request).await;
    let status = response.status();
    let headers = response.headers_mut();
    if status.is_success() || status.is_redirection() {
        let policy = if immutable { IMMUTABLE } else { REVALIDATE };
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    // The same URL answers differently by `Accept-Encoding`, whichever
    // form this answer happens to be.
    if !headers.contains_key(VARY) {
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Middleware: an HTML answer that says nothing about caching is not stored.
pub async fn pages_not_stored(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(NOT_STORED));
    }
    response
}
