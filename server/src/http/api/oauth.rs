//! `/providers` and `/tokens`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use app::error::AppError;
use app::providers::{ProviderInput, ProviderView};
use app::tokens::{DeleteOutcome, ResetInput, TokenInput, TokenPage, TokenView};

use super::error::Renewed;
use super::{ApiError, ApiResult, JsonBody, QueryParams};
use crate::http::AppState;
use crate::http::caller::Authenticated;
use crate::startup::Instance;
use crate::tokens::TokenQuery;

pub(super) async fn list_providers(
    State(state): State<AppState>,
    who: Authenticated,
) -> ApiResult<Json<Value>> {
    let items = state.instance.providers.list(&who.caller).await?;
    Ok(Json(json!({"total": items.len(), "items": items})))
}

pub(super) async fn create_provider(
    State(state): State<AppState>,
    who: Authenticated,
    JsonBody(input): JsonBody<ProviderInput>,
) -> ApiResult<(StatusCode, Json<ProviderView>)> {
    let view = state
        .instance
        .providers
        .create(&who.caller, input, who.client_addr)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub(super) async fn get_provider(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<ProviderView>> {
    Ok(Json(state.instance.providers.get(&who.caller, &id).await?))
}

pub(super) async fn update_provider(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ProviderInput>,
) -> ApiResult<Json<ProviderView>> {
    Ok(Json(
        state
            .instance
            .providers
            .update(&who.caller, &id, input, who.client_addr)
            .await?,
    ))
}

#[derive(Deserialize)]
pub(super) struct DeleteProviderQuery {
    #[serde(default)]
    force: bool,
}

pub(super) async fn delete_provider(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<DeleteProviderQuery>,
) -> ApiResult<Json<Value>> {
    let (deleted_tokens, revocations) = state
        .instance
        .tokens
        .delete_provider(&who.caller, &id, query.force, who.client_addr)
        .await?;
    Ok(Json(json!({
        "id": id,
        "deleted_tokens": deleted_tokens,
        "revocations": revocations,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiscoverRequest {
    issuer: String,
}

pub(super) async fn discover(
    State(state): State<AppState>,
    who: Authenticated,
    JsonBody(body): JsonBody<DiscoverRequest>,
) -> ApiResult<Json<Value>> {
    let found = state
        .instance
        .providers
        .discover(&who.caller, &body.issuer)
        .await?;
    Ok(Json(
        serde_json::to_value(found).map_err(|_| AppError::Internal)?,
    ))
}

pub(super) async fn list_tokens(
    State(state): State<AppState>,
    who: Authenticated,
    QueryParams(query): QueryParams<TokenQuery>,
) -> ApiResult<Json<TokenPage>> {
    Ok(Json(
        state
            .instance
            .tokens
            .tokens
            .list(&who.caller, &query)
            .await?,
    ))
}

pub(super) async fn create_token(
    State(state): State<AppState>,
    who: Authenticated,
    JsonBody(input): JsonBody<TokenInput>,
) -> ApiResult<(StatusCode, Json<TokenView>)> {
    let view = state
        .instance
        .tokens
        .create(&who.caller, input, who.client_addr)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub(super) async fn get_token(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenView>> {
    let engine = &state.instance.tokens;
    let t = engine.tokens.visible(&who.caller, &id).await?;
    Ok(Json(engine.tokens.view(&t, None).await?))
}

pub(super) async fn update_token(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<TokenInput>,
) -> ApiResult<Json<TokenView>> {
    Ok(Json(
        state
            .instance
            .tokens
            .update(&who.caller, &id, input, who.client_addr)
            .await?,
    ))
}

pub(super) async fn delete_token(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<DeleteOutcome>> {
    Ok(Json(
        state
            .instance
            .tokens
            .delete(&who.caller, &id, who.client_addr)
            .await?,
    ))
}

pub(super) async fn request_token(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Renewed> {
    Ok(Renewed(
        state
            .instance
            .tokens
            .request(&who.caller, &id, who.client_addr)
            .await?,
    ))
}

pub(super) async fn refresh_token(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Renewed> {
    Ok(Renewed(
        state
            .instance
            .tokens
            .refresh(&who.caller, &id, who.client_addr)
            .await?,
    ))
}

pub(super) async fn reset_token(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Renewed> {
    // The body is optional here: no body means "keep everything".
    let overrides: ResetInput = if body.iter().all(u8::is_ascii_whitespace) {
        ResetInput::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::invalid("body", format!("is not a reset request: {e}")))?
    };
    Ok(Renewed(
        state
            .instance
            .tokens
            .reset(&who.caller, &id, overrides, who.client_addr)
            .await?,
    ))
}

pub(super) async fn auth_link(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let url = state
        .instance
        .tokens
        .auth_link(&who.caller, &id, who.client_addr)
        .await?;
    Ok(Json(json!({ "url": url })))
}

/// `GET /api/v1/tokens/{id}/access-token`, served outside the router's
/// layers (see [`crate::http::router`]): it identifies the caller as the
/// identity middleware does and adds the same security headers.
pub(crate) async fn access_token(
    State(instance): State<Arc<Instance>>,
    id: Result<Path<String>, PathRejection>,
    request: axum::extract::Request,
) -> Response {
    let started = std::time::Instant::now();
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => {
            let mut response = rejection.into_response();
            crate::http::security::add_security_headers(response.headers_mut());
            crate::http::security::add_hsts(response.headers_mut(), instance.config.is_https());
            return response;
        }
    };
    let identity = crate::auth::identify_sender(&instance.accounts, &request).await;
    let engine = &instance.tokens;
    let result = match identity.caller.as_ref() {
        Some(caller) => engine.access_token(caller, &id, identity.client_addr).await,
        None => Err(AppError::Unauthenticated),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    engine.metrics.access_token(outcome, started.elapsed());
    let mut response = match result {
        Ok(view) => Json(view).into_response(),
        Err(e) => ApiError(e).into_response(),
    };
    // An access token is a credential: no cache along the way may keep it.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    crate::http::security::add_security_headers(response.headers_mut());
    crate::http::security::add_hsts(response.headers_mut(), instance.config.is_https());
    response
}

/// `GET /oauth/jwks/{provider_id}`: public, for registration at the provider.
pub(crate) async fn jwks(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.instance.providers.jwks(&id).await?))
}
