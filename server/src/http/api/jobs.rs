//! `/jobs`: scheduled jobs (admins only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

use app::jobs::{JobDetail, JobInput, JobRunView, JobView};

use super::{ApiResult, JsonBody, caller};
use crate::auth::RequestIdentity;
use crate::http::AppState;
use crate::schedule::jobs::Jobs;

fn jobs(state: &AppState) -> Jobs {
    Jobs::new(state.instance.tokens.clone())
}

pub(super) async fn list_jobs(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
) -> ApiResult<Json<Value>> {
    let items = jobs(&state).list(caller(&identity)?).await?;
    Ok(Json(json!({"total": items.len(), "items": items})))
}

pub(super) async fn create_job(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    JsonBody(input): JsonBody<JobInput>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let job = jobs(&state)
        .create(caller(&identity)?, input, identity.client_addr.clone())
        .await?;
    Ok((StatusCode::CREATED, Json(job)))
}

pub(super) async fn get_job(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobDetail>> {
    Ok(Json(jobs(&state).get(caller(&identity)?, &id).await?))
}

pub(super) async fn update_job(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<JobInput>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(
        jobs(&state)
            .update(caller(&identity)?, &id, input, identity.client_addr.clone())
            .await?,
    ))
}

pub(super) async fn delete_job(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    jobs(&state)
        .delete(caller(&identity)?, &id, identity.client_addr.clone())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn run_job(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobRunView>> {
    Ok(Json(
        jobs(&state)
            .run_now(caller(&identity)?, &id, identity.client_addr.clone())
            .await?,
    ))
}

pub(super) async fn list_runs(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let detail = jobs(&state).get(caller(&identity)?, &id).await?;
    Ok(Json(
        json!({"total": detail.runs.len(), "items": detail.runs}),
    ))
}
