//! OAuth providers as the REST API and the screens see them. Secrets are
//! write-only: inputs take them, views say only whether they are set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::{WireName, wire_name_impls};

/// How a revocation request carries the token: a form as RFC 7009 says,
/// or a JSON object `{"token": …}` (Intuit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
#[cfg_attr(feature = "ssr", sea_orm(value_type = "String"))]
#[serde(rename_all = "snake_case")]
pub enum RevocationFormat {
    /// `application/x-www-form-urlencoded` with `token` and `token_type_hint`.
    #[default]
    Form,
    /// `application/json` with `token`, client credentials in the object
    /// where they would be in the form.
    Json,
}

impl WireName for RevocationFormat {
    const ALL: &'static [Self] = &[Self::Form, Self::Json];
    const FIELD: &'static str = "revocation_format";

    fn as_str(self) -> &'static str {
        match self {
            Self::Form => "form",
            Self::Json => "json",
        }
    }
}
wire_name_impls!(RevocationFormat);

/// How the client proves itself at the token, refresh and revocation
/// endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
#[cfg_attr(feature = "ssr", sea_orm(value_type = "String"))]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// Client id and secret in the form body.
    ClientSecretPost,
    /// A signed JWT assertion (RFC 7523).
    PrivateKeyJwt,
    /// A public client: the client id only.
    None,
    /// Mutual TLS with a certificate from a CA the provider trusts
    /// (RFC 8705 §2.1).
    TlsClientAuth,
    /// Mutual TLS with a self-signed certificate registered at the provider
    /// (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// Whether the method proves the client with the provider's key (a
    /// signed assertion or a TLS client certificate): the key is for the
    /// provider's client only, so tokens use the provider's keys.
    pub fn uses_provider_key(self) -> bool {
        matches!(
            self,
            Self::PrivateKeyJwt | Self::TlsClientAuth | Self::SelfSignedTlsClientAuth
        )
    }

    /// Whether the client presents a TLS client certificate (RFC 8705).
    pub fn is_mutual_tls(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

impl WireName for ClientAuthMethod {
    const ALL: &'static [Self] = &[
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::None,
        Self::TlsClientAuth,
        Self::SelfSignedTlsClientAuth,
    ];
    const FIELD: &'static str = "client_auth_method";

    fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }
}
wire_name_impls!(ClientAuthMethod);

/// Which of a client's two secrets: the current one, or the next one an
/// admin added ahead of a rotation at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
#[cfg_attr(feature = "ssr", sea_orm(value_type = "String"))]
#[serde(rename_all = "snake_case")]
pub enum SecretSlot {
    Current,
    Next,
}

impl SecretSlot {
    /// The other secret.
    pub fn other(self) -> Self {
        match self {
            Self::Current => Self::Next,
            Self::Next => Self::Current,
        }
    }
}

impl WireName for SecretSlot {
    const ALL: &'static [Self] = &[Self::Current, Self::Next];
    const FIELD: &'static str = "secret";

    fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Next => "next",
        }
    }
}
wire_name_impls!(SecretSlot);

/// A client's secrets as shown: whether each is set, their expiry, and
/// which one the provider last accepted. Never a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRotation {
    pub has_next_client_secret: bool,
    /// RFC 3339.
    pub client_secret_expires_at: Option<String>,
    pub next_client_secret_expires_at: Option<String>,
    /// The secret the provider last accepted, once known.
    pub secret_in_use: Option<SecretSlot>,
    pub secret_in_use_since: Option<String>,
}

