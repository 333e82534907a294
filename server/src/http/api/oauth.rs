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

/// A new provider's fields. With a `template`, the template's inputs may
/// also come as top-level fields (`{"template": "okta", "domain": …}`) or
/// under `inputs`, besides `template_inputs`.
fn provider_input(mut body: Value) -> Result<ProviderInput, ApiError> {
    if let Some(object) = body.as_object_mut()
        && object.get("template").is_some_and(Value::is_string)
    {
        let known: Vec<String> = match serde_json::to_value(ProviderInput::default()) {
            Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let mut inputs = match object.remove("template_inputs") {
            Some(Value::Object(given)) => given,
            Some(Value::Null) | None => serde_json::Map::new(),
            Some(_) => {
                return Err(AppError::invalid("template_inputs", "must be an object").into());
            }
        };
        match object.remove("inputs") {
            Some(Value::Object(given)) => inputs.extend(given),
            Some(Value::Null) | None => {}
            Some(_) => return Err(AppError::invalid("inputs", "must be an object").into()),
        }
        let extra: Vec<String> = object
            .keys()
            .filter(|k| !known.contains(k))
            .cloned()
            .collect();
        for key in extra {
            if let Some(value) = object.remove(&key) {
                inputs.insert(key, value);
            }
        }
        if !inputs.is_empty() {
            object.insert("template_inputs".into(), Value::Object(inputs));
        }
    }
    serde_json::from_value(body).map_err(|e| {
        ApiError(AppError::Validation {
            field: None,
            message: e.to_string(),
        })
    })
}

pub(super) async fn create_provider(
    State(state): State<AppState>,
    who: Authenticated,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<ProviderView>)> {
    let input = provider_input(body)?;
    let view = state
        .instance
        .providers
        .create(&who.caller, input, who.client_addr)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The catalogue of well-known providers.
pub(super) async fn list_provider_templates(_who: Authenticated) -> Json<Value> {
    let items = crate::providers::templates::all();
    Json(json!({"total": items.len(), "items": items}))
}

/// One template of the catalogue.
pub(super) async fn get_provider_template(
    _who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<app::providers::ProviderTemplate>> {
    crate::providers::templates::find(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("the provider template {id:?}")).into())
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

/// `POST /api/v1/providers/{id}/promote-secret`: the next client secret
/// becomes the current one.
pub(super) async fn promote_provider_secret(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<ProviderView>> {
    Ok(Json(
        state
            .instance
            .providers
            .promote_secret(&who.caller, &id, who.client_addr)
            .await?,
    ))
}

/// `POST /api/v1/tokens/{id}/promote-secret`: the token's own next client
/// secret becomes the current one.
pub(super) async fn promote_token_secret(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<app::tokens::TokenView>> {
    Ok(Json(
        state
            .instance
            .tokens
            .promote_secret(&who.caller, &id, who.client_addr)
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

/// The QR code of a pending device authorization's page (with the code
/// in it when the provider gives such a link), as SVG.
pub(super) async fn verification_qr(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let engine = &state.instance.tokens;
    let t = engine.tokens.visible(&who.caller, &id).await?;
    let pending = crate::tokens::device_authorization(&t)
        .ok_or_else(|| AppError::NotFound("a device authorization waiting on this token".into()))?;
    let target = pending
        .verification_uri_complete
        .unwrap_or(pending.verification_uri);
    let code = qrcode::QrCode::new(target.as_bytes()).map_err(|e| {
        AppError::BadRequest(format!("the verification link makes no QR code: {e}"))
    })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(160, 160)
        .build();
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
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

/// `POST /api/v1/tokens/{id}/test`: the token's connection test.
pub(super) async fn test_connection(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<app::tokens::ConnectionTest>> {
    let test = state
        .instance
        .tokens
        .test_connection(&who.caller, &id, who.client_addr)
        .await?;
    Ok(Json(test))
}

/// `GET /api/v1/overview`: the caller's tokens by status, the ones that
/// need attention, and the renewals of the last day and month.
pub(super) async fn overview(
    State(state): State<AppState>,
    who: Authenticated,
) -> ApiResult<Json<app::overview::Overview>> {
    Ok(Json(state.instance.tokens.overview(&who.caller).await?))
}

/// `GET /api/v1/tokens/{id}/usage`: when the token was last handed out and
/// to whom, and how often per day over the last 30 days.
pub(super) async fn token_usage(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tokens = &state.instance.tokens.tokens;
    let model = tokens.visible(&who.caller, &id).await?;
    let (usage, days) = tokens.usage_of(&model).await?;
    let days: Vec<Value> = days
        .into_iter()
        .map(|(date, uses)| json!({ "date": date.to_string(), "uses": uses }))
        .collect();
    Ok(Json(json!({
        "token_id": model.id,
        "last_used_at": usage.last_used_at.map(crate::account::ops::rfc3339),
        "last_used_by": usage.last_used_by,
        "uses_24h": usage.uses_24h,
        "days": days,
    })))
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
        Ok(hand_out) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            hand_out.body(),
        )
            .into_response(),
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
