//! `providers`: OAuth authorization servers and their default client.
//! `client_secret` and `private_key` are sealed.

use app::providers::ClientAuthMethod;
use sea_orm::entity::prelude::*;

/// One provider.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "providers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub name: String,
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub refresh_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub client_id: Option<String>,
    /// Sealed.
    #[sea_orm(column_type = "Text", nullable)]
    pub client_secret: Option<String>,
    /// Stored as its wire name; an unknown name fails the read.
    pub client_auth_method: ClientAuthMethod,
    /// Sealed PKCS#8 PEM.
    #[sea_orm(column_type = "Text", nullable)]
    pub private_key: Option<String>,
    pub key_id: Option<String>,
    pub signing_alg: Option<String>,
    pub assertion_audience: Option<String>,
    pub pkce: bool,
    pub scope_separator: String,
    pub default_lifetime_secs: Option<i64>,
    pub expires_in_millis: bool,
    /// JSON object of extra authorize parameters.
    #[sea_orm(column_type = "Text")]
    pub authorize_params: String,
    /// JSON object of extra token parameters.
    #[sea_orm(column_type = "Text")]
    pub token_params: String,
    pub connect_timeout_ms: i32,
    pub timeout_ms: i32,
    pub iss_parameter_supported: bool,
    /// Background refreshes at once against this provider (per replica).
    pub refresh_concurrency: i32,
    /// Background refreshes per minute against this provider (per replica).
    pub refresh_rate_per_minute: i32,
    /// The signing key's X.509 certificate (PEM; public).
    #[sea_orm(column_type = "Text", nullable)]
    pub certificate: Option<String>,
    /// Client assertions also carry the certificate's SHA-1 thumbprint.
    pub send_sha1_thumbprint: bool,
    /// `x5t#S256` of the certificate whose coming expiry was announced.
    pub certificate_expiry_announced: Option<String>,
    /// The catalogue template the provider was made from, if any.
    pub template: Option<String>,
    /// The scope a new token starts with.
    #[sea_orm(column_type = "Text", nullable)]
    pub default_scope: Option<String>,
    /// Scopes every token's scope includes, added when a token's own
    /// scope leaves them out.
    #[sea_orm(column_type = "Text", nullable)]
    pub required_scope: Option<String>,
    /// How revocation requests carry the token.
    pub revocation_format: app::providers::RevocationFormat,
    /// Dotted path of the object holding the token fields in an answer.
    pub token_response_path: Option<String>,
    /// JSON array of extra answer fields kept with the token.
    #[sea_orm(column_type = "Text")]
    pub keep_response_fields: String,
    /// A refresh answers a new refresh token and ends the old one.
    pub refresh_token_rotates: bool,
    /// Refreshes do not repeat the token's scope.
    pub omit_scope_on_refresh: bool,
    /// Refreshes do not send the authorization code again.
    pub omit_code_on_refresh: bool,
    /// The refresh token is URL-encoded before the form encodes it.
    pub url_encode_refresh_token: bool,
    /// `client_id` in the body even with HTTP Basic.
    pub send_client_id_in_body: bool,
    /// RFC 9126: interactive flows push their request here first.
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 8628: where the Device Authorization flow asks for a code.
    pub device_authorization_endpoint: Option<String>,
    /// How long a refresh token lasts when the provider's answer does not say.
    pub refresh_token_lifetime_secs: Option<i64>,
    /// That lifetime restarts with each use (else it counts from authorization).
    pub refresh_token_lifetime_sliding: bool,
    /// The connection test: a request its API answers with a token as bearer.
    #[sea_orm(column_type = "Text", nullable)]
    pub test_request_url: Option<String>,
    pub test_request_method: Option<app::tokens::TestMethod>,
    /// Test each token after every renewal.
    pub test_after_renewal: bool,
    /// Client-secret rotation: the next secret (sealed), the expiry of
    /// each, which one the provider last accepted and since when, and the
    /// expiry dates already announced.
    #[sea_orm(column_type = "Text", nullable)]
    pub next_client_secret: Option<String>,
    pub client_secret_expires_at: Option<DateTimeUtc>,
    pub next_client_secret_expires_at: Option<DateTimeUtc>,
    pub secret_in_use: Option<app::providers::SecretSlot>,
    pub secret_in_use_since: Option<DateTimeUtc>,
    pub secret_expiry_announced_for: Option<DateTimeUtc>,
    pub next_secret_expiry_announced_for: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
