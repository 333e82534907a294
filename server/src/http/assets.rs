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
//! They are compressed as they are sent (brotli or gzip, as the browser accepts):
//! the tokens list with its rows is most of a first visit's bytes after the
//! bundle. Nothing else is compressed on the fly: a page shows no secret
//! (only whether one is set), while API answers can carry access tokens
//! beside what the caller sent, which compression would let a watcher of
//! sizes guess at.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, VARY};
use axum::middleware::{self, Next};
use axum::response::Response;
use leptos::config::LeptosOptions;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};
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

/// Brotli or gzip for HTML answers of a kilobyte or more (pages), as the browser accepts.
pub fn pages_compressed() -> CompressionLayer<impl Predicate> {
    // Brotli at quality 5 or gzip: a page of 50 tokens (104 KB) becomes
    // about 5.0 KB or 7.0 KB in about a millisecond; brotli's best (4.5 KB)
    // takes about a hundred (docs/BENCHMARKS.md).
    CompressionLayer::new()
        .br(true)
        .gzip(true)
        .quality(tower_http::CompressionLevel::Precise(5))
        .compress_when(compressed_on_the_fly())
}

/// Which answers [`pages_compressed`] compresses.
fn compressed_on_the_fly() -> impl Predicate {
    SizeAbove::new(1024)
        .and(|_, _, headers: &axum::http::HeaderMap, _: &axum::http::Extensions| is_html(headers))
}

fn is_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Middleware: an HTML answer that says nothing about caching is not stored.
pub async fn pages_not_stored(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if is_html(headers) && !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(NOT_STORED));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Response, header::CONTENT_TYPE};
    use tower_http::compression::predicate::Predicate;

    fn answer(content_type: &str, len: usize) -> Response<Body> {
        Response::builder()
            .header(CONTENT_TYPE, content_type)
            .header("content-length", len)
            .body(Body::from(vec![b'a'; len]))
            .unwrap()
    }

    #[test]
    fn only_pages_of_a_kilobyte_or_more_are_compressed_on_the_fly() {
        let predicate = super::compressed_on_the_fly();
        assert!(predicate.should_compress(&answer("text/html; charset=utf-8", 4096)));
        assert!(!predicate.should_compress(&answer("text/html; charset=utf-8", 200)));
        // API answers, which can carry access tokens, never are.
        assert!(!predicate.should_compress(&answer("application/json", 4096)));
        assert!(!predicate.should_compress(&answer("text/plain", 4096)));
    }
}
