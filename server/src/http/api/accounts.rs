//! `/session`, `/users`, `/api-keys`, `/audit`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use app::accounts::AuditQuery;

use super::{ApiError, ApiResult, JsonBody, QueryParams, caller};
use crate::account::ops::user_view;
use crate::auth::RequestIdentity;
use crate::http::AppState;
use crate::secret::SecretString;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    email: String,
    password: String,
}

pub(super) async fn login(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<Response> {
    let accounts = &state.instance.accounts;
    let (user, token) = accounts
        .login(
            &body.email,
            SecretString::new(body.password),
            accounts.session_cookie(&headers),
            identity.client_addr.clone(),
        )
        .await
        .map_err(|e| ApiError(e.into()))?;
    let expires_at = accounts.sessions.policy().absolute;
    Ok((
        [(SET_COOKIE, accounts.set_cookie(&token))],
        Json(json!({
            "user": user_view(&user),
            "expires_in": expires_at.num_seconds(),
        })),
    )
        .into_response())
}

pub(super) async fn whoami(
    Extension(identity): Extension<RequestIdentity>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = caller(&identity)?;
    Ok(Json(json!({ "user": user_view(&caller.user) })))
}

pub(super) async fn logout(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
) -> Response {
    let accounts = &state.instance.accounts;
    if let Some(caller) = &identity.caller {
        accounts.logout(caller, identity.client_addr.clone()).await;
    }
    (
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, accounts.clear_cookie())],
    )
        .into_response()
}

pub(super) async fn list_users(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
) -> ApiResult<Json<serde_json::Value>> {
    let users = state
        .instance
        .accounts
        .list_users(caller(&identity)?)
        .await?;
    Ok(Json(json!({ "total": users.len(), "items": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    email: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default = "default_role")]
    role: String,
}

fn default_role() -> String {
    "user".into()
}

pub(super) async fn create_user(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<(StatusCode, Json<app::accounts::CreatedUser>)> {
    let created = state
        .instance
        .accounts
        .create_user(
            caller(&identity)?,
            &body.email,
            body.password.map(SecretString::new),
            &body.role,
            identity.client_addr.clone(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUser {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

pub(super) async fn update_user(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateUser>,
) -> ApiResult<Json<app::accounts::UserView>> {
    Ok(Json(
        state
            .instance
            .accounts
            .update_user(
                caller(&identity)?,
                &id,
                body.role.as_deref(),
                body.disabled,
                identity.client_addr.clone(),
            )
            .await?,
    ))
}

pub(super) async fn revoke_sessions(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let revoked = state
        .instance
        .accounts
        .revoke_sessions(caller(&identity)?, &id, identity.client_addr.clone())
        .await?;
    Ok(Json(json!({ "revoked": revoked })))
}

#[derive(Deserialize)]
pub(super) struct KeyListQuery {
    #[serde(default)]
    all: bool,
}

pub(super) async fn list_api_keys(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    QueryParams(query): QueryParams<KeyListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let keys = state
        .instance
        .accounts
        .list_api_keys(caller(&identity)?, query.all)
        .await?;
    Ok(Json(json!({ "total": keys.len(), "items": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    name: String,
}

pub(super) async fn create_api_key(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    JsonBody(body): JsonBody<CreateKey>,
) -> ApiResult<(StatusCode, Json<app::accounts::CreatedApiKey>)> {
    let created = state
        .instance
        .accounts
        .create_api_key(caller(&identity)?, &body.name, identity.client_addr.clone())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(super) async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    Path(id): Path<String>,
) -> ApiResult<Json<app::accounts::ApiKeyView>> {
    Ok(Json(
        state
            .instance
            .accounts
            .revoke_api_key(caller(&identity)?, &id, identity.client_addr.clone())
            .await?,
    ))
}

pub(super) async fn audit(
    State(state): State<AppState>,
    Extension(identity): Extension<RequestIdentity>,
    QueryParams(query): QueryParams<AuditQuery>,
) -> ApiResult<Json<app::accounts::AuditPage>> {
    Ok(Json(
        state
            .instance
            .accounts
            .audit_page(caller(&identity)?, &query)
            .await?,
    ))
}
