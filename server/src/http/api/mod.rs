//! The REST API under `/api/v1`: JSON in and out, authenticated by the
//! session cookie or an API key.

mod accounts;
mod error;
mod events;
mod jobs;
mod json;
pub(crate) mod oauth;
mod transfer;

pub use error::{ApiError, ApiResult, error_response, status_of};
pub use json::{JsonBody, QueryParams};

use axum::Router;
use axum::routing::{delete, get, patch, post};

use super::AppState;
use app::error::AppError;

/// The `/api/v1` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/session",
            post(accounts::login)
                .get(accounts::whoami)
                .delete(accounts::logout),
        )
        .route(
            "/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route("/users/{id}", patch(accounts::update_user))
        .route(
            "/users/{id}/revoke-sessions",
            post(accounts::revoke_sessions),
        )
        .route(
            "/api-keys",
            get(accounts::list_api_keys).post(accounts::create_api_key),
        )
        .route("/api-keys/{id}", delete(accounts::revoke_api_key))
        .route("/audit", get(accounts::audit))
        .route(
            "/providers",
            get(oauth::list_providers).post(oauth::create_provider),
        )
        .route("/providers/discover", post(oauth::discover))
        .route("/provider-templates", get(oauth::list_provider_templates))
        .route(
            "/provider-templates/{id}",
            get(oauth::get_provider_template),
        )
        .route(
            "/providers/{id}",
            get(oauth::get_provider)
                .patch(oauth::update_provider)
                .delete(oauth::delete_provider),
        )
        .route(
            "/providers/{id}/promote-secret",
            post(oauth::promote_provider_secret),
        )
        .route("/tokens", get(oauth::list_tokens).post(oauth::create_token))
        .route(
            "/tokens/{id}",
            get(oauth::get_token)
                .patch(oauth::update_token)
                .delete(oauth::delete_token),
        )
        .route("/tokens/{id}/request", post(oauth::request_token))
        .route("/tokens/{id}/refresh", post(oauth::refresh_token))
        .route("/tokens/{id}/reset", post(oauth::reset_token))
        .route("/tokens/{id}/auth-link", post(oauth::auth_link))
        .route("/tokens/{id}/test", post(oauth::test_connection))
        .route("/tokens/{id}/usage", get(oauth::token_usage))
        .route(
            "/tokens/{id}/promote-secret",
            post(oauth::promote_token_secret),
        )
        .route("/tokens/{id}/verification-qr", get(oauth::verification_qr))
        // `/tokens/{id}/access-token` is served beside these routes, see
        // `crate::http::router`.
        .route("/events", get(events::list_events))
        .route("/overview", get(oauth::overview))
        .route("/jobs", get(jobs::list_jobs).post(jobs::create_job))
        .route(
            "/jobs/{id}",
            get(jobs::get_job)
                .patch(jobs::update_job)
                .delete(jobs::delete_job),
        )
        .route("/jobs/{id}/run", post(jobs::run_job))
        .route("/jobs/{id}/runs", get(jobs::list_runs))
        .route("/export", post(transfer::export))
        .route("/import", post(transfer::import))
        .route(
            "/import/{import_id}/progress",
            get(transfer::import_progress),
        )
        .route("/openapi.json", get(openapi))
        .fallback(|| async { ApiError(AppError::NotFound("this API endpoint".into())) })
}

/// The OpenAPI document of this API (public).
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

async fn openapi() -> (
    [(axum::http::header::HeaderName, &'static str); 1],
    &'static str,
) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}
