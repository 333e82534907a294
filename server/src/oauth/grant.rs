//! Token endpoint requests (every grant), and revocation.

use std::collections::BTreeMap;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use url::Url;

use super::client_auth::{ClientAuth, ClientAuthError};
use super::outbound::{self, OutboundError};
use super::params;
use super::token_response::{self, ProviderFault, ResponseShape, TokenSet};
use crate::secret::SecretString;

/// Why a token request failed.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The request could not be authenticated (a configuration problem).
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
    /// No answer (timeout, connection refused, refused address, too large).
    #[error(transparent)]
    Outbound(#[from] OutboundError),
    /// The provider answered with an error, or with something unusable.
    #[error(transparent)]
    Provider(#[from] ProviderFault),
    /// The provider answered with an error and said when to try again
    /// (`Retry-After`).
    #[error("{fault} (the provider asks to retry after {retry_after_secs} s)")]
    RetryAfter {
        /// What the provider answered.
        fault: ProviderFault,
        /// Seconds to wait, at most a day.
        retry_after_secs: u64,
    },
}

/// Longest `Retry-After` honoured; longer requests are cut to this.
const MAX_RETRY_AFTER_SECS: u64 = 86_400;

/// Reads `Retry-After` (delay seconds or an HTTP date) relative to `now`.
pub fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<u64> {
    let text = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let secs = match text.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
            u64::try_from((at.with_timezone(&chrono::Utc) - now).num_seconds()).unwrap_or(0)
        }
    };
    Some(secs.min(MAX_RETRY_AFTER_SECS))
}

/// A header value that HTTP logging and debugging never show.
fn sensitive(value: &SecretString) -> Result<HeaderValue, OutboundError> {
    let mut header = HeaderValue::from_str(value.expose())
        .map_err(|_| OutboundError::Other("invalid Authorization header".into()))?;
    header.set_sensitive(true);
    Ok(header)
}

/// The fields of a form body, in the order they are sent.
pub type Form = Vec<(String, String)>;

/// Where and how to send a token request.
pub struct TokenEndpoint<'a> {
    /// The token (or refresh) endpoint.
    pub url: &'a Url,
    /// The HTTP client for the provider.
    pub client: &'a reqwest::Client,
    /// Client authentication.
    pub auth: &'a ClientAuth,
    /// The provider's extra token parameters.
    pub provider_params: &'a BTreeMap<String, String>,
    /// The token's extra values; the provider's win over them.
    pub token_params: &'a BTreeMap<String, String>,
    /// How the provider shapes its answers.
    pub shape: ResponseShape<'a>,
}

