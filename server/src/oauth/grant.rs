//! Token endpoint requests (every grant), and revocation, built by the
//! `oauth2` crate's client and sent through Quiver's guarded client
//! ([`super::transport`]); the answers are read by Quiver's reader.

use std::collections::BTreeMap;

use url::Url;

use std::borrow::Cow;

use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, AuthType, AuthorizationCode, ClientId, ClientSecret, PkceCodeVerifier,
    RedirectUrl, RefreshToken, ResourceOwnerPassword, ResourceOwnerUsername, RevocationUrl,
    StandardDeviceAuthorizationResponse, StandardRevocableToken, TokenUrl,
};

use super::client_auth::{ClientAuth, ClientAuthError, ClientAuthMethod};
use super::outbound::OutboundError;
use super::params;
use super::token_response::{self, ProviderFault, ResponseShape, TokenSet};
use super::transport::{self, Transport};
use app::providers::RevocationFormat;

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
    /// The crate's client for this endpoint and client authentication,
    /// and the extra parameters the authentication adds.
    fn oauth_client(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(OAuthClient, Form), GrantError> {
        let (client, extra) = crate_client(self.auth, now)?;
        Ok((
            client.set_token_uri(TokenUrl::from_url(self.url.clone())),
            extra,
        ))
    }

    /// Sends `grant` (the grant's own parameters, then scope, resource and
    /// the like) and parses the answer. The grant is built by the crate's
    /// request for its type; the provider's and the token's extra values
    /// follow, never repeating or replacing a parameter Quiver sets.
    pub async fn request(
        &self,
        grant: Vec<(String, String)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<TokenSet, GrantError> {
        self.request_with(grant, now, &Transport::new(self.client))
            .await
    }

    /// [`TokenEndpoint::request`] through `transport`.
    async fn request_with(
        &self,
        grant: Vec<(String, String)>,
        now: chrono::DateTime<chrono::Utc>,
        transport: &Transport<'_>,
    ) -> Result<TokenSet, GrantError> {
        let extra_values = params::merge(&grant, self.provider_params, self.token_params);
        let (client, auth_extra) = self.oauth_client(now)?;
        let (typed, rest) = TypedGrant::split(grant);
        let extra: Vec<(String, String)> = rest
            .into_iter()
            .chain(extra_values)
            .chain(auth_extra)
            .collect();
        let http = transport;
        let raw = match typed {
            TypedGrant::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
            } => {
                let redirect = RedirectUrl::new(redirect_uri)
                    .map_err(|e| OutboundError::Other(format!("the redirect URI: {e}")))?;
                let mut request = client
                    .exchange_code(AuthorizationCode::new(code))
                    .set_redirect_uri(Cow::Owned(redirect));
                if let Some(verifier) = verifier {
                    request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier));
                }
                for (k, v) in extra {
                    request = request.add_extra_param(k, v);
                }
                let result = request.request_async(http).await;
                transport::outcome(transport, result)?
            }
            TypedGrant::ClientCredentials => {
                let mut request = client.exchange_client_credentials();
                for (k, v) in extra {
                    request = request.add_extra_param(k, v);
                }
                let result = request.request_async(http).await;
                transport::outcome(transport, result)?
            }
            TypedGrant::Password { username, password } => {
                let username = ResourceOwnerUsername::new(username);
                let password = ResourceOwnerPassword::new(password);
                let mut request = client.exchange_password(&username, &password);
                for (k, v) in extra {
                    request = request.add_extra_param(k, v);
                }
                let result = request.request_async(http).await;
                transport::outcome(transport, result)?
            }
            TypedGrant::RefreshToken { refresh_token } => {
                let refresh_token = RefreshToken::new(refresh_token);
                let mut request = client.exchange_refresh_token(&refresh_token);
                for (k, v) in extra {
                    request = request.add_extra_param(k, v);
                }
                let result = request.request_async(http).await;
                transport::outcome(transport, result)?
            }
            TypedGrant::DeviceCode { device_code } => {
                // The crate polls a device code in a loop of its own; the
                // transport sends its first request only, and the
                // scheduler polls again when the provider says.
                let details: StandardDeviceAuthorizationResponse =
                    serde_json::from_value(serde_json::json!({
                        "device_code": device_code,
                        "user_code": "-",
                        "verification_uri": self.url.as_str(),
                        "expires_in": 3600,
                        "interval": 1,
                    }))
                    .map_err(|e| OutboundError::Other(e.to_string()))?;
                let mut request = client.exchange_device_access_token(&details);
                for (k, v) in extra {
                    request = request.add_extra_param(k, v);
                }
                // Its loop ends after the one request: once it went out,
                // the crate's clock is past any timeout.
                let started = now;
                let result = request
                    .set_time_fn(move || {
                        if transport.called() {
                            started + chrono::Duration::days(3650)
                        } else {
                            started
                        }
                    })
                    .request_async(
                        http,
                        |_| std::future::ready(()),
                        Some(std::time::Duration::from_secs(3600)),
                    )
                    .await;
                transport::outcome(transport, result)?
            }
            TypedGrant::Other(form) => {
                return Err(GrantError::Outbound(OutboundError::Other(format!(
                    "no grant of type {:?}",
                    form.iter()
                        .find(|(k, _)| k == "grant_type")
                        .map(|(_, v)| v.as_str())
                        .unwrap_or_default()
                ))));
            }
        };
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
        format: RevocationFormat,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), GrantError> {
        if url.scheme() != "https" || format == RevocationFormat::Json {
            return self.revoke_by_hand(url, token, hint, format, now).await;
        }
        let (client, auth_extra) = self.oauth_client(now)?;
        let client = client.set_revocation_url(RevocationUrl::from_url(url.clone()));
        let revocable = if hint == "refresh_token" {
            StandardRevocableToken::RefreshToken(RefreshToken::new(token.to_owned()))
        } else {
            StandardRevocableToken::AccessToken(AccessToken::new(token.to_owned()))
        };
        let mut request = client
            .revoke_token(revocable)
            .map_err(|e| OutboundError::Other(e.to_string()))?;
        for (k, v) in auth_extra {
            request = request.add_extra_param(k, v);
        }
        let transport = Transport::new(self.client);
        let result = request.request_async(&transport).await;
        let raw = transport::outcome(&transport, result)?;
        revocation_answer(&raw)
    }

    /// Revocation the crate cannot send, by hand: at a plain-http endpoint
    /// (the crate refuses it, as RFC 7009 asks for TLS; Quiver allows it on
    /// loopback hosts only, where `QUIVER_ALLOW_INSECURE_LOOPBACK` says so),
    /// and as a JSON object `{"token": …}` for providers that want one, the
    /// client's credentials in it where a form would carry them.
    async fn revoke_by_hand(
        &self,
        url: &Url,
        token: &str,
        hint: &str,
        format: RevocationFormat,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), GrantError> {
        let mut fields = vec![("token".to_owned(), token.to_owned())];
        if format == RevocationFormat::Form {
            fields.push(("token_type_hint".to_owned(), hint.to_owned()));
        }
        let authorization = self.auth.apply(&mut fields, now)?;
        let request = self.client.post(url.clone());
        let mut request = match format {
            RevocationFormat::Form => request.form(&fields),
            RevocationFormat::Json => {
                let object: serde_json::Map<String, serde_json::Value> = fields
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
                request
                    .header(reqwest::header::ACCEPT, "application/json")
                    .json(&object)
            }
        };
        if let Some(value) = authorization {
            request = request.header(
                reqwest::header::AUTHORIZATION,
                super::outbound::authorization_header(&value)?,
            );
        }
        let request = request
            .build()
            .map_err(|e| OutboundError::Other(e.to_string()))?;
        let raw = super::outbound::send(self.client, request).await?;
        revocation_answer(&raw)
    }
}

