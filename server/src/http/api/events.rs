//! `/events`: notifications (token failures, re-authorization needed, job
//! failures), newest first.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::{ApiResult, QueryParams};
use crate::events::EventPage;
use crate::http::AppState;
use crate::http::caller::Authenticated;

/// Paging.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventQuery {
    limit: Option<u64>,
    offset: Option<u64>,
}

pub(super) async fn list_events(
    State(state): State<AppState>,
    who: Authenticated,
    QueryParams(q): QueryParams<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    Ok(Json(
        state
            .instance
            .tokens
            .events
            .list(&who.caller, q.limit.unwrap_or(50), q.offset.unwrap_or(0))
            .await?,
    ))
}
