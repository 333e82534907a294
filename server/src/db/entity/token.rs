//! `tokens`: OAuth tokens, their settings and their current credentials.
//! `client_secret`, `password`, `access_token` and `refresh_token` are sealed.

use app::tokens::{Flow, TokenStatus};
use sea_orm::entity::prelude::*;

/// One token.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub provider_id: String,
    /// Stored as its wire name; an unknown name fails the read.
    pub flow: Flow,
    pub use_default_keys: bool,
    pub client_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub client_secret: Option<String>,
    pub username: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub password: Option<String>,
    pub resource: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub scope: Option<String>,
    /// JSON object.
    #[sea_orm(column_type = "Text")]
    pub additional_values: String,
    /// Stored as its wire name (never `expired`, which views derive).
    pub status: TokenStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub access_token: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub refresh_token: Option<String>,
    pub token_type: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub granted_scope: Option<String>,
    /// JSON identity summary (sub, email, name) for OIDC tokens.
    #[sea_orm(column_type = "Text", nullable)]
    pub identity: Option<String>,
    /// JSON `{"error","error_description","http_status"}` of the last failure.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub last_refreshed_at: Option<DateTimeUtc>,
    /// Refresh before serving when the token expires within this many seconds.
    pub refresh_margin_secs: i32,
    /// The process currently refreshing the token (a lease), if any.
    pub lease_owner: Option<String>,
    /// When that lease lapses.
    pub lease_until: Option<DateTimeUtc>,
    /// Whether the scheduler renews the token before it expires.
    pub auto_refresh: bool,
    /// How long before expiry the scheduler renews it.
    pub refresh_lead_secs: i32,
    /// When the scheduler should next renew it (none: nothing to do).
    pub refresh_due_at: Option<DateTimeUtc>,
    /// Failed renewals in a row.
    pub failure_count: i32,
    /// JSON object of the extra answer fields the provider's
    /// `keep_response_fields` names (e.g. Salesforce's `instance_url`).
    #[sea_orm(column_type = "Text", nullable)]
    pub response_fields: Option<String>,
    /// Sealed: the authorization code, kept only for providers that want
    /// it again at refresh.
    #[sea_orm(column_type = "Text", nullable)]
    pub authorization_code: Option<String>,
    /// Sealed: the device code of a device authorization in progress.
    #[sea_orm(column_type = "Text", nullable)]
    pub device_code: Option<String>,
    /// What the person types, and where.
    pub user_code: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub verification_uri: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub verification_uri_complete: Option<String>,
    /// When the device code lapses.
    pub device_expires_at: Option<DateTimeUtc>,
    /// Seconds between polls, as the provider asks (grown by `slow_down`).
    pub device_interval_secs: Option<i32>,
    /// When the device code is polled next; the poll that moves it owns it.
    pub device_next_poll_at: Option<DateTimeUtc>,
    /// When the refresh token stops working, as the provider said or its
    /// settings assume.
    pub refresh_token_expires_at: Option<DateTimeUtc>,
    /// The re-authorization date last announced by an event.
    pub reauthorization_announced_for: Option<DateTimeUtc>,
    /// JSON array of what the last grant left out ([`app::tokens::RenewalNote`]).
    #[sea_orm(column_type = "Text", nullable)]
    pub renewal_notes: Option<String>,
    /// This token's own connection test request (set by an admin).
    #[sea_orm(column_type = "Text", nullable)]
    pub test_request_url: Option<String>,
    pub test_request_method: Option<app::tokens::TestMethod>,
    /// The last connection test: when, the HTTP status (0: no answer), and
    /// what it saw ([`app::tokens::ConnectionTest`] as JSON).
    pub last_test_at: Option<DateTimeUtc>,
    pub last_test_status: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_test_result: Option<String>,
    /// When the access token was last handed out, and to whom (an API
    /// key's name or a person's email), as of the last usage write.
    pub last_used_at: Option<DateTimeUtc>,
    pub last_used_by: Option<String>,
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
    /// The last use (or, never used, the creation) whose idle days were
    /// announced with `token.unused`.
    pub unused_announced_for: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
