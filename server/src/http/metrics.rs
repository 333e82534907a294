//! `GET /metrics`: Prometheus metrics, for admins (a session, or an admin's
//! API key as the scrape's bearer token).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::AppState;
use super::api::ApiError;
use super::caller::Admin;

pub(super) async fn metrics(
    State(state): State<AppState>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let tokens = state.instance.tokens.tokens.count_by_status(None).await?;
    let attention = state
        .instance
        .tokens
        .attention_counts(None)
        .await?
        .into_iter()
        .map(|(reason, n)| (reason.as_str(), n))
        .collect();
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.instance.tokens.metrics.render(&tokens, &attention),
    ))
}