/// Creating a provider (all fields) or changing one (absent = unchanged;
/// an empty string clears an optional field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// Unique name.
    pub name: Option<String>,
    /// OpenID issuer URL.
    pub issuer: Option<String>,
    /// Authorization endpoint (interactive flows).
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// Refresh endpoint; the token endpoint when empty.
    pub refresh_endpoint: Option<String>,
    /// Revocation endpoint (RFC 7009).
    pub revocation_endpoint: Option<String>,
    /// JWKS URI (needed for OIDC Hybrid).
    pub jwks_uri: Option<String>,
    /// Default client id (the Consumer Key).
    pub client_id: Option<String>,
    /// Default client secret (the Secret Key); write-only.
    pub client_secret: Option<String>,
    /// The secret that replaces it at the provider's next rotation; tried
    /// when the current one is refused (`invalid_client`). Write-only.
    pub next_client_secret: Option<String>,
    /// When the current secret expires at the provider (RFC 3339 or
    /// `YYYY-MM-DD`); empty clears.
    pub client_secret_expires_at: Option<String>,
    /// When the next secret expires.
    pub next_client_secret_expires_at: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`,
    /// `none`, `tls_client_auth` or `self_signed_tls_client_auth`.
    pub client_auth_method: Option<String>,
    /// PKCS#8 PEM private key for `private_key_jwt`; write-only.
    pub private_key_pem: Option<String>,
    /// Generate a new ES256 key instead of uploading one.
    pub generate_key: Option<bool>,
    /// The key id (`kid`); derived from the key when empty.
    pub key_id: Option<String>,
    /// `RS256`, `PS256` or `ES256`; from the key when empty.
    pub signing_alg: Option<String>,
    /// The key's X.509 certificate (PEM), for providers that register a
    /// certificate; assertions then carry its `x5t#S256`. Empty removes it.
    pub certificate_pem: Option<String>,
    /// Make a self-signed certificate for the key (valid two years).
    pub generate_certificate: Option<bool>,
    /// Assertions also carry the certificate's SHA-1 thumbprint (`x5t`), as
    /// Microsoft Entra ID wants.
    pub send_sha1_thumbprint: Option<bool>,
    /// The client assertion's `aud`; the issuer, else the token endpoint, when empty.
    pub assertion_audience: Option<String>,
    /// PKCE S256 for Authorization Code (default on).
    pub pkce: Option<bool>,
    /// Joins scopes in requests (default a space).
    pub scope_separator: Option<String>,
    /// Lifetime assumed when a response has no `expires_in`.
    pub default_lifetime_seconds: Option<i64>,
    /// `seconds` (default) or `milliseconds`: the unit of `expires_in`.
    pub expires_in_unit: Option<String>,
    /// Extra parameters for authorization requests.
    pub authorize_params: Option<BTreeMap<String, String>>,
    /// Extra parameters for token requests.
    pub token_params: Option<BTreeMap<String, String>>,
    /// Connect timeout in ms (default 5000).
    pub connect_timeout_ms: Option<u32>,
    /// Total timeout in ms (default 30000).
    pub timeout_ms: Option<u32>,
    /// Background refreshes at once, per replica (default 4).
    pub refresh_concurrency: Option<u32>,
    /// Background refreshes started per minute, per replica (default 600;
    /// 0: no limit).
    pub refresh_rate_per_minute: Option<u32>,
    /// The provider sends `iss` in authorization responses (RFC 9207);
    /// discovery tells. When set, an answer without it is refused.
    pub iss_parameter_supported: Option<bool>,
    /// The scope a new token of this provider starts with.
    pub default_scope: Option<String>,
    /// Scopes every token of this provider asks for: added to a token's
    /// own scope that leaves them out (e.g. `offline_access`, without which
    /// no refresh token is issued). Space-separated; `""` clears.
    pub required_scope: Option<String>,
    /// Dotted path of the object holding `access_token` and the other token
    /// fields when the provider nests them (e.g. Slack's `authed_user`).
    pub token_response_path: Option<String>,
    /// Extra answer fields kept with each token and shown (e.g.
    /// Salesforce's `instance_url`).
    pub keep_response_fields: Option<Vec<String>>,
    /// A refresh answers a new refresh token and ends the old one: a
    /// refresh answer without one leaves the token without a refresh token
    /// rather than keeping one the provider no longer takes.
    pub refresh_token_rotates: Option<bool>,
    /// Refreshes do not repeat the token's scope (default on).
    pub omit_scope_on_refresh: Option<bool>,
    /// Refreshes do not send the authorization code again (default on).
    pub omit_code_on_refresh: Option<bool>,
    /// The refresh token is URL-encoded once more before it is sent.
    pub url_encode_refresh_token: Option<bool>,
    /// `client_id` is sent in the body with HTTP Basic too.
    pub send_client_id_in_body: Option<bool>,
    /// Pushed authorization requests (RFC 9126): when set, interactive
    /// flows push their parameters here and the link carries only
    /// `client_id` and `request_uri`. Discovery fills it.
    pub pushed_authorization_request_endpoint: Option<String>,
    /// Device authorization endpoint (RFC 8628), for the `device_code` flow.
    pub device_authorization_endpoint: Option<String>,
    /// How long a refresh token lasts when the provider's answers do not
    /// say (they may, with `refresh_token_expires_in` and the like); 0
    /// clears it.
    pub refresh_token_lifetime_seconds: Option<i64>,
    /// That lifetime restarts with each renewal (else it counts from the
    /// authorization).
    pub refresh_token_lifetime_sliding: Option<bool>,
    /// A request the provider's API answers with the access token as
    /// bearer (its userinfo endpoint, a cheap API call): the connection
    /// test. Empty clears it.
    pub test_request_url: Option<String>,
    /// `GET` (default), `POST` or `HEAD`.
    pub test_request_method: Option<String>,
    /// `form` (RFC 7009, the default) or `json` (Intuit).
    pub revocation_format: Option<String>,
    /// Run the connection test after every renewal; a refusal raises
    /// `token.test_failed`.
    pub test_after_renewal: Option<bool>,
    /// Create only: the catalogue template to start from
    /// (`GET /api/v1/provider-templates`); the fields given here win over
    /// the template's.
    pub template: Option<String>,
    /// Create only: the template's inputs (tenant, domain, realm …) by name.
    pub template_inputs: Option<BTreeMap<String, String>>,
}

