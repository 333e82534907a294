//! Token endpoint requests (every grant), and revocation.

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use url::Url;

use super::client_auth::{ClientAuth, ClientAuthError};
use super::outbound::{self, OutboundError};
use super::token_response::{self, ProviderFault, TokenSet};

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
fn sensitive(value: &crate::secret::SecretString) -> Result<HeaderValue, OutboundError> {
    let mut header = HeaderValue::from_str(value.expose())
        .map_err(|_| OutboundError::Other("invalid Authorization header".into()))?;
    header.set_sensitive(true);
    Ok(header)
}

/// Where and how to send a token request.
pub struct TokenEndpoint<'a> {
    /// The token (or refresh) endpoint.
    pub url: &'a Url,
    /// The HTTP client for the provider.
    pub client: &'a reqwest::Client,
    /// Client authentication.
    pub auth: &'a ClientAuth,
    /// Provider-wide extra token parameters.
    pub extra: &'a [(String, String)],
    /// Whether `expires_in` is in milliseconds.
    pub expires_in_millis: bool,
}

impl TokenEndpoint<'_> {
    /// Sends `grant` (the grant's own parameters) and parses the answer.
    pub async fn request(
        &self,
        grant: Vec<(String, String)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<TokenSet, GrantError> {
        let mut form = grant;
        for (k, v) in self.extra {
            if !form.iter().any(|(key, _)| key == k) {
                form.push((k.clone(), v.clone()));
            }
        }
        let authorization = self.auth.apply(&mut form, now)?;
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
        token_response::parse(raw.status, &raw.body, self.expires_in_millis).map_err(|fault| {
            match retry_after(&raw.headers, now) {
                Some(retry_after_secs) => GrantError::RetryAfter {
                    fault,
                    retry_after_secs,
                },
                None => GrantError::Provider(fault),
            }
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
        match token_response::parse(raw.status, &raw.body, false) {
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