/// A revocation answer: any 2xx is done; an error is reported the way
/// token errors are.
fn revocation_answer(raw: &super::outbound::RawResponse) -> Result<(), GrantError> {
    if (200..300).contains(&raw.status) {
        return Ok(());
    }
    match token_response::parse(raw.status, &raw.body, ResponseShape::default()) {
        Err(fault) => Err(fault.into()),
        Ok(_) => Err(ProviderFault::Malformed {
            http_status: raw.status,
            reason: "an unexpected body".into(),
        }
        .into()),
    }
}

/// The `oauth2` crate's client for `auth`, no endpoint set yet, and the
/// extra parameters the authentication adds (a client assertion, which the
/// crate does not make; `client_id` beside HTTP Basic where the provider
/// wants it).
pub fn crate_client(
    auth: &ClientAuth,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(BasicClient, Form), GrantError> {
    let mut assertion = Form::new();
    // The checks and the assertion: what the method needs is there.
    auth.apply(&mut assertion, now)?;
    let client = BasicClient::new(ClientId::new(auth.client_id.clone()));
    let secret = || {
        auth.client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose().to_owned()))
    };
    let mut extra = Form::new();
    let client = match auth.method {
        ClientAuthMethod::ClientSecretBasic => {
            if auth.client_id_in_body {
                extra.push(("client_id".into(), auth.client_id.clone()));
            }
            let client = client.set_auth_type(AuthType::BasicAuth);
            match secret() {
                Some(s) => client.set_client_secret(s),
                None => client,
            }
        }
        ClientAuthMethod::ClientSecretPost => {
            let client = client.set_auth_type(AuthType::RequestBody);
            match secret() {
                Some(s) => client.set_client_secret(s),
                None => client,
            }
        }
        // The crate names the client in the body; the assertion comes as
        // extra parameters.
        ClientAuthMethod::PrivateKeyJwt => {
            extra.extend(assertion.into_iter().filter(|(k, _)| k != "client_id"));
            client.set_auth_type(AuthType::RequestBody)
        }
        // Mutual TLS proves the client in the handshake.
        ClientAuthMethod::None
        | ClientAuthMethod::TlsClientAuth
        | ClientAuthMethod::SelfSignedTlsClientAuth => client.set_auth_type(AuthType::RequestBody),
    };
    Ok((client, extra))
}

