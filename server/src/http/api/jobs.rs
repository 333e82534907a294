//! `/jobs`: scheduled jobs (admins only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use app::jobs::{JobDetail, JobInput, JobRunView, JobView};

use super::{ApiResult, JsonBody};
use crate::http::AppState;
use crate::http::caller::Authenticated;
use crate::schedule::jobs::Jobs;

fn jobs(state: &AppState) -> Jobs {
    Jobs::new(state.instance.tokens.clone())
}

pub(super) async fn list_jobs(
    State(state): State<AppState>,
    who: Authenticated,
) -> ApiResult<Json<Value>> {
    let items = jobs(&state).list(&who.caller).await?;
    Ok(Json(json!({"total": items.len(), "items": items})))
}

pub(super) async fn create_job(
    State(state): State<AppState>,
    who: Authenticated,
    JsonBody(input): JsonBody<JobInput>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let job = jobs(&state)
        .create(&who.caller, input, who.client_addr)
        .await?;
    Ok((StatusCode::CREATED, Json(job)))
}

pub(super) async fn get_job(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDetail>> {
    Ok(Json(jobs(&state).get(&who.caller, &id).await?))
}

pub(super) async fn update_job(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<JobInput>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(
        jobs(&state)
            .update(&who.caller, &id, input, who.client_addr)
            .await?,
    ))
}

pub(super) async fn delete_job(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    jobs(&state)
        .delete(&who.caller, &id, who.client_addr)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn run_job(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<JobRunView>> {
    Ok(Json(
        jobs(&state)
            .run_now(&who.caller, &id, who.client_addr)
            .await?,
    ))
}

pub(super) async fn list_runs(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let detail = jobs(&state).get(&who.caller, &id).await?;
    Ok(Json(
        json!({"total": detail.runs.len(), "items": detail.runs}),
    ))
}
