//! `GET /healthz`: 200 when the database answers, 503 when it does not.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use crate::db;

/// How long the database gets to answer a health check.
const DB_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(DB_TIMEOUT, db::ping(&state.instance.db)).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": "ok"})),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: database error");
            unavailable("error")
        }
        Err(_) => {
            tracing::warn!("health check: database timed out");
            unavailable("timeout")
        }
    }
}

fn unavailable(database: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "database": database})),
    )
}
