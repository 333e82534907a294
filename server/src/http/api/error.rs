//! REST errors: `{"error": {"code", "message", "field"?}}` with a fitting
//! status. The one place an [`AppError`] becomes an HTTP response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header::RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use app::error::AppError;
use app::tokens::TokenView;

use crate::tokens::engine::Answer;

/// An error leaving the REST API.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

/// The HTTP status for an error (decided by [`AppError::kind`]).
pub fn status_of(error: &AppError) -> StatusCode {
    StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The JSON body and status for an error, with `Retry-After` when it applies.
pub fn error_response(error: &AppError) -> Response {
    error_response_with(error, None)
}

/// The same, with the token the error concerns beside it (`"token"`).
fn error_response_with(error: &AppError, token: Option<&TokenView>) -> Response {
    let mut body = json!({"code": error.code(), "message": error.to_string()});
    if let Some(field) = error.field() {
        body["field"] = json!(field);
    }
    if let Some(limit_bytes) = error.limit_bytes() {
        body["limit_bytes"] = json!(limit_bytes);
    }
    if let AppError::NeedsReauthorization { auth_link } = error {
        body["auth_link"] = json!(auth_link);
    }
    if let AppError::Transfer {
        problems, report, ..
    } = error
    {
        if let Some(problems) = problems {
            body["problems"] = json!(problems);
        }
        if let Some(report) = report {
            body["report"] = json!(report);
        }
    }
    let mut document = json!({ "error": body });
    if let Some(token) = token {
        document["token"] = json!(token);
    }
    let mut response = (status_of(error), Json(document)).into_response();
    if let Some(seconds) = error.retry_after_seconds()
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

/// The answer to Refresh, Request again and Reset: the token when it was
/// renewed; otherwise the error status of the refusal (502
/// `provider_refused`, 503 `provider_unavailable` with `Retry-After`, 409
/// `needs_reauthorization` with `auth_link`), with the token beside it.
#[derive(Debug)]
pub struct Renewed(pub Answer);

impl IntoResponse for Renewed {
    fn into_response(self) -> Response {
        match &self.0.refusal {
            None => Json(self.0.view).into_response(),
            Some(refusal) => error_response_with(refusal, Some(&self.0.view)),
        }
    }
}

/// A REST handler's result.
pub type ApiResult<T> = Result<T, ApiError>;
