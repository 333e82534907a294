//! OAuth tokens as the REST API and the screens see them. Secrets are
//! write-only: inputs take them, views say only whether they are set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::{WireName, wire_name_impls};

/// How a token is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
#[cfg_attr(feature = "ssr", sea_orm(value_type = "String"))]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Interactive, with the resource owner in a browser.
    AuthorizationCode,
    /// Machine to machine.
    ClientCredentials,
    /// Resource owner password credentials.
    Password,
    /// OpenID Connect hybrid (`code id_token`).
    OidcHybrid,
    /// Device Authorization Grant (RFC 8628): a person authorizes on any
    /// device with a short code while Quiver polls the provider.
    DeviceCode,
}

impl WireName for Flow {
    const ALL: &'static [Self] = &[
        Self::AuthorizationCode,
        Self::ClientCredentials,
        Self::Password,
        Self::OidcHybrid,
        Self::DeviceCode,
    ];
    const FIELD: &'static str = "flow";

    fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::Password => "password",
            Self::OidcHybrid => "oidc_hybrid",
            Self::DeviceCode => "device_code",
        }
    }
}
wire_name_impls!(Flow);

/// The HTTP method of a connection test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
#[cfg_attr(feature = "ssr", sea_orm(value_type = "String"))]
#[serde(rename_all = "UPPERCASE")]
pub enum TestMethod {
    #[default]
    Get,
    Post,
    Head,
}

impl WireName for TestMethod {
    const ALL: &'static [Self] = &[Self::Get, Self::Post, Self::Head];
    const FIELD: &'static str = "test_request_method";

    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Head => "HEAD",
        }
    }
}
wire_name_impls!(TestMethod);

/// What a connection test saw: the API's answer to a request made with
/// the access token as bearer. The token itself never appears in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTest {
    /// The API accepted the token (a 2xx answer).
    pub ok: bool,
    pub method: TestMethod,
    pub url: String,
    /// The HTTP status, when the API answered.
    pub status: Option<u16>,
    /// From sending the request to the end of the excerpt, in ms.
    pub duration_ms: u64,
    pub content_type: Option<String>,
    /// The first bytes of the answer, as text (the token masked).
    pub excerpt: String,
    /// Why there was no answer (refused, timed out), when there was none.
    pub error: Option<String>,
    /// RFC 3339.
    pub tested_at: String,
}

impl Flow {
    /// Whether a person authorizes in a browser redirected back to Quiver.
    pub fn is_interactive(self) -> bool {
        matches!(self, Self::AuthorizationCode | Self::OidcHybrid)
    }

    /// Whether a person must authorize (in a browser, or with a device
    /// code): without a refresh token only that person renews the token.
    pub fn needs_person(self) -> bool {
        self.is_interactive() || self == Self::DeviceCode
    }
}

/// Where a token stands. `Expired` is never stored: a view shows it for an
/// `Active` token past its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
#[cfg_attr(feature = "ssr", sea_orm(value_type = "String"))]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// Holds a usable token.
    Active,
    /// The last request or refresh failed.
    Failed,
    /// Waiting for a person to authorize in a browser.
    PendingAuthorization,
    /// Imported without the secrets it needs (no access token): supply them
    /// (provider or token update), then request it.
    NeedsCredentials,
    /// Past its expiry (shown, never stored).
    Expired,
}

impl WireName for TokenStatus {
    const ALL: &'static [Self] = &[
        Self::Active,
        Self::Failed,
        Self::PendingAuthorization,
        Self::NeedsCredentials,
        Self::Expired,
    ];
    const FIELD: &'static str = "status";

    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Failed => "failed",
            Self::PendingAuthorization => "pending_authorization",
            Self::NeedsCredentials => "needs_credentials",
            Self::Expired => "expired",
        }
    }
}
wire_name_impls!(TokenStatus);

