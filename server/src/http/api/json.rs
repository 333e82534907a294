//! A JSON body extractor whose every rejection is the API's JSON error.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// A JSON request body; anything else is refused with a JSON error.
pub struct JsonBody<T>(pub T);

fn reject(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => reject(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send a JSON body with Content-Type: application/json".into(),
                ),
                JsonRejection::JsonDataError(e) => reject(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    e.body_text(),
                ),
                JsonRejection::JsonSyntaxError(e) => {
                    reject(StatusCode::BAD_REQUEST, "invalid_json", e.body_text())
                }
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    reject(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the request body is larger than this endpoint accepts".into(),
                    )
                }
                other => reject(other.status(), "bad_request", other.body_text()),
            }),
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
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e| {
                reject(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    e.body_text(),
                )
            })
    }
}
