//! `/export`, `/import` and `/import/{import_id}/progress` (admins only).
//!
//! The export body is streamed as it is written. The import body is read
//! here, up to `QUIVER_IMPORT_MAX_BYTES` (not the API's 1 MiB), and only
//! once the caller is known to be an admin: anyone else is answered without
//! a byte of it read. Export and import errors become [`AppError`]s, which
//! answer like every other API error.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use app::error::AppError;

use super::{ApiResult, JsonBody};
use crate::http::AppState;
use crate::http::caller::{Admin, Authenticated};
use crate::secret::SecretString;
use crate::transfer::export::ExportRequest;
use crate::transfer::import::{ImportError, ImportOptions, Mode, OnConflict};
use crate::transfer::progress;
use crate::transfer::reader::{BundleError, Limits, read_bundle};

/// Room for the envelope around a bundle (`mode`, `passphrase`, …) on top
/// of the bundle's own size limit.
const ENVELOPE_SLACK: usize = 64 * 1024;

/// `POST /export` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportBody {
    #[serde(default)]
    provider_ids: Option<Vec<String>>,
    #[serde(default)]
    token_ids: Option<Vec<String>>,
    #[serde(default)]
    include_secrets: bool,
    #[serde(default)]
    passphrase: Option<String>,
}

/// `POST /export`: the bundle, streamed as it is read from the database.
pub(super) async fn export(
    State(state): State<AppState>,
    who: Authenticated,
    JsonBody(input): JsonBody<ExportBody>,
) -> ApiResult<Response> {
    let transfer = state.instance.transfer.clone();
    let admin = transfer
        .authorize(&who.caller, who.client_addr, "transfer.export")
        .await?;
    let request = ExportRequest {
        provider_ids: input.provider_ids,
        token_ids: input.token_ids,
        include_secrets: input.include_secrets,
        passphrase: input.passphrase.map(SecretString::new),
    };
    let plan = transfer
        .plan_export(&admin, request)
        .await
        .map_err(AppError::from)?;
    let file_name = plan.file_name();
    // The writer task fills a small pipe; the body drains it. A failure
    // after the first byte ends the body with an error, so the client
    // sees a broken download rather than a short bundle.
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    tokio::spawn(async move {
        let result = transfer
            .write_export(&admin, plan, &mut writer, &|_, _| {})
            .await;
        let _ = writer.shutdown().await;
        drop(writer);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "export stopped");
        }
        let _ = done_tx.send(result.map(|_| ()).map_err(|e| e.to_string()));
    });
    let tail = futures_util::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(std::io::Error::other(e))),
            Err(_) => Some(Err(std::io::Error::other("the export stopped"))),
        }
    })
    .filter_map(|end| async move { end });
    let stream = tokio_util::io::ReaderStream::new(reader).chain(tail);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Any JSON object; tells a raw bundle (it has `format`, or no `bundle`)
/// from an envelope.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    format: Option<IgnoredAny>,
    #[serde(default)]
    bundle: Option<IgnoredAny>,
}

/// `POST /import` body, unless a raw bundle is posted. The bundle itself is
/// taken apart by [`BundleOnly`], as the bytes it was sent as.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[allow(dead_code)]
    bundle: IgnoredAny,
    #[serde(default)]
    passphrase: Option<String>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    on_conflict: OnConflict,
    #[serde(default)]
    import_id: Option<String>,
}

/// The envelope's `bundle`, unparsed.
#[derive(Deserialize)]
struct BundleOnly<'a> {
    #[serde(borrow)]
    bundle: &'a RawValue,
}

/// The import request is over the import limit.
fn too_large(limit: usize) -> AppError {
    AppError::TooLarge {
        field: None,
        message: format!(
            "the request body is over the import limit of {limit} bytes (QUIVER_IMPORT_MAX_BYTES)"
        ),
        limit_bytes: Some(limit as u64),
    }
}

/// Reads the body up to `cap` bytes; over it is 413 naming `limit`.
async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    cap: usize,
    limit: usize,
) -> Result<Bytes, AppError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large(limit));
    }
    let mut collected = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::Validation {
            field: None,
            message: format!("the request body could not be read: {e}"),
        })?;
        if collected.len() + chunk.len() > cap {
            return Err(too_large(limit));
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// `POST /import`: preview or apply; answers the report.
pub(super) async fn import(
    State(state): State<AppState>,
    who: Authenticated,
    headers: HeaderMap,
    raw: Body,
) -> ApiResult<Json<Value>> {
    let transfer = state.instance.transfer.clone();
    // Before a byte of the body is read.
    let admin = transfer
        .authorize(&who.caller, who.client_addr, "transfer.import")
        .await?;
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(AppError::UnsupportedMediaType {
            field: None,
            message: "send a JSON body with Content-Type: application/json".into(),
        }
        .into());
    }
    let limit = state.instance.config.import_max_bytes;
    let bytes = read_limited(&headers, raw, limit.saturating_add(ENVELOPE_SLACK), limit).await?;
    let limits = Limits {
        max_bytes: limit,
        ..Limits::default()
    };
    // Not JSON, truncated, absurdly nested, not an object: the reader says
    // exactly what and where.
    let Ok(probe) = serde_json::from_slice::<Probe>(&bytes) else {
        let e = read_bundle(&bytes, &limits)
            .err()
            .unwrap_or(BundleError::Empty);
        return Err(AppError::from(ImportError::Bundle(e)).into());
    };
    let (bundle, options, import_id) = if probe.format.is_some() || probe.bundle.is_none() {
        // A raw bundle is previewed.
        (&bytes[..], ImportOptions::default(), None)
    } else {
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let envelope: Envelope = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let at = e.path().to_string();
            let message = e.inner().to_string();
            let field = if at == "." || at.is_empty() {
                // "unknown field `x`, expected …", "missing field `bundle`"
                message.split('`').nth(1).map(str::to_owned)
            } else {
                Some(at.split('.').next().unwrap_or_default().to_owned())
            };
            AppError::Validation {
                field,
                message: format!("the import request is malformed: {message}"),
            }
        })?;
        let inner: BundleOnly<'_> =
            serde_json::from_slice(&bytes).map_err(|e| AppError::Validation {
                field: Some("bundle".into()),
                message: format!("the import request is malformed: {e}"),
            })?;
        let options = ImportOptions {
            mode: envelope.mode,
            on_conflict: envelope.on_conflict,
            passphrase: envelope.passphrase.map(SecretString::new),
        };
        (inner.bundle.get().as_bytes(), options, envelope.import_id)
    };
    let result = transfer
        .import_tracked(&admin, bundle, options, import_id.as_deref())
        .await;
    let report = result.map_err(AppError::from)?;
    let mut value = serde_json::to_value(&report).map_err(|_| AppError::Internal)?;
    if let (Some(id), Value::Object(map)) = (import_id, &mut value) {
        map.insert("import_id".into(), json!(id));
    }
    Ok(Json(value))
}

/// `GET /import/{import_id}/progress`.
pub(super) async fn import_progress(
    _: Admin,
    Path(import_id): Path<String>,
) -> ApiResult<Json<progress::Snapshot>> {
    progress::registry()
        .get(&import_id)
        .map(Json)
        .ok_or_else(|| AppError::NotFound("an import with this id on this replica".into()).into())
}
