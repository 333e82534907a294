//! REST errors: `{"error": {"code", "message", "field"?}}` with a fitting
//! status. The one place an [`AppError`] becomes an HTTP response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header::RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use app::error::AppError;

/// An error leaving the REST API.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

/// The HTTP status for an error.
pub fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
        AppError::Forbidden | AppError::CrossSite => StatusCode::FORBIDDEN,
        AppError::NeedsReauthorization { .. } => StatusCode::CONFLICT,
        AppError::ProviderUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AppError::ProviderRefused { .. } => StatusCode::BAD_GATEWAY,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        AppError::Transport(_) => StatusCode::BAD_REQUEST,
    }
}

/// The JSON body and status for an error, with `Retry-After` when it applies.
pub fn error_response(error: &AppError) -> Response {
    let mut body = json!({"code": error.code(), "message": error.to_string()});
    if let AppError::Validation {
        field: Some(field), ..
    } = error
    {
        body["field"] = json!(field);
    }
    if let AppError::NeedsReauthorization { auth_link } = error {
        body["auth_link"] = json!(auth_link);
    }
    let mut response = (status_of(error), Json(json!({ "error": body }))).into_response();
    if let AppError::RateLimited {
        retry_after_seconds,
    }
    | AppError::ProviderUnavailable {
        retry_after_seconds,
        ..
    } = error
        && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
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

/// A REST handler's result.
pub type ApiResult<T> = Result<T, ApiError>;