/// A provider as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderView {
    pub id: String,
    pub name: String,
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub refresh_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub client_id: Option<String>,
    pub has_client_secret: bool,
    /// The next secret, expiries, and which secret works.
    #[serde(flatten)]
    pub rotation: SecretRotation,
    pub client_auth_method: ClientAuthMethod,
    pub has_private_key: bool,
    pub key_id: Option<String>,
    pub signing_alg: Option<String>,
    /// The public JWK to register at the provider.
    pub public_jwk: Option<serde_json::Value>,
    /// Where Quiver serves that JWK as a JWKS.
    pub jwks_url: Option<String>,
    /// The key's certificate, if any.
    pub certificate: Option<CertificateView>,
    /// Assertions also carry the certificate's SHA-1 thumbprint (`x5t`).
    pub send_sha1_thumbprint: bool,
    pub assertion_audience: Option<String>,
    pub pkce: bool,
    pub scope_separator: String,
    pub default_lifetime_seconds: Option<i64>,
    pub expires_in_unit: String,
    pub authorize_params: BTreeMap<String, String>,
    pub token_params: BTreeMap<String, String>,
    pub connect_timeout_ms: u32,
    pub timeout_ms: u32,
    pub refresh_concurrency: u32,
    pub refresh_rate_per_minute: u32,
    pub iss_parameter_supported: bool,
    /// The catalogue template it was made from.
    pub template: Option<String>,
    pub default_scope: Option<String>,
    pub required_scope: Option<String>,
    pub token_response_path: Option<String>,
    pub keep_response_fields: Vec<String>,
    pub refresh_token_rotates: bool,
    pub omit_scope_on_refresh: bool,
    pub omit_code_on_refresh: bool,
    pub url_encode_refresh_token: bool,
    pub send_client_id_in_body: bool,
    pub pushed_authorization_request_endpoint: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub refresh_token_lifetime_seconds: Option<i64>,
    pub refresh_token_lifetime_sliding: bool,
    pub test_request_url: Option<String>,
    pub test_request_method: crate::tokens::TestMethod,
    pub test_after_renewal: bool,
    pub revocation_format: RevocationFormat,
    /// How many tokens use it.
    pub token_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// A signing key's X.509 certificate as shown (all of it is public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateView {
    /// The certificate (PEM), to upload at the provider.
    pub pem: String,
    /// Subject, as `CN=…, O=…`.
    pub subject: String,
    /// Issuer (the subject again when self-signed).
    pub issuer: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// SHA-256 thumbprint, base64url: the assertions' `x5t#S256`.
    pub x5t_s256: String,
    /// SHA-1 thumbprint, base64url: `x5t`.
    pub x5t: String,
    /// SHA-1 thumbprint in hexadecimal, as provider portals list it.
    pub sha1_thumbprint: String,
}

