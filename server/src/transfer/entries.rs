//! The bundle's entries, one a provider or token row, and their
//! conversions from and into the rows: written once, for export (a row
//! into an entry) and import (an entry into a new row). Secrets are not
//! converted here: they are opened and sealed again by export and import,
//! each under its own key.

use std::collections::BTreeMap;

use app::names::UnknownName;
use app::providers::RevocationFormat;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bundle::{ProviderSecret, SealedValue, TokenSecret};
use crate::db::entity::{provider, token};
use crate::oauth::params;
use crate::providers::{DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, params_json, params_map};
use crate::tokens::TokenStatus;
use crate::tokens::validation::ProviderShape;

/// One provider, mirroring the `providers` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    /// The bundle's id for it; tokens refer to it.
    pub id: String,
    /// Unique among providers.
    pub name: String,
    /// OIDC issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Needed by the interactive flows.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Where tokens are requested.
    pub token_endpoint: String,
    /// Where tokens are refreshed, when not the token endpoint.
    #[serde(default)]
    pub refresh_endpoint: Option<String>,
    /// RFC 7009 revocation.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// Keys that sign id_tokens.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The default client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `none`.
    #[serde(default = "default_client_auth_method")]
    pub client_auth_method: String,
    /// The `kid` of the signing key.
    #[serde(default)]
    pub key_id: Option<String>,
    /// `RS256`, `PS256` or `ES256`.
    #[serde(default)]
    pub signing_alg: Option<String>,
    /// The client assertion's `aud`, when not the token endpoint.
    #[serde(default)]
    pub assertion_audience: Option<String>,
    /// Whether PKCE S256 is sent.
    #[serde(default = "yes")]
    pub pkce: bool,
    /// Joins scopes in requests.
    #[serde(default = "default_scope_separator")]
    pub scope_separator: String,
    /// Lifetime assumed when the provider states none.
    #[serde(default)]
    pub default_lifetime_secs: Option<i64>,
    /// Whether `expires_in` is in milliseconds.
    #[serde(default)]
    pub expires_in_millis: bool,
    /// Extra authorize parameters.
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// Extra token parameters.
    #[serde(default)]
    pub token_params: BTreeMap<String, String>,
    /// Connect timeout of provider calls.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u32,
    /// Total timeout of provider calls.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
    /// RFC 9207 `iss` on the callback.
    #[serde(default)]
    pub iss_parameter_supported: bool,
    /// Background refreshes at once against this provider, per replica
    /// (absent in older bundles: the service default).
    #[serde(default = "default_refresh_concurrency")]
    pub refresh_concurrency: u32,
    /// Background refreshes started per minute, per replica; 0 is no limit.
    #[serde(default = "default_refresh_rate_per_minute")]
    pub refresh_rate_per_minute: u32,
    /// The signing key's X.509 certificate (PEM; public).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// Client assertions also carry the certificate's SHA-1 thumbprint.
    #[serde(default)]
    pub send_sha1_thumbprint: bool,
    /// The catalogue template it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The scope a new token starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_scope: Option<String>,
    /// Scopes every token's scope includes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<String>,
    /// Where the token fields sit in an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_response_path: Option<String>,
    /// Extra answer fields kept with each token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_response_fields: Vec<String>,
    /// A refresh ends the old refresh token.
    #[serde(default)]
    pub refresh_token_rotates: bool,
    /// Refreshes do not repeat the scope.
    #[serde(default = "yes")]
    pub omit_scope_on_refresh: bool,
    /// Refreshes do not send the authorization code again.
    #[serde(default = "yes")]
    pub omit_code_on_refresh: bool,
    /// The refresh token is URL-encoded before it is sent.
    #[serde(default)]
    pub url_encode_refresh_token: bool,
    /// `client_id` in the body with HTTP Basic too.
    #[serde(default)]
    pub send_client_id_in_body: bool,
    /// RFC 9126 pushed authorization requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 8628 device authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// A refresh token's lifetime when answers do not say, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_lifetime_secs: Option<i64>,
    /// That lifetime restarts with each use.
    #[serde(default)]
    pub refresh_token_lifetime_sliding: bool,
    /// The connection test request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_request_url: Option<String>,
    /// Its method (`GET`, `POST`, `HEAD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_request_method: Option<String>,
    /// Test each token after every renewal.
    #[serde(default)]
    pub test_after_renewal: bool,
    /// How revocation requests carry the token (`form` unless said).
    #[serde(default, skip_serializing_if = "is_form")]
    pub revocation_format: RevocationFormat,
    /// When the default client secret expires at the provider; travels
    /// with the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<DateTime<Utc>>,
    /// When the next client secret expires; travels with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_client_secret_expires_at: Option<DateTime<Utc>>,
    /// Sealed default client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SealedValue>,
    /// Sealed PKCS#8 PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SealedValue>,
    /// Sealed next client secret (the one the provider accepts once the
    /// current one is retired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_client_secret: Option<SealedValue>,
}

