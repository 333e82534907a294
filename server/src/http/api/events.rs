//! `/events`: notifications (token failures, re-authorization needed, job
//! failures), newest first.

use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;

use super::{ApiResult, QueryParams, caller};
use crate::auth::RequestIdentity;
use crate::events::EventPage;
use crate::http::AppState;

/// Paging.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventQuery {
    limit: Option<u64>,
    offset: Option<u64>,
}

pub(super) async fn list_events(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    QueryParams(q): QueryParams<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    Ok(Json(
        state
            .instance
            .tokens
            .events
            .list(
                caller(&identity)?,
                q.limit.unwrap_or(50),
                q.offset.unwrap_or(0),
            )
            .await?,
    ))
}
