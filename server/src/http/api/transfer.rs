//! `/export`, `/import` and `/import/{import_id}/progress` (admins only).
//!
//! The export body is streamed as it is written. The import body is read
//! here, up to `QUIVER_IMPORT_MAX_BYTES` (not the API's 1 MiB), and only
//! once the caller is known to be an admin: anyone else is answered without
//! a byte of it read. Every transfer error becomes an HTTP answer in
//! [`TransferFailure`], once.

use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use app::error::AppError;

use super::{JsonBody, caller, error_response};
use crate::auth::RequestIdentity;
use crate::http::AppState;
use crate::secret::SecretString;
use crate::transfer::export::{ExportError, ExportRequest};
use crate::transfer::import::{ImportError, ImportOptions, Mode, OnConflict};
use crate::transfer::progress;
use crate::transfer::reader::{BundleError, Limits, read_bundle};
use crate::transfer::{Problem, Transfer};

/// Room for the envelope around a bundle (`mode`, `passphrase`, …) on top
/// of the bundle's own size limit.
const ENVELOPE_SLACK: usize = 64 * 1024;

/// Everything a transfer request can end with, as an HTTP answer.
#[derive(Debug)]
pub(crate) enum TransferFailure {
    /// Signed out, not an admin, and the like.
    App(AppError),
    /// An export refused or failed before its first byte.
    Export(ExportError),
    /// An import refused or failed; nothing was imported.
    Import(ImportError),
    /// The body is not JSON.
    UnsupportedMediaType,
    /// The request body is over the limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The import request itself (not the bundle) is malformed.
    Request {
        /// The field.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
}

impl From<AppError> for TransferFailure {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<super::ApiError> for TransferFailure {
    fn from(e: super::ApiError) -> Self {
        Self::App(e.0)
    }
}

fn body(status: StatusCode, code: &str, message: String, extra: Value) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let (Value::Object(error), Value::Object(extra)) = (&mut error, extra) {
        error.extend(extra);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

fn problems(list: &[Problem]) -> Value {
    serde_json::to_value(list).unwrap_or(Value::Null)
}

impl IntoResponse for TransferFailure {
    fn into_response(self) -> Response {
        let internal = |what: &dyn std::fmt::Display| {
            tracing::error!(error = %what, "transfer failed");
        };
        match self {
            Self::App(e) => error_response(&e),
            Self::UnsupportedMediaType => body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send a JSON body with Content-Type: application/json".into(),
                json!({}),
            ),
            Self::TooLarge { limit } => body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is over the import limit of {limit} bytes (QUIVER_IMPORT_MAX_BYTES)"
                ),
                json!({"limit_bytes": limit}),
            ),
            Self::Request { field, message } => {
                let mut extra = json!({});
                if let Some(field) = field {
                    extra["field"] = json!(field);
                }
                body(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    message,
                    extra,
                )
            }
            Self::Export(e) => match &e {
                ExportError::UnknownIds(list) => body(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    e.to_string(),
                    json!({"problems": problems(list)}),
                ),
                ExportError::TooManyIds => body(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    e.to_string(),
                    json!({}),
                ),
                ExportError::PassphraseRequired
                | ExportError::PassphraseWithoutSecrets
                | ExportError::WeakPassphrase => body(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    e.to_string(),
                    json!({"field": "passphrase"}),
                ),
                ExportError::Unsealable { .. }
                | ExportError::Key(_)
                | ExportError::Storage(_)
                | ExportError::Write(_) => {
                    internal(&e);
                    error_response(&AppError::Internal)
                }
            },
            Self::Import(e) => {
                let list = e.problems();
                match &e {
                    ImportError::Bundle(BundleError::TooLarge { limit, .. }) => body(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        e.to_string(),
                        json!({"limit_bytes": limit, "problems": problems(&list)}),
                    ),
                    ImportError::Bundle(
                        BundleError::NotJson { .. }
                        | BundleError::Truncated { .. }
                        | BundleError::Empty,
                    ) => body(
                        StatusCode::BAD_REQUEST,
                        "invalid_json",
                        e.to_string(),
                        json!({"problems": problems(&list)}),
                    ),
                    ImportError::Bundle(BundleError::TooDeep { .. }) => body(
                        StatusCode::BAD_REQUEST,
                        "invalid_bundle",
                        e.to_string(),
                        json!({"problems": problems(&list)}),
                    ),
                    ImportError::Bundle(_) | ImportError::Secrets(_) => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_bundle",
                        e.to_string(),
                        json!({"problems": problems(&list)}),
                    ),
                    ImportError::Invalid(report) => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid_bundle",
                        e.to_string(),
                        json!({"problems": problems(&list), "report": report}),
                    ),
                    ImportError::Altered(_) => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "bundle_altered",
                        e.to_string(),
                        json!({"problems": problems(&list)}),
                    ),
                    ImportError::Unauthenticated => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "bundle_unauthenticated",
                        e.to_string(),
                        json!({"problems": problems(&list)}),
                    ),
                    ImportError::PassphraseRequired => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "passphrase_required",
                        e.to_string(),
                        json!({"field": "passphrase"}),
                    ),
                    ImportError::WrongPassphrase => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "wrong_passphrase",
                        e.to_string(),
                        json!({"field": "passphrase"}),
                    ),
                    ImportError::BadImportId => body(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation_failed",
                        e.to_string(),
                        json!({"field": "import_id"}),
                    ),
                    ImportError::Busy(_) => body(
                        StatusCode::CONFLICT,
                        "conflict",
                        e.to_string(),
                        json!({"field": "import_id"}),
                    ),
                    ImportError::Storage(db) => {
                        internal(db);
                        body(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal",
                            e.to_string(),
                            json!({}),
                        )
                    }
                }
            }
        }
    }
}

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
    Extension(identity): Extension<RequestIdentity>,
    JsonBody(input): JsonBody<ExportBody>,
) -> Result<Response, TransferFailure> {
    let caller = caller(&identity)?;
    let transfer = Transfer::new(&state.instance);
    let who = transfer
        .authorize(caller, identity.client_addr.clone(), "transfer.export")
        .await?;
    let request = ExportRequest {
        provider_ids: input.provider_ids,
        token_ids: input.token_ids,
        include_secrets: input.include_secrets,
        passphrase: input.passphrase.map(SecretString::new),
    };
    let plan = transfer
        .plan_export(&who, request)
        .await
        .map_err(TransferFailure::Export)?;
    let file_name = plan.file_name();
    // The writer task fills a small pipe; the body drains it. A failure
    // after the first byte ends the body with an error, so the client
    // sees a broken download rather than a short bundle.
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    tokio::spawn(async move {
        let result = transfer
            .write_export(&who, plan, &mut writer, &|_, _| {})
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

/// Reads the body up to `cap` bytes; over it is 413 naming `limit`.
async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    cap: usize,
    limit: usize,
) -> Result<Bytes, TransferFailure> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(TransferFailure::TooLarge { limit });
    }
    let mut collected = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| TransferFailure::Request {
            field: None,
            message: format!("the request body could not be read: {e}"),
        })?;
        if collected.len() + chunk.len() > cap {
            return Err(TransferFailure::TooLarge { limit });
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// `POST /import`: preview or apply; answers the report.
pub(super) async fn import(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    headers: HeaderMap,
    raw: Body,
) -> Result<Json<Value>, TransferFailure> {
    let caller = caller(&identity)?;
    let transfer = Transfer::new(&state.instance);
    // Before a byte of the body is read.
    let who = transfer
        .authorize(caller, identity.client_addr.clone(), "transfer.import")
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
        return Err(TransferFailure::UnsupportedMediaType);
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
        return Err(TransferFailure::Import(ImportError::Bundle(e)));
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
            TransferFailure::Request {
                field,
                message: format!("the import request is malformed: {message}"),
            }
        })?;
        let inner: BundleOnly<'_> =
            serde_json::from_slice(&bytes).map_err(|e| TransferFailure::Request {
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
        .import_tracked(&who, bundle, options, import_id.as_deref())
        .await;
    let report = result.map_err(TransferFailure::Import)?;
    let mut value = serde_json::to_value(&report).map_err(|_| AppError::Internal)?;
    if let (Some(id), Value::Object(map)) = (import_id, &mut value) {
        map.insert("import_id".into(), json!(id));
    }
    Ok(Json(value))
}

/// `GET /import/{import_id}/progress`.
pub(super) async fn import_progress(
    Extension(identity): Extension<RequestIdentity>,
    Path(import_id): Path<String>,
) -> Result<Json<progress::Snapshot>, TransferFailure> {
    let caller = caller(&identity)?;
    if !caller.is_admin() {
        return Err(AppError::Forbidden.into());
    }
    progress::registry()
        .get(&import_id)
        .map(Json)
        .ok_or_else(|| AppError::NotFound("an import with this id on this replica".into()).into())
}