impl ProviderEntry {
    /// The sealed value of `field`, if present.
    pub fn sealed(&self, field: ProviderSecret) -> Option<&SealedValue> {
        match field {
            ProviderSecret::ClientSecret => self.client_secret.as_ref(),
            ProviderSecret::PrivateKey => self.private_key.as_ref(),
            ProviderSecret::NextClientSecret => self.next_client_secret.as_ref(),
        }
    }
}

/// One token, mirroring the `tokens` table (status, leases and errors are
/// the old instance's business and are not carried).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The bundle's id for it.
    pub id: String,
    /// Its name; unique per owner within a bundle.
    pub name: String,
    /// The `id` of a provider entry of the same bundle.
    pub provider_id: String,
    /// The owner's email, matched to a user on import.
    #[serde(default)]
    pub owner_email: Option<String>,
    /// `authorization_code`, `client_credentials`, `password` or `oidc_hybrid`.
    pub flow: String,
    /// Whether the provider's client id and secret are used.
    #[serde(default = "yes")]
    pub use_default_keys: bool,
    /// The token's own client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Password flow user name.
    #[serde(default)]
    pub username: Option<String>,
    /// RFC 8707 resource.
    #[serde(default)]
    pub resource: Option<String>,
    /// Requested scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// Extra request values.
    #[serde(default)]
    pub additional_values: BTreeMap<String, String>,
    /// Refresh ahead of expiry by this many seconds.
    #[serde(default = "default_refresh_margin_secs")]
    pub refresh_margin_secs: i64,
    /// Whether the scheduler renews the token before it expires.
    #[serde(default = "yes")]
    pub auto_refresh: bool,
    /// How long before expiry the scheduler renews it.
    #[serde(default = "default_refresh_lead_secs")]
    pub refresh_lead_secs: i64,
    /// The token's own connection test request, when not the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_request_url: Option<String>,
    /// Its method (`GET`, `POST`, `HEAD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_request_method: Option<String>,
    /// The access token's type.
    #[serde(default)]
    pub token_type: Option<String>,
    /// When the access token expires.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The scope the provider granted.
    #[serde(default)]
    pub granted_scope: Option<String>,
    /// The extra answer fields kept with the access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_fields: Option<BTreeMap<String, String>>,
    /// When the refresh token expires, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_at: Option<DateTime<Utc>>,
    /// When the token's own client secret expires at the provider; travels
    /// with the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<DateTime<Utc>>,
    /// When its next client secret expires; travels with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_client_secret_expires_at: Option<DateTime<Utc>>,
    /// Sealed client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SealedValue>,
    /// Sealed password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SealedValue>,
    /// Sealed access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SealedValue>,
    /// Sealed refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SealedValue>,
    /// Sealed next client secret of the token's own client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_client_secret: Option<SealedValue>,
}

impl TokenEntry {
    /// The sealed value of `field`, if present.
    pub fn sealed(&self, field: TokenSecret) -> Option<&SealedValue> {
        match field {
            TokenSecret::ClientSecret => self.client_secret.as_ref(),
            TokenSecret::Password => self.password.as_ref(),
            TokenSecret::AccessToken => self.access_token.as_ref(),
            TokenSecret::RefreshToken => self.refresh_token.as_ref(),
            TokenSecret::NextClientSecret => self.next_client_secret.as_ref(),
        }
    }
}

