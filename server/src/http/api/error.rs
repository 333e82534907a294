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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::http::header::RETRY_AFTER;
    use serde_json::{Value, json};

    use app::error::AppError;

    use super::error_response;
    use crate::transfer::progress::AlreadyRunning;
    use crate::transfer::{BundleError, ExportError, ImportError, Problem};

    /// The status, the `error` object and the `Retry-After` header of an
    /// error's REST answer.
    async fn answer(error: &AppError) -> (StatusCode, Value, Option<String>) {
        let response = error_response(error);
        let status = response.status();
        let retry = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("the body reads");
        let document: Value = serde_json::from_slice(&bytes).expect("the body is JSON");
        (status, document["error"].clone(), retry)
    }

    fn problem(path: &str, message: &str) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }

    #[tokio::test]
    async fn every_import_error_answers_its_status_code_and_places() {
        let cases: Vec<(ImportError, StatusCode, &str, Option<&str>, bool)> = vec![
            (
                ImportError::Bundle(BundleError::Empty),
                StatusCode::BAD_REQUEST,
                "invalid_json",
                None,
                true,
            ),
            (
                ImportError::Bundle(BundleError::TooDeep {
                    limit: 64,
                    line: 1,
                    column: 65,
                }),
                StatusCode::BAD_REQUEST,
                "invalid_bundle",
                None,
                true,
            ),
            (
                ImportError::Bundle(BundleError::NotABundle("an array".into())),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_bundle",
                None,
                true,
            ),
            (
                ImportError::Altered("$.providers[0].token_endpoint"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "bundle_altered",
                None,
                true,
            ),
            (
                ImportError::Unauthenticated,
                StatusCode::UNPROCESSABLE_ENTITY,
                "bundle_unauthenticated",
                None,
                true,
            ),
            (
                ImportError::PassphraseRequired,
                StatusCode::UNPROCESSABLE_ENTITY,
                "passphrase_required",
                Some("passphrase"),
                false,
            ),
            (
                ImportError::WrongPassphrase,
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong_passphrase",
                Some("passphrase"),
                false,
            ),
            (
                ImportError::BadImportId,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                Some("import_id"),
                false,
            ),
            (
                ImportError::Busy(AlreadyRunning("nightly".into())),
                StatusCode::CONFLICT,
                "conflict",
                Some("import_id"),
                false,
            ),
            (
                ImportError::Storage(sea_orm::DbErr::Custom("disk full".into())),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                None,
                false,
            ),
        ];
        for (error, status, code, field, lists_problems) in cases {
            let message = error.to_string();
            let problems = error.problems();
            let (got_status, body, retry) = answer(&AppError::from(error)).await;
            assert_eq!(got_status, status, "{code}: {body}");
            assert_eq!(body["code"], code, "{body}");
            assert_eq!(body["message"], message, "{body}");
            assert_eq!(body.get("field").and_then(Value::as_str), field, "{body}");
            assert_eq!(body.get("problems").is_some(), lists_problems, "{body}");
            if lists_problems {
                assert_eq!(body["problems"], json!(problems), "{body}");
            }
            assert!(body.get("limit_bytes").is_none(), "{body}");
            assert!(body.get("report").is_none(), "{body}");
            assert_eq!(retry, None);
        }
    }

    #[tokio::test]
    async fn a_bundle_over_the_limit_names_the_limit_and_its_place() {
        let error = ImportError::Bundle(BundleError::TooLarge {
            size: 2048,
            limit: 1024,
        });
        let message = error.to_string();
        let (status, body, _) = answer(&AppError::from(error)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["code"], "payload_too_large");
        assert_eq!(body["message"], message);
        assert_eq!(body["limit_bytes"], 1024);
        assert_eq!(body["problems"][0]["path"], "$");
        assert!(body.get("field").is_none(), "{body}");
    }

    #[tokio::test]
    async fn export_errors_answer_as_before() {
        let unknown = ExportError::UnknownIds(vec![problem(
            "$.provider_ids[1]",
            "no provider has this id",
        )]);
        let message = unknown.to_string();
        let (status, body, _) = answer(&AppError::from(unknown)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["message"], message);
        assert_eq!(
            body["problems"],
            json!([{"path": "$.provider_ids[1]", "message": "no provider has this id"}])
        );
        assert!(body.get("field").is_none(), "{body}");

        let (status, body, _) = answer(&AppError::from(ExportError::TooManyIds)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "validation_failed");
        assert!(body.get("problems").is_none(), "{body}");
        assert!(body.get("field").is_none(), "{body}");

        let (status, body, _) = answer(&AppError::from(ExportError::WeakPassphrase)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["field"], "passphrase");

        // A server fault says nothing of itself: the log has it.
        let fault = ExportError::Write(std::io::Error::other("/var/lib/quiver is full"));
        let (status, body, _) = answer(&AppError::from(fault)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["code"], "internal");
        assert!(
            !body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("full"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn waiting_errors_say_how_long_and_reauthorization_says_where() {
        let (status, body, retry) = answer(&AppError::RateLimited {
            retry_after_seconds: 30,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["code"], "rate_limited");
        assert_eq!(retry.as_deref(), Some("30"));

        let (status, body, retry) = answer(&AppError::ProviderUnavailable {
            message: "timed out".into(),
            retry_after_seconds: 60,
        })
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], "provider_unavailable");
        assert_eq!(retry.as_deref(), Some("60"));

        let (status, body, _) = answer(&AppError::NeedsReauthorization {
            auth_link: "/api/v1/tokens/t1/auth-link".into(),
        })
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "needs_reauthorization");
        assert_eq!(body["auth_link"], "/api/v1/tokens/t1/auth-link");
    }

    #[tokio::test]
    async fn a_request_body_limit_without_a_number_names_none() {
        let (status, body, _) = answer(&AppError::TooLarge {
            field: None,
            message: "the request body is larger than this endpoint accepts".into(),
            limit_bytes: None,
        })
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["code"], "payload_too_large");
        assert!(body.get("limit_bytes").is_none(), "{body}");
        let (status, body, _) = answer(&AppError::UnsupportedMediaType {
            field: None,
            message: "send a JSON body with Content-Type: application/json".into(),
        })
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(body["code"], "unsupported_media_type");
        let (status, body, _) = answer(&AppError::InvalidJson("expected value".into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "invalid_json");
    }
}
