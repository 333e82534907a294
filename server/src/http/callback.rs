//! `GET|POST /oauth/callback`: where providers send the person back. The
//! page tells the opener window (postMessage) and closes itself.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;

use super::AppState;
use crate::tokens::TokenStatus;
use crate::tokens::authorize::{CallbackOutcome, CallbackParams};

fn nonce() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, nonce: &str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )) {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    response
}

fn outcome_page(outcome: &CallbackOutcome) -> Response {
    let nonce = nonce();
    let ok = outcome.status == TokenStatus::Active;
    let title = if ok {
        "Authorization complete"
    } else {
        "Authorization failed"
    };
    let name = outcome
        .token_name
        .as_deref()
        .map(escape)
        .unwrap_or_default();
    let message = outcome.message.as_deref().map(escape).unwrap_or_default();
    let token_id = serde_json::to_string(&outcome.token_id).unwrap_or_else(|_| "null".into());
    let body = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} · Quiver</title></head>
<body><main><h1 data-testid="callback-title">{title}</h1>
<p>{}</p>{}
<p>You can close this window.</p></main>
<script nonce="{nonce}">
(function () {{
  var message = {{ type: "quiver-oauth-callback", token_id: {token_id}, status: "{}" }};
  if (window.opener) {{ try {{ window.opener.postMessage(message, window.location.origin); }} catch (e) {{}} setTimeout(function () {{ window.close(); }}, 400); }}
}})();
</script></body></html>"#,
        if name.is_empty() {
            String::new()
        } else {
            format!("Token <strong>{name}</strong>.")
        },
        if message.is_empty() {
            String::new()
        } else {
            format!("<p role=\"alert\" data-testid=\"callback-error\">{message}</p>")
        },
        outcome.status,
    );
    page(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        },
        &nonce,
        body,
    )
}

/// The query of a redirect back.
pub(super) async fn callback_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let outcome = state
        .instance
        .tokens
        .callback(params, state.instance.accounts.session_cookie(&headers))
        .await;
    outcome_page(&outcome)
}

/// The fields of a form_post answer.
#[derive(serde::Deserialize)]
pub(super) struct PostedFields {
    #[serde(flatten)]
    params: CallbackParams,
    #[serde(rename = "_quiver_resubmitted", default)]
    resubmitted: Option<String>,
}

/// A `response_mode=form_post` answer.
pub(super) async fn callback_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<PostedFields>,
) -> Response {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none");
    let session = state.instance.accounts.session_cookie(&headers);
    if cross_site && session.is_none() && fields.resubmitted.is_none() {
        // The provider's page posted here cross-site, so the SameSite=Lax
        // session cookie stayed behind. Post the same fields again from this
        // origin; that request carries it.
        return resubmit_page(&fields.params);
    }
    let outcome = state.instance.tokens.callback(fields.params, session).await;
    outcome_page(&outcome)
}

fn resubmit_page(p: &CallbackParams) -> Response {
    let nonce = nonce();
    let mut inputs = String::new();
    let named = [
        ("state", &p.state),
        ("code", &p.code),
        ("id_token", &p.id_token),
        ("iss", &p.iss),
        ("error", &p.error),
        ("error_description", &p.error_description),
    ];
    let named = named
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_deref()?)));
    let extra = p.extra.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (name, value) in named.chain(extra) {
        inputs.push_str(&format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            escape(name),
            escape(value)
        ));
    }
    let body = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Finishing authorization · Quiver</title></head>
<body><form id="f" method="post" action="/oauth/callback">{inputs}<input type="hidden" name="_quiver_resubmitted" value="1"><noscript><button type="submit">Continue</button></noscript></form>
<script nonce="{nonce}">document.getElementById("f").submit();</script></body></html>"#
    );
    page(StatusCode::OK, &nonce, body)
}