/// What OpenID discovery found at an issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    /// The issuer, as the document states it.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// Revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// JWKS URI.
    pub jwks_uri: Option<String>,
    /// Whether the `iss` authorization response parameter (RFC 9207) is sent.
    pub authorization_response_iss_parameter_supported: bool,
    /// Client authentication methods the token endpoint takes.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 9126 endpoint, when the provider offers pushed requests.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 9126: the provider takes only pushed requests.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// RFC 8628 endpoint, when the provider offers the device flow.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
}

/// What an input of a catalogue template may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateInputKind {
    /// A name or id: letters, digits, `.`, `-` and `_` (a tenant, a realm).
    Label,
    /// A DNS name (`acme.okta.com`).
    Host,
    /// An https base URL without a trailing slash (a self-managed server).
    Url,
    /// A value sent as a request parameter and kept exactly as typed (an
    /// API audience, which the provider compares character by character):
    /// never part of an endpoint.
    Value,
}

/// One input of a catalogue template: a placeholder of its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// The placeholder's name, `{name}` in the endpoints.
    pub name: String,
    pub label: String,
    pub help: String,
    pub kind: TemplateInputKind,
    /// Used when the input is not given.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub example: Option<String>,
}

/// The unit of `expires_in` a template's provider uses, or that it sends none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiresIn {
    #[default]
    Seconds,
    Milliseconds,
    /// The provider sends no `expires_in`.
    Absent,
}

/// How a template's provider encodes token answers (Quiver reads both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    #[default]
    Json,
    /// `application/x-www-form-urlencoded` unless JSON is asked for.
    Form,
}

fn default_true() -> bool {
    true
}

fn default_separator() -> String {
    " ".into()
}

/// A well-known provider as the catalogue describes it: endpoints with
/// `{input}` placeholders, client authentication, scopes, parameters and
/// the quirks of its answers, each fact with the documentation page it
/// came from (`sources`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTemplate {
    /// Stable id, for `"template"` in `POST /api/v1/providers`.
    pub id: String,
    pub name: String,
    pub description: String,
    /// Where to register a client at the provider.
    pub documentation: String,
    /// The flows the provider supports.
    pub flows: Vec<crate::tokens::Flow>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    #[serde(default)]
    pub refresh_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    pub client_auth_method: ClientAuthMethod,
    #[serde(default = "default_true")]
    pub pkce: bool,
    #[serde(default = "default_separator")]
    pub scope_separator: String,
    /// The scope a new token starts with.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// Scopes without which the provider issues no refresh token.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    pub token_params: BTreeMap<String, String>,
    #[serde(default)]
    pub token_response_path: Option<String>,
    #[serde(default)]
    pub keep_response_fields: Vec<String>,
    #[serde(default)]
    pub expires_in: ExpiresIn,
    #[serde(default)]
    pub default_lifetime_seconds: Option<i64>,
    #[serde(default)]
    pub response_format: ResponseFormat,
    /// Whether the provider issues refresh tokens at all.
    #[serde(default = "default_true")]
    pub refresh_tokens: bool,
    /// Unset: the documentation does not say.
    #[serde(default)]
    pub refresh_token_rotates: Option<bool>,
    #[serde(default)]
    pub refresh_token_lifetime_days: Option<u32>,
    /// Whether that lifetime restarts with each use.
    #[serde(default)]
    pub refresh_token_lifetime_sliding: Option<bool>,
    #[serde(default)]
    pub omit_scope_on_refresh: Option<bool>,
    #[serde(default)]
    pub send_client_id_in_body: Option<bool>,
    /// How revocation requests carry the token.
    #[serde(default)]
    pub revocation_format: RevocationFormat,
    /// What an admin must know (registration, redirect URI rules, limits).
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub inputs: Vec<TemplateInput>,
    /// The documentation page of each group of facts.
    pub sources: BTreeMap<String, String>,
}

/// What deleting a provider did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderDeleted {
    pub id: String,
    /// Tokens deleted with it (only with `force`).
    pub deleted_tokens: u64,
}