impl TokenEndpoint<'_> {
    /// The form of a token request: Quiver's `grant` (with scope and
    /// resource), then the provider's extra parameters, then the token's
    /// that the provider does not set, then the client authentication.
    /// Extra values never repeat or replace a parameter Quiver sets
    /// ([`params::merge`]), so the client is always the one
    /// [`ClientAuth`] names. Answers the form and the Authorization header.
    pub fn form(
        &self,
        grant: Vec<(String, String)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Form, Option<SecretString>), GrantError> {
        let mut form = grant;
        let extra = params::merge(&form, self.provider_params, self.token_params);
        form.extend(extra);
        let authorization = self.auth.apply(&mut form, now)?;
        Ok((form, authorization))
    }

    /// Sends `grant` (the grant's own parameters) and parses the answer.
    pub async fn request(
        &self,
        grant: Vec<(String, String)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<TokenSet, GrantError> {
        let (form, authorization) = self.form(grant, now)?;
        let mut request = self
            .client
            .post(self.url.clone())
            .header(ACCEPT, "application/json")
            .form(&form);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, sensitive(&value)?);
        }
        let request = request
            .build()
            .map_err(|e| OutboundError::Other(e.to_string()))?;
        let raw = outbound::send(self.client, request).await?;
        token_response::parse(raw.status, &raw.body, self.shape).map_err(|fault| match retry_after(
            &raw.headers,
            now,
        ) {
            Some(retry_after_secs) => GrantError::RetryAfter {
                fault,
                retry_after_secs,
            },
            None => GrantError::Provider(fault),
        })
    }

    /// Revokes a token (RFC 7009) at `url`, authenticating the same way.
    pub async fn revoke(
        &self,
        url: &Url,
        token: &str,
        hint: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), GrantError> {
        let mut form = vec![
            ("token".to_owned(), token.to_owned()),
            ("token_type_hint".to_owned(), hint.to_owned()),
        ];
        let authorization = self.auth.apply(&mut form, now)?;
        let mut request = self.client.post(url.clone()).form(&form);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, sensitive(&value)?);
        }
        let request = request
            .build()
            .map_err(|e| OutboundError::Other(e.to_string()))?;
        let raw = outbound::send(self.client, request).await?;
        if (200..300).contains(&raw.status) {
            return Ok(());
        }
        // An error answer: report it the way token errors are reported.
        match token_response::parse(raw.status, &raw.body, ResponseShape::default()) {
            Err(fault) => Err(fault.into()),
            Ok(_) => Err(ProviderFault::Malformed {
                http_status: raw.status,
                reason: "an unexpected body".into(),
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    /// Every value of `name` in a form.
    fn all<'f>(form: &'f [(String, String)], name: &str) -> Vec<&'f str> {
        form.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn a_token_value_never_repeats_or_replaces_quivers_parameters() {
        use super::super::client_auth::ClientAuthMethod;
        use super::super::signing_key::SigningKey;

        let url = Url::parse("https://as.example/token").unwrap();
        let client = reqwest::Client::new();
        let provider: BTreeMap<String, String> = [("audience", "provider-api")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // As a row stored before reserved names were refused could hold.
        let token: BTreeMap<String, String> = [
            ("audience", "token-api"),
            ("client_id", "someone-else"),
            ("Client_Assertion", "forged"),
            ("grant_type", "password"),
            ("redirect_uri", "https://evil.example/cb"),
            ("tenant", "blue"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let now = chrono::Utc::now();
        for method in [
            ClientAuthMethod::ClientSecretPost,
            ClientAuthMethod::ClientSecretBasic,
            ClientAuthMethod::None,
            ClientAuthMethod::PrivateKeyJwt,
        ] {
            let auth = ClientAuth {
                method,
                client_id: "the-provider-client".into(),
                client_secret: Some(SecretString::new("s3cret")),
                key: Some(SigningKey::generate(Some("k1"))),
                audience: "https://as.example".into(),
                client_id_in_body: false,
            };
            let endpoint = TokenEndpoint {
                url: &url,
                client: &client,
                auth: &auth,
                provider_params: &provider,
                token_params: &token,
                shape: ResponseShape::default(),
            };
            let grant = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
            let (form, basic) = endpoint.form(grant, now).unwrap();
            assert_eq!(
                all(&form, "grant_type"),
                ["client_credentials"],
                "{method:?}"
            );
            assert_eq!(
                all(&form, "audience"),
                ["provider-api"],
                "{method:?}: the provider's win"
            );
            assert_eq!(all(&form, "tenant"), ["blue"], "{method:?}");
            assert!(all(&form, "redirect_uri").is_empty(), "{method:?}");
            match method {
                ClientAuthMethod::ClientSecretBasic => {
                    assert!(basic.is_some());
                    assert!(all(&form, "client_id").is_empty(), "{form:?}");
                }
                _ => assert_eq!(
                    all(&form, "client_id"),
                    ["the-provider-client"],
                    "{method:?}"
                ),
            }
            let assertions = all(&form, "client_assertion");
            if method == ClientAuthMethod::PrivateKeyJwt {
                assert_eq!(assertions.len(), 1);
                assert_ne!(assertions[0], "forged");
            } else {
                assert!(assertions.is_empty(), "{method:?}");
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_caps_them() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(retry_after(&headers("120"), now), Some(120));
        assert_eq!(
            retry_after(&headers("Sun, 29 Nov 2026 12:01:30 GMT"), now),
            Some(90)
        );
        assert_eq!(
            retry_after(&headers("Sun, 29 Nov 2026 11:00:00 GMT"), now),
            Some(0),
            "a date in the past means now"
        );
        assert_eq!(retry_after(&headers("9999999"), now), Some(86_400));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