impl From<&provider::Model> for ProviderEntry {
    /// The row's settings, under the row's id; its secrets are left out.
    fn from(p: &provider::Model) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            authorization_endpoint: p.authorization_endpoint.clone(),
            token_endpoint: p.token_endpoint.clone(),
            refresh_endpoint: p.refresh_endpoint.clone(),
            revocation_endpoint: p.revocation_endpoint.clone(),
            jwks_uri: p.jwks_uri.clone(),
            client_id: p.client_id.clone(),
            client_auth_method: p.client_auth_method.to_string(),
            key_id: p.key_id.clone(),
            signing_alg: p.signing_alg.clone(),
            assertion_audience: p.assertion_audience.clone(),
            pkce: p.pkce,
            scope_separator: p.scope_separator.clone(),
            default_lifetime_secs: p.default_lifetime_secs,
            expires_in_millis: p.expires_in_millis,
            // Names Quiver sets itself are never sent (rows stored before
            // they were refused): left out, so the bundle imports.
            authorize_params: params::without_reserved(params_map(&p.authorize_params)),
            token_params: params::without_reserved(params_map(&p.token_params)),
            connect_timeout_ms: u32::try_from(p.connect_timeout_ms).unwrap_or_default(),
            timeout_ms: u32::try_from(p.timeout_ms).unwrap_or_default(),
            iss_parameter_supported: p.iss_parameter_supported,
            refresh_concurrency: u32::try_from(p.refresh_concurrency).unwrap_or(1),
            refresh_rate_per_minute: u32::try_from(p.refresh_rate_per_minute).unwrap_or(0),
            certificate: p.certificate.clone(),
            send_sha1_thumbprint: p.send_sha1_thumbprint,
            template: p.template.clone(),
            default_scope: p.default_scope.clone(),
            required_scope: p.required_scope.clone(),
            token_response_path: p.token_response_path.clone(),
            keep_response_fields: crate::providers::kept_fields(&p.keep_response_fields),
            refresh_token_rotates: p.refresh_token_rotates,
            omit_scope_on_refresh: p.omit_scope_on_refresh,
            omit_code_on_refresh: p.omit_code_on_refresh,
            url_encode_refresh_token: p.url_encode_refresh_token,
            send_client_id_in_body: p.send_client_id_in_body,
            pushed_authorization_request_endpoint: p.pushed_authorization_request_endpoint.clone(),
            device_authorization_endpoint: p.device_authorization_endpoint.clone(),
            refresh_token_lifetime_secs: p.refresh_token_lifetime_secs,
            refresh_token_lifetime_sliding: p.refresh_token_lifetime_sliding,
            test_request_url: p.test_request_url.clone(),
            test_request_method: p.test_request_method.map(|m| m.to_string()),
            test_after_renewal: p.test_after_renewal,
            revocation_format: p.revocation_format,
            client_secret_expires_at: None,
            next_client_secret_expires_at: None,
            client_secret: None,
            private_key: None,
            next_client_secret: None,
        }
    }
}

impl From<&ProviderEntry> for ProviderShape {
    fn from(p: &ProviderEntry) -> Self {
        Self {
            method: p.client_auth_method.parse().ok(),
            has_authorization_endpoint: p.authorization_endpoint.is_some(),
            has_jwks_uri: p.jwks_uri.is_some(),
            has_device_endpoint: p.device_authorization_endpoint.is_some(),
        }
    }
}

