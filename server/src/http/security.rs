//! Request hygiene: cross-site write refusal and security headers.

use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, ORIGIN, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;

use app::error::AppError;

use super::api::error_response;

/// The policy for responses that are not app pages (JSON, static files).
const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The policy for app pages; `nonce` admits the hydration script.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Whether a state-changing request comes from another site. Browsers say
/// so in `Sec-Fetch-Site`; older ones only send `Origin`, which must then
/// name this host. Scripts send neither and are judged by their credentials.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return false;
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://").map(|(_, host)| host.to_owned()));
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// Middleware: refuses cross-site writes to server functions and the API.
pub async fn refuse_cross_site_writes(request: Request, next: Next) -> Response {
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    let guarded = path.starts_with("/rpc/") || path.starts_with("/api/");
    if writes && guarded && is_cross_site(request.headers()) {
        tracing::warn!(path, "refused a cross-site write");
        return error_response(&AppError::CrossSite);
    }
    next.run(request).await
}

/// The largest bodies server functions accept: the router-wide
/// `DefaultBodyLimit` (1 MiB), which bounds every body a server function
/// reads before it runs, and the Import/Export page's upload, which only
/// the import service reads, after it has checked that the caller is an
/// admin.
#[derive(Debug, Clone, Copy)]
pub struct RpcBodyLimits {
    /// Every server function but the import.
    pub default: usize,
    /// The whole import upload (`app::transfer::IMPORT_ENDPOINT`): a
    /// bundle of up to `QUIVER_IMPORT_MAX_BYTES` and the options and
    /// multipart framing around it.
    pub import: usize,
    /// `QUIVER_IMPORT_MAX_BYTES`, for the message.
    pub import_max_bytes: usize,
}

/// Room for the options and multipart framing around an uploaded bundle.
pub const UPLOAD_SLACK: usize = 64 * 1024;

impl RpcBodyLimits {
    /// The limits for an import size limit.
    #[must_use]
    pub fn new(import_max_bytes: usize) -> Self {
        Self {
            default: super::BODY_LIMIT,
            import: import_max_bytes.saturating_add(UPLOAD_SLACK),
            import_max_bytes,
        }
    }
}

/// Set on an import upload whose body was cut off at
/// [`RpcBodyLimits::import`] while it was read, so that the reader can say
/// which limit it hit.
#[derive(Debug, Clone, Default)]
pub struct UploadCutOff(Arc<AtomicBool>);

impl UploadCutOff {
    /// Whether the body went over its limit.
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The import's "too large" answer, naming the limit and its setting.
pub fn import_too_large(import_max_bytes: usize) -> AppError {
    AppError::TooLarge {
        field: Some(app::transfer::import_form::BUNDLE.to_owned()),
        message: format!(
            "the file is larger than the {import_max_bytes} bytes this instance imports (QUIVER_IMPORT_MAX_BYTES)"
        ),
        limit_bytes: Some(import_max_bytes as u64),
    }
}

/// A server function's error answer: the app's error, in JSON, with its status.
fn rpc_error(error: &AppError) -> Response {
    let body = serde_json::to_string(error).unwrap_or_default();
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = super::api::status_of(error);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Whether a `Content-Type` is `multipart/form-data` with a boundary.
fn is_form_upload(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| multer::parse_boundary(v).is_ok())
}

/// Middleware: a server-function call whose announced body is over its
/// limit is refused at once with 413 and a message naming the limit (the
/// framework would read up to the limit and answer a bare 400).
///
/// The import takes a file upload and nothing else; its body is not read
/// here, and not by the framework: the import service reads it once it
/// knows the caller is an admin. Here it is only counted as it passes, and
/// cut off at its limit. Every other server function keeps the router-wide
/// `DefaultBodyLimit` (1 MiB), so no caller, signed in or not, gets more
/// than that buffered before the function runs.
pub async fn limit_rpc_bodies(
    State(limits): State<RpcBodyLimits>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/rpc/") {
        return next.run(request).await;
    }
    let is_import = path == app::transfer::IMPORT_ENDPOINT;
    let limit = if is_import {
        limits.import
    } else {
        limits.default
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let error = if is_import {
            import_too_large(limits.import_max_bytes)
        } else {
            AppError::TooLarge {
                field: None,
                message: format!(
                    "the request is larger than the {limit} bytes this server accepts"
                ),
                limit_bytes: Some(limit as u64),
            }
        };
        return rpc_error(&error);
    }
    if is_import {
        if !is_form_upload(request.headers()) {
            return rpc_error(&AppError::UnsupportedMediaType {
                field: Some(app::transfer::import_form::BUNDLE.to_owned()),
                message: "send the bundle as a file upload (multipart/form-data)".into(),
            });
        }
        let cut_off = UploadCutOff::default();
        let flag = cut_off.0.clone();
        let mut seen = 0usize;
        request = request.map(|body| {
            axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
                let chunk = chunk?;
                seen = seen.saturating_add(chunk.len());
                if seen > limit {
                    flag.store(true, Ordering::Release);
                    return Err(axum::Error::new(format!(
                        "the upload is over its limit of {limit} bytes"
                    )));
                }
                Ok(chunk)
            }))
        });
        request.extensions_mut().insert(cut_off);
    }
    next.run(request).await
}

/// Middleware: a server-function call whose arguments could not be decoded
/// is the caller's mistake, so it answers 400 (the framework says 500).
pub async fn bad_server_fn_input_is_400(request: Request, next: Next) -> Response {
    let is_rpc = request.uri().path().starts_with("/rpc/");
    let response = next.run(request).await;
    if !is_rpc || response.status() != axum::http::StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return error_response(&AppError::Internal);
    };
    // The error as the browser reads it: a transport error here is the
    // framework's own, raised while it decoded the arguments.
    if serde_json::from_slice::<AppError>(&bytes).is_ok_and(|e| matches!(e, AppError::Transport(_)))
    {
        parts.status = axum::http::StatusCode::BAD_REQUEST;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Middleware: security headers on every response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    add_security_headers(response.headers_mut());
    response
}

/// The security headers every response carries: no sniffing, no referrer,
/// no framing, and the default policy unless the response set its own.
pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
}

/// `Strict-Transport-Security` on an https instance: a year, for this host
/// only. Not `includeSubDomains`, since Quiver may run on a name whose
/// subdomains are other services (even an apex domain), and not `preload`,
/// which is the domain owner's decision; a proxy in front can send more.
pub const HSTS: &str = "max-age=31536000";

/// Middleware: with an https public URL, every response tells browsers to
/// reach this host over https only (they ignore it on plain http, so it
/// does no harm behind a proxy that ends TLS).
pub async fn strict_transport_security(
    State(https): State<bool>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    add_hsts(response.headers_mut(), https);
    response
}

/// `Strict-Transport-Security` when the public URL is https.
pub fn add_hsts(headers: &mut HeaderMap, https: bool) {
    if https {
        headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn cross_site_detection() {
        assert!(!is_cross_site(&headers(&[])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_site(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(is_cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(is_cross_site(&headers(&[
            ("origin", "null"),
            ("host", "x")
        ])));
    }
}
