//! `/session`, `/users`, `/api-keys`, `/audit`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use app::accounts::AuditQuery;

use super::{ApiError, ApiResult, JsonBody, QueryParams};
use crate::account::ops::user_view;
use crate::http::AppState;
use crate::http::caller::{Authenticated, ClientAddr};
use crate::secret::SecretString;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    email: String,
    password: String,
}

pub(super) async fn login(
    State(state): State<AppState>,
    ClientAddr(client_addr): ClientAddr,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<LoginRequest>,
) -> ApiResult<Response> {
    let accounts = &state.instance.accounts;
    let (user, token) = accounts
        .login(
            &body.email,
            SecretString::new(body.password),
            accounts.session_cookie(&headers),
            client_addr,
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

pub(super) async fn whoami(who: Authenticated) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!({ "user": user_view(&who.caller.user) })))
}

pub(super) async fn logout(State(state): State<AppState>, who: Option<Authenticated>) -> Response {
    let accounts = &state.instance.accounts;
    if let Some(who) = who {
        accounts.logout(&who.caller, who.client_addr).await;
    }
    (
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, accounts.clear_cookie())],
    )
        .into_response()
}

pub(super) async fn list_users(
    State(state): State<AppState>,
    who: Authenticated,
) -> ApiResult<Json<serde_json::Value>> {
    let users = state.instance.accounts.list_users(&who.caller).await?;
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
    who: Authenticated,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<(StatusCode, Json<app::accounts::CreatedUser>)> {
    let created = state
        .instance
        .accounts
        .create_user(
            &who.caller,
            &body.email,
            body.password.map(SecretString::new),
            &body.role,
            who.client_addr,
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
    who: Authenticated,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateUser>,
) -> ApiResult<Json<app::accounts::UserView>> {
    Ok(Json(
        state
            .instance
            .accounts
            .update_user(
                &who.caller,
                &id,
                body.role.as_deref(),
                body.disabled,
                who.client_addr,
            )
            .await?,
    ))
}

pub(super) async fn revoke_sessions(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let revoked = state
        .instance
        .accounts
        .revoke_sessions(&who.caller, &id, who.client_addr)
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
    who: Authenticated,
    QueryParams(query): QueryParams<KeyListQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut keys = state
        .instance
        .accounts
        .list_api_keys(&who.caller, query.all)
        .await?;
    state
        .instance
        .tokens
        .tokens
        .usage
        .count_key_uses(&mut keys)
        .await
        .map_err(crate::tokens::db_error)?;
    Ok(Json(json!({ "total": keys.len(), "items": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    name: String,
}

pub(super) async fn create_api_key(
    State(state): State<AppState>,
    who: Authenticated,
    JsonBody(body): JsonBody<CreateKey>,
) -> ApiResult<(StatusCode, Json<app::accounts::CreatedApiKey>)> {
    let created = state
        .instance
        .accounts
        .create_api_key(&who.caller, &body.name, who.client_addr)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(super) async fn revoke_api_key(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<app::accounts::ApiKeyView>> {
    Ok(Json(
        state
            .instance
            .accounts
            .revoke_api_key(&who.caller, &id, who.client_addr)
            .await?,
    ))
}

pub(super) async fn audit(
    State(state): State<AppState>,
    who: Authenticated,
    QueryParams(query): QueryParams<AuditQuery>,
) -> ApiResult<Json<app::accounts::AuditPage>> {
    Ok(Json(
        state
            .instance
            .accounts
            .audit_page(&who.caller, &query)
            .await?,
    ))
}