impl ProviderEntry {
    /// A new row of the entry's settings, with the id and name it gets
    /// here and no secrets. Fails only on a client authentication method
    /// of no known name, which the reader has refused already.
    pub fn to_row(
        &self,
        id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<provider::Model, UnknownName> {
        Ok(provider::Model {
            id: id.to_owned(),
            name: name.to_owned(),
            issuer: self.issuer.clone(),
            authorization_endpoint: self.authorization_endpoint.clone(),
            token_endpoint: self.token_endpoint.trim().to_owned(),
            refresh_endpoint: self.refresh_endpoint.clone(),
            revocation_endpoint: self.revocation_endpoint.clone(),
            jwks_uri: self.jwks_uri.clone(),
            client_id: self.client_id.clone(),
            client_secret: None,
            client_auth_method: self.client_auth_method.parse()?,
            private_key: None,
            key_id: self.key_id.clone(),
            signing_alg: self.signing_alg.clone(),
            assertion_audience: self.assertion_audience.clone(),
            pkce: self.pkce,
            scope_separator: self.scope_separator.clone(),
            default_lifetime_secs: self.default_lifetime_secs,
            expires_in_millis: self.expires_in_millis,
            authorize_params: params_json(&self.authorize_params),
            token_params: params_json(&self.token_params),
            connect_timeout_ms: i32::try_from(self.connect_timeout_ms).unwrap_or(i32::MAX),
            timeout_ms: i32::try_from(self.timeout_ms).unwrap_or(i32::MAX),
            iss_parameter_supported: self.iss_parameter_supported,
            refresh_concurrency: i32::try_from(self.refresh_concurrency).unwrap_or(1),
            refresh_rate_per_minute: i32::try_from(self.refresh_rate_per_minute).unwrap_or(0),
            certificate: self.certificate.clone(),
            send_sha1_thumbprint: self.send_sha1_thumbprint,
            certificate_expiry_announced: None,
            template: self.template.clone(),
            default_scope: self.default_scope.clone(),
            required_scope: self.required_scope.clone(),
            token_response_path: self.token_response_path.clone(),
            keep_response_fields: crate::providers::kept_fields_json(&self.keep_response_fields),
            refresh_token_rotates: self.refresh_token_rotates,
            omit_scope_on_refresh: self.omit_scope_on_refresh,
            omit_code_on_refresh: self.omit_code_on_refresh,
            url_encode_refresh_token: self.url_encode_refresh_token,
            send_client_id_in_body: self.send_client_id_in_body,
            pushed_authorization_request_endpoint: self
                .pushed_authorization_request_endpoint
                .clone(),
            device_authorization_endpoint: self.device_authorization_endpoint.clone(),
            refresh_token_lifetime_secs: self.refresh_token_lifetime_secs.filter(|s| *s > 0),
            refresh_token_lifetime_sliding: self.refresh_token_lifetime_sliding,
            test_request_url: self.test_request_url.clone(),
            test_request_method: self
                .test_request_method
                .as_deref()
                .and_then(|m| m.parse().ok()),
            test_after_renewal: self.test_after_renewal,
            revocation_format: self.revocation_format,
            next_client_secret: None,
            client_secret_expires_at: None,
            next_client_secret_expires_at: None,
            secret_in_use: None,
            secret_in_use_since: None,
            secret_expiry_announced_for: None,
            next_secret_expiry_announced_for: None,
            created_at: now,
            updated_at: now,
        })
    }
}

impl From<&token::Model> for TokenEntry {
    /// The row's settings, under the row's id; its owner, secrets and the
    /// facts of its access token are left out.
    fn from(t: &token::Model) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            provider_id: t.provider_id.clone(),
            owner_email: None,
            flow: t.flow.to_string(),
            use_default_keys: t.use_default_keys,
            client_id: t.client_id.clone(),
            username: t.username.clone(),
            resource: t.resource.clone(),
            scope: t.scope.clone(),
            additional_values: params::without_reserved(params_map(&t.additional_values)),
            refresh_margin_secs: i64::from(t.refresh_margin_secs),
            auto_refresh: t.auto_refresh,
            refresh_lead_secs: i64::from(t.refresh_lead_secs),
            test_request_url: t.test_request_url.clone(),
            test_request_method: t.test_request_method.map(|m| m.to_string()),
            token_type: None,
            expires_at: None,
            granted_scope: None,
            response_fields: None,
            refresh_token_expires_at: None,
            client_secret_expires_at: None,
            next_client_secret_expires_at: None,
            client_secret: None,
            password: None,
            access_token: None,
            refresh_token: None,
            next_client_secret: None,
        }
    }
}

/// Where an imported token goes here.
pub struct TokenPlace<'a> {
    /// Its id here.
    pub id: &'a str,
    /// Its name here.
    pub name: &'a str,
    /// The account that owns it here.
    pub owner_id: &'a str,
    /// The provider it uses here.
    pub provider_id: &'a str,
}