/// Creating a token, or changing one (absent = unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    pub name: Option<String>,
    pub provider_id: Option<String>,
    /// `authorization_code`, `client_credentials`, `password` or `oidc_hybrid`
    /// (read with [`Flow`]'s parser, whose refusal names the field).
    pub flow: Option<String>,
    /// Use the provider's client id and secret (default true).
    pub use_default_keys: Option<bool>,
    pub client_id: Option<String>,
    /// Write-only.
    pub client_secret: Option<String>,
    /// Own keys: the secret that replaces it at the next rotation,
    /// tried when the current one is refused. Write-only.
    pub next_client_secret: Option<String>,
    /// Own keys: when the current secret expires (RFC 3339 or
    /// `YYYY-MM-DD`); empty clears.
    pub client_secret_expires_at: Option<String>,
    /// Own keys: when the next secret expires.
    pub next_client_secret_expires_at: Option<String>,
    /// Password flow.
    pub username: Option<String>,
    /// Password flow; write-only.
    pub password: Option<String>,
    /// Sent as `resource` (RFC 8707).
    pub resource: Option<String>,
    pub scope: Option<String>,
    /// Extra key/value pairs added to the requests.
    pub additional_values: Option<BTreeMap<String, String>>,
    /// On create: request the token at once (default true).
    pub request: Option<bool>,
    /// The access-token endpoint refreshes first when the token expires
    /// within this many seconds (default 60).
    pub refresh_margin_seconds: Option<i64>,
    /// The scheduler renews the token before it expires (default true).
    pub auto_refresh: Option<bool>,
    /// How long before expiry the scheduler renews it (default 300 s).
    pub refresh_lead_seconds: Option<i64>,
    /// Admins only: this token's connection test request, instead of the
    /// provider's; empty clears it.
    pub test_request_url: Option<String>,
    /// `GET` (default), `POST` or `HEAD`; empty clears it.
    pub test_request_method: Option<String>,
}

/// The provider's words about the last failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenError {
    /// OAuth `error` (or `server_error`, `timeout`, `invalid_response`, …).
    pub error: String,
    /// `error_description`, or what Quiver saw.
    pub error_description: Option<String>,
    /// The provider's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// The provider's `Retry-After`, in seconds, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// Who the token belongs to at the provider (OIDC tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub sub: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// A token as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub provider_id: String,
    pub provider_name: String,
    pub flow: Flow,
    pub use_default_keys: bool,
    pub client_id: Option<String>,
    pub has_client_secret: bool,
    /// Own keys: the next secret, expiries, and which secret works.
    #[serde(flatten)]
    pub rotation: crate::providers::SecretRotation,
    pub username: Option<String>,
    pub has_password: bool,
    pub resource: Option<String>,
    pub scope: Option<String>,
    pub additional_values: BTreeMap<String, String>,
    pub status: TokenStatus,
    pub has_access_token: bool,
    pub has_refresh_token: bool,
    pub token_type: Option<String>,
    pub expires_at: Option<String>,
    pub granted_scope: Option<String>,
    /// Extra fields of the provider's answer the provider's settings keep
    /// (e.g. Salesforce's `instance_url`), as text.
    pub response_fields: BTreeMap<String, String>,
    pub identity: Option<Identity>,
    pub error: Option<TokenError>,
    /// For the interactive flows while authorization is pending.
    pub auth_url: Option<String>,
    /// Device Code flow, while the person has not yet authorized: the code
    /// to type, where, and until when Quiver polls.
    pub pending_authorization: Option<DeviceAuthorization>,
    /// The same as `pending_authorization.user_code`.
    pub user_code: Option<String>,
    /// The same as `pending_authorization.verification_uri`.
    pub verification_uri: Option<String>,
    /// The same as `pending_authorization.verification_uri_complete`.
    pub verification_uri_complete: Option<String>,
    pub owner_id: String,
    pub owner_email: String,
    pub last_refreshed_at: Option<String>,
    pub refresh_margin_seconds: i64,
    /// The scheduler renews the token before it expires.
    pub auto_refresh: bool,
    /// How long before expiry it does.
    pub refresh_lead_seconds: i64,
    /// When the scheduler will next renew it, if it will.
    pub next_refresh_at: Option<String>,
    /// Failed renewals in a row.
    pub failure_count: i64,
    /// When the refresh token stops working (RFC 3339), as the provider
    /// said or its settings assume; none when unknown or without one.
    pub refresh_token_expires_at: Option<String>,
    /// For the flows a person authorizes: by when they must authorize
    /// again (the refresh token's expiry, or without one the access
    /// token's).
    pub reauthorization_due_at: Option<String>,
    /// What the last grant left out that a later renewal may miss.
    pub renewal_notes: Vec<RenewalNote>,
    /// This token's own connection test request, if it has one.
    pub test_request_url: Option<String>,
    pub test_request_method: Option<TestMethod>,
    /// Whether a connection test can run (the token's or the provider's request).
    pub can_test: bool,
    /// The last connection test's outcome.
    pub last_test: Option<ConnectionTest>,
    /// When a program (or person) last fetched the access token, and who:
    /// an API key's name or a person's email.
    pub last_used_at: Option<String>,
    pub last_used_by: Option<String>,
    /// Access tokens handed out in the last 24 hours.
    pub uses_24h: u64,
    pub created_at: String,
    pub updated_at: String,
}

