//! Pushed authorization requests (RFC 9126): the authorization request's
//! parameters go to the provider over the back channel, authenticated like
//! a token request, and the link a person opens carries only the
//! `request_uri` the provider answers (and `client_id`). Nothing of the
//! request shows in the browser, and the provider knows the client before
//! the person arrives.

use chrono::Duration;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::Value;
use url::Url;

use super::client_auth::{ClientAuth, ClientAuthMethod};
use super::grant::{Form, GrantError};
use super::outbound::{self, OutboundError};
use super::token_response::{self, ProviderFault, ResponseShape};

/// What the provider answered a pushed request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    /// The reference the link carries.
    pub request_uri: String,
    /// How long the reference stays valid.
    pub expires_in: Duration,
}

/// Pushes `request` (the authorization request's parameters) to `url`,
/// authenticated as `auth` says.
pub async fn push(
    client: &reqwest::Client,
    url: &Url,
    auth: &ClientAuth,
    request: Form,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PushedRequest, GrantError> {
    // The client authentication names the client itself (in the body or
    // the Authorization header); the request's own client_id would repeat it.
    let mut form: Form = request
        .into_iter()
        .filter(|(k, _)| k != "client_id")
        .collect();
    let authorization = auth.apply(&mut form, now)?;
    if auth.method == ClientAuthMethod::ClientSecretBasic {
        form.push(("client_id".into(), auth.client_id.clone()));
    }
    let mut builder = client
        .post(url.clone())
        .header(ACCEPT, "application/json")
        .form(&form);
    if let Some(value) = authorization {
        builder = builder.header(AUTHORIZATION, outbound::authorization_header(&value)?);
    }
    let request = builder
        .build()
        .map_err(|e| OutboundError::Other(e.to_string()))?;
    let raw = outbound::send(client, request).await?;
    read(raw.status, &raw.body)
}

/// Reads the provider's answer: `201` with `request_uri` and `expires_in`,
/// else its OAuth error.
pub fn read(status: u16, body: &[u8]) -> Result<PushedRequest, GrantError> {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let request_uri = value
        .as_ref()
        .and_then(|v| v.get("request_uri"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty() && u.len() <= 2048);
    match request_uri {
        Some(request_uri) if (200..300).contains(&status) => {
            let secs = value
                .as_ref()
                .and_then(|v| v.get("expires_in"))
                .and_then(Value::as_i64)
                .filter(|s| *s > 0)
                .unwrap_or(60)
                .min(86_400);
            Ok(PushedRequest {
                request_uri: request_uri.to_owned(),
                expires_in: Duration::seconds(secs),
            })
        }
        _ => Err(
            match token_response::parse(status, body, ResponseShape::default()) {
                Err(fault) => fault,
                Ok(_) => ProviderFault::Malformed {
                    http_status: status,
                    reason: "an answer without request_uri".into(),
                },
            }
            .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_rfc_9126_says() {
        let ok = read(
            201,
            br#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":90}"#,
        )
        .unwrap();
        assert_eq!(ok.request_uri, "urn:ietf:params:oauth:request_uri:abc");
        assert_eq!(ok.expires_in, Duration::seconds(90));
        let e = read(
            400,
            br#"{"error":"invalid_request","error_description":"no"}"#,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "invalid_request: no");
        assert!(read(201, br#"{"expires_in":90}"#).is_err());
        assert!(read(502, b"<html>").is_err());
    }
}