/// The crate's client as Quiver uses it: the token endpoint set, the others
/// per request.
type OAuthClient = oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// A grant's own parameters, typed for the crate's request of its type;
/// the parameters that follow (scope, resource, a code sent again at
/// refresh) stay as they are.
enum TypedGrant {
    AuthorizationCode {
        code: String,
        redirect_uri: String,
        verifier: Option<String>,
    },
    ClientCredentials,
    Password {
        username: String,
        password: String,
    },
    RefreshToken {
        refresh_token: String,
    },
    DeviceCode {
        device_code: String,
    },
    /// A grant type Quiver does not send.
    Other(Form),
}

impl TypedGrant {
    /// Splits a grant's form into the typed grant and the rest.
    fn split(form: Form) -> (Self, Form) {
        let mut rest = Form::new();
        fn take(name: &str, rest: &mut Form) -> Option<String> {
            let at = rest.iter().position(|(k, _)| k == name)?;
            Some(rest.remove(at).1)
        }
        rest.extend(form);
        let Some(grant_type) = take("grant_type", &mut rest) else {
            return (Self::Other(rest), Form::new());
        };
        let typed = match grant_type.as_str() {
            "authorization_code" => Self::AuthorizationCode {
                code: take("code", &mut rest).unwrap_or_default(),
                redirect_uri: take("redirect_uri", &mut rest).unwrap_or_default(),
                verifier: take("code_verifier", &mut rest),
            },
            "client_credentials" => Self::ClientCredentials,
            "password" => Self::Password {
                username: take("username", &mut rest).unwrap_or_default(),
                password: take("password", &mut rest).unwrap_or_default(),
            },
            "refresh_token" => Self::RefreshToken {
                refresh_token: take("refresh_token", &mut rest).unwrap_or_default(),
            },
            super::device::GRANT_TYPE => Self::DeviceCode {
                device_code: take("device_code", &mut rest).unwrap_or_default(),
            },
            _ => {
                rest.insert(0, ("grant_type".into(), grant_type));
                return (Self::Other(rest), Form::new());
            }
        };
        (typed, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;
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

    /// What the crate builds for `grant`: the form and the Authorization
    /// header, answered with a token so that the exchange completes.
    async fn sent(
        endpoint: &TokenEndpoint<'_>,
        grant: Vec<(String, String)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (Vec<(String, String)>, Option<String>) {
        let transport = Transport::answering(super::super::outbound::RawResponse {
            status: 200,
            headers: HeaderMap::new(),
            body: br#"{"access_token":"a","token_type":"Bearer"}"#.to_vec(),
        });
        let set = endpoint.request_with(grant, now, &transport).await.unwrap();
        assert_eq!(set.access_token.expose(), "a");
        let request = transport.sent().unwrap();
        let form = url::form_urlencoded::parse(request.body())
            .into_owned()
            .collect();
        let basic = request
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        (form, basic)
    }

    #[tokio::test]
    async fn a_token_value_never_repeats_or_replaces_quivers_parameters() {
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
            let (form, basic) = sent(&endpoint, grant, now).await;
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