/// Something a provider's token answer left out or changed, kept on the
/// token until a later answer is whole again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RenewalNote {
    /// A provider that rotates refresh tokens answered a renewal without a
    /// new one: the token cannot be renewed again without a person.
    RefreshTokenDropped,
    /// A renewal granted less than before: these scopes are gone.
    ScopeNarrowed { lost: Vec<String> },
    /// The answer had no `expires_in`: the expiry is the provider's
    /// assumed lifetime (in seconds), or unknown.
    ExpiresInMissing { assumed_seconds: Option<i64> },
}

impl RenewalNote {
    /// The note's kind as events name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RefreshTokenDropped => "refresh_token_dropped",
            Self::ScopeNarrowed { .. } => "scope_narrowed",
            Self::ExpiresInMissing { .. } => "expires_in_missing",
        }
    }

    /// One sentence for people.
    pub fn explain(&self) -> String {
        match self {
            Self::RefreshTokenDropped => "The last renewal returned no new refresh token although the provider rotates them: authorize the token again before the access token expires.".into(),
            Self::ScopeNarrowed { lost } => format!(
                "The last renewal granted less than before; no longer granted: {}.",
                lost.join(", ")
            ),
            Self::ExpiresInMissing { assumed_seconds: Some(s) } => format!(
                "The provider did not say when the access token expires; Quiver assumes {s} seconds (the provider's default lifetime)."
            ),
            Self::ExpiresInMissing { assumed_seconds: None } => "The provider did not say when the access token expires, and its settings assume no lifetime: Quiver renews it only when asked.".into(),
        }
    }
}

/// A device authorization in progress (RFC 8628).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    /// The code the person types.
    pub user_code: String,
    /// Where the person types it.
    pub verification_uri: String,
    /// A link with the code in it, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// When the code lapses (RFC 3339).
    pub expires_at: String,
    /// Seconds between Quiver's polls, as the provider asks.
    pub interval_seconds: i64,
}

/// A page of tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPage {
    pub items: Vec<TokenView>,
    pub total: u64,
}

/// A token as the tokens list shows it: its row and its menu. The list's
/// first load carries the decoding of this, not of the whole [`TokenView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    pub id: String,
    pub name: String,
    pub provider_name: String,
    pub flow: Flow,
    pub status: TokenStatus,
    pub expires_at: Option<String>,
    pub last_refreshed_at: Option<String>,
    pub last_used_at: Option<String>,
    /// An API key's name or a person's email.
    pub last_used_by: Option<String>,
    /// Access tokens handed out in the last 24 hours.
    pub uses_24h: u64,
    pub owner_email: String,
}

impl From<&TokenView> for TokenSummary {
    fn from(t: &TokenView) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            provider_name: t.provider_name.clone(),
            flow: t.flow,
            status: t.status,
            expires_at: t.expires_at.clone(),
            last_refreshed_at: t.last_refreshed_at.clone(),
            last_used_at: t.last_used_at.clone(),
            last_used_by: t.last_used_by.clone(),
            uses_24h: t.uses_24h,
            owner_email: t.owner_email.clone(),
        }
    }
}

/// A page of the tokens list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummaryPage {
    pub items: Vec<TokenSummary>,
    pub total: u64,
}

impl From<TokenPage> for TokenSummaryPage {
    fn from(page: TokenPage) -> Self {
        Self {
            items: page.items.iter().map(TokenSummary::from).collect(),
            total: page.total,
        }
    }
}

/// A provider the tokens list can be filtered by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderName {
    pub id: String,
    pub name: String,
}

/// What deleting a token did at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOutcome {
    pub id: String,
    /// What revoking the token at the provider did.
    pub revocation: Revocation,
    /// Why revocation failed, when it did.
    pub revocation_error: Option<String>,
}