impl TokenEntry {
    /// A new row of the entry's settings at `place`, with no secrets: it
    /// needs credentials until an access token is stored on it. Fails
    /// only on a flow of no known name, which the reader has refused
    /// already.
    pub fn to_row(
        &self,
        place: TokenPlace<'_>,
        now: DateTime<Utc>,
    ) -> Result<token::Model, UnknownName> {
        Ok(token::Model {
            id: place.id.to_owned(),
            name: place.name.to_owned(),
            owner_id: place.owner_id.to_owned(),
            provider_id: place.provider_id.to_owned(),
            flow: self.flow.parse()?,
            use_default_keys: self.use_default_keys,
            client_id: self.client_id.clone(),
            client_secret: None,
            username: self.username.clone(),
            password: None,
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            additional_values: params_json(&self.additional_values),
            status: TokenStatus::NeedsCredentials,
            access_token: None,
            refresh_token: None,
            token_type: None,
            expires_at: None,
            granted_scope: None,
            identity: None,
            last_error: None,
            last_refreshed_at: None,
            refresh_margin_secs: to_i32(self.refresh_margin_secs),
            lease_owner: None,
            lease_until: None,
            auto_refresh: self.auto_refresh,
            refresh_lead_secs: to_i32(self.refresh_lead_secs),
            refresh_due_at: None,
            failure_count: 0,
            response_fields: None,
            authorization_code: None,
            device_code: None,
            user_code: None,
            verification_uri: None,
            verification_uri_complete: None,
            device_expires_at: None,
            device_interval_secs: None,
            device_next_poll_at: None,
            refresh_token_expires_at: None,
            reauthorization_announced_for: None,
            renewal_notes: None,
            test_request_url: self.test_request_url.clone(),
            test_request_method: self
                .test_request_method
                .as_deref()
                .and_then(|m| m.parse().ok()),
            last_test_at: None,
            last_test_status: None,
            last_test_result: None,
            last_used_at: None,
            last_used_by: None,
            next_client_secret: None,
            client_secret_expires_at: None,
            next_client_secret_expires_at: None,
            secret_in_use: None,
            secret_in_use_since: None,
            secret_expiry_announced_for: None,
            next_secret_expiry_announced_for: None,
            unused_announced_for: None,
            created_at: now,
            updated_at: now,
        })
    }
}

fn to_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

// Defaults match what the providers and tokens services set on creation,
// so a hand-written bundle may leave them out.
fn yes() -> bool {
    true
}

fn default_client_auth_method() -> String {
    "client_secret_basic".to_owned()
}

fn default_scope_separator() -> String {
    " ".to_owned()
}

fn default_connect_timeout_ms() -> u32 {
    DEFAULT_CONNECT_TIMEOUT_MS
}

fn default_timeout_ms() -> u32 {
    DEFAULT_TIMEOUT_MS
}

fn default_refresh_margin_secs() -> i64 {
    60
}

fn default_refresh_lead_secs() -> i64 {
    i64::from(crate::tokens::engine::DEFAULT_LEAD_SECS)
}

fn default_refresh_concurrency() -> u32 {
    crate::providers::DEFAULT_REFRESH_CONCURRENCY
}

fn default_refresh_rate_per_minute() -> u32 {
    crate::providers::DEFAULT_REFRESH_RATE_PER_MINUTE
}

/// Revocation as RFC 7009 says, not written to bundles.
fn is_form(format: &RevocationFormat) -> bool {
    *format == RevocationFormat::Form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_take_service_defaults_when_fields_are_left_out() {
        let p: ProviderEntry = serde_json::from_str(
            r#"{"id":"p1","name":"P","token_endpoint":"https://as.example/token"}"#,
        )
        .unwrap();
        assert_eq!(p.client_auth_method, "client_secret_basic");
        assert!(p.pkce);
        assert_eq!(p.scope_separator, " ");
        assert_eq!(p.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS);
        let t: TokenEntry = serde_json::from_str(
            r#"{"id":"t1","name":"T","provider_id":"p1","flow":"client_credentials"}"#,
        )
        .unwrap();
        assert!(t.use_default_keys);
        assert_eq!(t.refresh_margin_secs, 60);
        // Fields added after the first bundles were written take the
        // service defaults, so those bundles still read.
        assert!(t.auto_refresh);
        assert_eq!(t.refresh_lead_secs, 300);
        assert_eq!(p.refresh_concurrency, 4);
        assert_eq!(p.refresh_rate_per_minute, 600);
    }

    #[test]
    fn absent_secrets_are_not_written() {
        let t: TokenEntry = serde_json::from_str(
            r#"{"id":"t1","name":"T","provider_id":"p1","flow":"client_credentials"}"#,
        )
        .unwrap();
        let json = serde_json::to_string(&t).unwrap();
        for field in TokenSecret::ALL {
            assert!(!json.contains(field.as_str()), "{json}");
        }
    }
}
