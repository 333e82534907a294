//! OpenID Connect discovery: the endpoints an issuer publishes at
//! `/.well-known/openid-configuration`.

use serde_json::Value;

use super::outbound::{self, OutboundError};
use super::url_policy;

pub use app::providers::Discovered;

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The issuer URL is not acceptable.
    #[error("issuer {0}")]
    BadIssuer(String),
    /// No answer.
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    /// An answer that is not a discovery document.
    #[error("{0}")]
    BadDocument(String),
}

/// Fetches and checks the discovery document of `issuer`.
pub async fn discover(
    client: &reqwest::Client,
    issuer: &str,
    allow_insecure_loopback: bool,
) -> Result<Discovered, DiscoveryError> {
    let issuer_url = url_policy::check_url(issuer, allow_insecure_loopback)
        .map_err(DiscoveryError::BadIssuer)?;
    let base = issuer_url.as_str().trim_end_matches('/');
    let well_known = format!("{base}/.well-known/openid-configuration");
    let request = client
        .get(&well_known)
        .header("accept", "application/json")
        .build()
        .map_err(|e| OutboundError::Other(e.to_string()))?;
    let raw = outbound::send(client, request).await?;
    if raw.status != 200 {
        return Err(DiscoveryError::BadDocument(format!(
            "{well_known} answered HTTP {}",
            raw.status
        )));
    }
    let doc: Value = serde_json::from_slice(&raw.body)
        .map_err(|_| DiscoveryError::BadDocument(format!("{well_known} is not JSON")))?;
    let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
    let stated = text("issuer").unwrap_or_default();
    if !super::id_token::names_issuer(&stated, base) {
        return Err(DiscoveryError::BadDocument(format!(
            "the document names issuer {stated:?}, not {base:?}"
        )));
    }
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "jwks_uri",
        "pushed_authorization_request_endpoint",
        "device_authorization_endpoint",
    ] {
        if let Some(url) = text(key) {
            url_policy::check_url(&url, allow_insecure_loopback)
                .map_err(|e| DiscoveryError::BadDocument(format!("{key} {e}")))?;
        }
    }
    Ok(Discovered {
        issuer: stated,
        authorization_endpoint: text("authorization_endpoint"),
        token_endpoint: text("token_endpoint"),
        revocation_endpoint: text("revocation_endpoint"),
        jwks_uri: text("jwks_uri"),
        authorization_response_iss_parameter_supported: doc
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        token_endpoint_auth_methods_supported: doc
            .get("token_endpoint_auth_methods_supported")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        pushed_authorization_request_endpoint: text("pushed_authorization_request_endpoint"),
        require_pushed_authorization_requests: doc
            .get("require_pushed_authorization_requests")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        device_authorization_endpoint: text("device_authorization_endpoint"),
    })
}