/// What revoking a deleted token at its provider did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// The provider revoked the refresh and access tokens it had issued.
    Revoked,
    /// The provider has no revocation endpoint.
    NotSupported,
    /// The token held neither an access nor a refresh token.
    NothingToRevoke,
    /// The provider refused or could not be reached (`revocation_error` says why).
    Failed,
}

impl WireName for Revocation {
    const ALL: &'static [Self] = &[
        Self::Revoked,
        Self::NotSupported,
        Self::NothingToRevoke,
        Self::Failed,
    ];
    const FIELD: &'static str = "revocation";

    fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::NotSupported => "not_supported",
            Self::NothingToRevoke => "nothing_to_revoke",
            Self::Failed => "failed",
        }
    }
}

wire_name_impls!(Revocation);

/// Overrides for a reset; absent or `null` keeps the token's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetInput {
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub additional_values: Option<BTreeMap<String, String>>,
}

/// The token list's filters, sort and page, as the tokens screen asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenListQuery {
    /// Part of the name.
    pub q: String,
    /// `active`, `expiring_soon`, `expired`, `failed`, `pending_authorization`,
    /// `needs_credentials`; empty: all.
    pub status: String,
    /// A provider id; empty: all.
    pub provider_id: String,
    /// A flow; empty: all.
    pub flow: String,
    /// `name`, `expires_at`, `last_refreshed_at`, `last_used_at` or
    /// `created_at`; empty: name.
    pub sort: String,
    /// Only tokens not used for this many days; 0: all.
    pub unused_days: u32,
    /// Descending order.
    pub desc: bool,
    /// First row.
    pub offset: u64,
}

/// One line of a token's history (from the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenHistoryEntry {
    pub at: String,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub detail: Option<String>,
}

/// A token with its history, for the detail page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDetail {
    pub token: TokenView,
    /// Newest first, at most 100 entries.
    pub history: Vec<TokenHistoryEntry>,
    /// Hand-outs per day over the last 30 days, oldest first.
    pub usage: Vec<DayUses>,
    /// The same as a chart: SVG drawn by the server.
    pub usage_chart: String,
}

/// Access tokens handed out on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayUses {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub uses: u64,
}

/// A provider as the token form needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderChoice {
    pub id: String,
    pub name: String,
    pub client_auth_method: crate::providers::ClientAuthMethod,
    pub has_default_client_id: bool,
    pub interactive: bool,
    /// The provider has a device authorization endpoint (Device Code flow).
    pub device: bool,
    /// The scope a new token of this provider starts with.
    pub default_scope: Option<String>,
}

/// What the token form offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFormOptions {
    pub providers: Vec<ProviderChoice>,
    /// The OAuth redirect URI to register at providers.
    pub redirect_uri: String,
}

/// The server side of the token screens, provided through Leptos context.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait TokensService: Send + Sync + 'static {
    /// A page of the tokens the caller may see.
    async fn list(&self, parts: &Parts, query: TokenListQuery) -> Result<TokenPage, AppError>;
    /// One token with its history.
    async fn detail(&self, parts: &Parts, id: String) -> Result<TokenDetail, AppError>;
    /// Providers to choose from and the redirect URI.
    async fn form_options(&self, parts: &Parts) -> Result<TokenFormOptions, AppError>;
    /// The providers the list can be filtered by: every one, by name.
    async fn provider_names(&self, parts: &Parts) -> Result<Vec<ProviderName>, AppError>;
    /// Creates a token (and requests it unless `input.request` is false).
    async fn create(&self, parts: &Parts, input: TokenInput) -> Result<TokenView, AppError>;
    /// Changes a token.
    async fn update(
        &self,
        parts: &Parts,
        id: String,
        input: TokenInput,
    ) -> Result<TokenView, AppError>;
    /// Requests the token anew (interactive flows: a fresh link in `auth_url`).
    async fn request(&self, parts: &Parts, id: String) -> Result<TokenView, AppError>;
    /// Refreshes the access token.
    async fn refresh(&self, parts: &Parts, id: String) -> Result<TokenView, AppError>;
    /// Reset Client Credentials.
    async fn reset(&self, parts: &Parts, id: String) -> Result<TokenView, AppError>;
    /// Deletes (revoking first).
    async fn delete(&self, parts: &Parts, id: String) -> Result<DeleteOutcome, AppError>;
    /// A fresh authorization link (interactive flows).
    async fn auth_link(&self, parts: &Parts, id: String) -> Result<String, AppError>;
    /// Runs the token's connection test.
    async fn test(&self, parts: &Parts, id: String) -> Result<ConnectionTest, AppError>;
    /// Makes the token's own next client secret the current one.
    async fn promote_secret(&self, parts: &Parts, id: String) -> Result<TokenView, AppError>;
}

