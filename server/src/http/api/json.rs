//! A JSON body extractor whose every rejection is the API's JSON error.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use app::error::AppError;

use super::ApiError;

/// A JSON request body; anything else is refused with a JSON error.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError(match rejection {
                JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType {
                    field: None,
                    message: "send a JSON body with Content-Type: application/json".into(),
                },
                JsonRejection::JsonDataError(e) => AppError::Validation {
                    field: None,
                    message: e.body_text(),
                },
                JsonRejection::JsonSyntaxError(e) => AppError::InvalidJson(e.body_text()),
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    AppError::TooLarge {
                        field: None,
                        message: "the request body is larger than this endpoint accepts".into(),
                        limit_bytes: None,
                    }
                }
                other => AppError::BadRequest(other.body_text()),
            })),
        }
    }
}

/// Query parameters; a malformed query is refused with a JSON error.
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e| {
                ApiError(AppError::Validation {
                    field: None,
                    message: e.body_text(),
                })
            })
    }
}