/// The server side of the provider screens, provided through Leptos context.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait ProvidersService: Send + Sync + 'static {
    /// Every provider.
    async fn list(&self, parts: &Parts) -> Result<Vec<ProviderView>, AppError>;
    /// One provider.
    async fn get(&self, parts: &Parts, id: String) -> Result<ProviderView, AppError>;
    /// Admin: registers a provider.
    async fn create(&self, parts: &Parts, input: ProviderInput) -> Result<ProviderView, AppError>;
    /// Admin: changes a provider.
    async fn update(
        &self,
        parts: &Parts,
        id: String,
        input: ProviderInput,
    ) -> Result<ProviderView, AppError>;
    /// Admin: makes the next client secret the current one.
    async fn promote_secret(&self, parts: &Parts, id: String) -> Result<ProviderView, AppError>;
    /// Admin: deletes a provider; refused while tokens use it unless `force`.
    async fn delete(
        &self,
        parts: &Parts,
        id: String,
        force: bool,
    ) -> Result<ProviderDeleted, AppError>;
    /// Admin: reads an issuer's discovery document.
    async fn discover(&self, parts: &Parts, issuer: String) -> Result<Discovered, AppError>;
    /// The catalogue of well-known providers.
    async fn templates(&self, parts: &Parts) -> Result<Vec<ProviderTemplate>, AppError>;
}

#[cfg(feature = "ssr")]
use crate::error::AppError;
#[cfg(feature = "ssr")]
use leptos::server_fn::http_export::request::Parts;

mod server_fns {
    use leptos::prelude::*;

    use super::*;
    use crate::error::AppError;

    /// Every provider.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn list_providers() -> Result<Vec<ProviderView>, AppError> {
        let (s, p) = crate::service::<dyn ProvidersService>()?;
        crate::error::respond(s.list(&p).await)
    }

    /// One provider.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn get_provider(id: String) -> Result<ProviderView, AppError> {
        let (s, p) = crate::service::<dyn ProvidersService>()?;
        crate::error::respond(s.get(&p, id).await)
    }

    /// Admin: registers a provider.
    // JSON keeps an empty string apart from an absent field (a form would not).
    #[server(prefix = "/rpc", output = crate::wire::JsonText, input = leptos::server_fn::codec::Json)]
    pub async fn create_provider(input: ProviderInput) -> Result<ProviderView, AppError> {
        let (s, p) = crate::service::<dyn ProvidersService>()?;
        crate::error::respond(s.create(&p, input).await)
    }

    /// Admin: changes a provider.
    // JSON keeps an empty string apart from an absent field (a form would not).
    #[server(prefix = "/rpc", output = crate::wire::JsonText, input = leptos::server_fn::codec::Json)]
    pub async fn update_provider(
        id: String,
        input: ProviderInput,
    ) -> Result<ProviderView, AppError> {
        let (s, p) = crate::service::<dyn ProvidersService>()?;
        crate::error::respond(s.update(&p, id, input).await)
    }

    /// Admin: makes the next client secret the current one.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn promote_provider_secret(id: String) -> Result<ProviderView, AppError> {
        let (s, p) = crate::service::<dyn ProvidersService>()?;
        crate::error::respond(s.promote_secret(&p, id).await)
    }

    /// Admin: deletes a provider.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn delete_provider(id: String, force: bool) -> Result<ProviderDeleted, AppError> {
        let (s, p) = crate::service::<dyn ProvidersService>()?;
        crate::error::respond(s.delete(&p, id, force).await)
    }

    /// The catalogue of well-known providers.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn list_provider_templates() -> Result<Vec<ProviderTemplate>, AppError> {
        let (s, p) = crate::service::<dyn ProvidersService>()?;
        crate::error::respond(s.templates(&p).await)
    }

    /// Admin: reads an issuer's discovery document.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn discover_provider(issuer: String) -> Result<Discovered, AppError> {
        let (s, p) = crate::service::<dyn ProvidersService>()?;
        crate::error::respond(s.discover(&p, issuer).await)
    }
}

pub use server_fns::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::tests::round_trips;

    #[test]
    fn client_auth_methods_keep_their_wire_names() {
        round_trips::<ClientAuthMethod>(
            "client_secret_basic, client_secret_post, private_key_jwt, none, tls_client_auth or self_signed_tls_client_auth",
        );
    }
}