#[cfg(feature = "ssr")]
use crate::error::AppError;
#[cfg(feature = "ssr")]
use leptos::server_fn::http_export::request::Parts;

mod server_fns {
    use leptos::prelude::*;

    use super::*;
    use crate::error::AppError;

    /// A page of the caller's tokens (all tokens for an admin), as the
    /// list shows them.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn list_tokens(query: TokenListQuery) -> Result<TokenSummaryPage, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.list(&p, query).await.map(TokenSummaryPage::from))
    }

    /// The providers the caller can filter the list by: those the create
    /// form offers.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn list_token_providers() -> Result<Vec<ProviderName>, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.provider_names(&p).await)
    }

    /// One token with its history.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn get_token(id: String) -> Result<TokenDetail, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.detail(&p, id).await)
    }

    /// What the create form offers.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn get_token_form() -> Result<TokenFormOptions, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.form_options(&p).await)
    }

    /// Creates a token.
    // JSON keeps an empty string apart from an absent field (a form would not).
    #[server(prefix = "/rpc", output = crate::wire::JsonText, input = leptos::server_fn::codec::Json)]
    pub async fn create_token(input: TokenInput) -> Result<TokenView, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.create(&p, input).await)
    }

    /// Changes a token (rename, settings, secrets).
    // JSON keeps an empty string apart from an absent field (a form would not).
    #[server(prefix = "/rpc", output = crate::wire::JsonText, input = leptos::server_fn::codec::Json)]
    pub async fn update_token(id: String, input: TokenInput) -> Result<TokenView, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.update(&p, id, input).await)
    }

    /// Requests the token anew.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn request_token(id: String) -> Result<TokenView, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.request(&p, id).await)
    }

    /// Refreshes the access token.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn refresh_token(id: String) -> Result<TokenView, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.refresh(&p, id).await)
    }

    /// Reset Client Credentials.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn reset_token(id: String) -> Result<TokenView, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.reset(&p, id).await)
    }

    /// Deletes a token, revoking it first.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn delete_token(id: String) -> Result<DeleteOutcome, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.delete(&p, id).await)
    }

    /// A fresh authorization link.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn token_auth_link(id: String) -> Result<String, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.auth_link(&p, id).await)
    }

    /// Runs the token's connection test.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn test_token_connection(id: String) -> Result<ConnectionTest, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.test(&p, id).await)
    }

    /// Makes the token's own next client secret the current one.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn promote_token_secret(id: String) -> Result<TokenView, AppError> {
        let (s, p) = crate::service::<dyn TokensService>()?;
        crate::error::respond(s.promote_secret(&p, id).await)
    }
}

pub use server_fns::*;

/// What `GET /api/v1/tokens/{id}/access-token` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenView {
    /// The access token itself: the one place Quiver hands it out.
    pub access_token: String,
    /// Usually `Bearer`.
    pub token_type: String,
    /// RFC 3339, when the provider said.
    pub expires_at: Option<String>,
    /// The granted scope.
    pub scope: Option<String>,
    /// The extra fields of the provider's answer that its provider keeps
    /// (`keep_response_fields`, e.g. Salesforce's `instance_url`, where the
    /// token is to be used); absent when none are kept.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub response_fields: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::tests::round_trips;

    #[test]
    fn flows_and_statuses_keep_their_wire_names() {
        round_trips::<Flow>(
            "authorization_code, client_credentials, password, oidc_hybrid or device_code",
        );
        round_trips::<TokenStatus>(
            "active, failed, pending_authorization, needs_credentials or expired",
        );
        round_trips::<TestMethod>("GET, POST or HEAD");
        round_trips::<Revocation>("revoked, not_supported, nothing_to_revoke or failed");
    }
}
