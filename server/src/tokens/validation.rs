//! A token's settings checked against its provider and applied: the flow
//! fits the provider, the keys and credentials it needs are there, and the
//! numeric settings are in range. The rules are written once, here: the
//! token service applies them to what a user enters, and an import to each
//! token of a bundle, in the words of each ([`Wording`]).

use app::error::AppError;
use app::tokens::TokenInput;
use sea_orm::ActiveValue::Set;
use url::Url;

use super::Flow;
use super::engine::{DEFAULT_LEAD_SECS, TokenEngine, clean, invalid};
use crate::db::entity::{provider, token};
use crate::oauth::client_auth::ClientAuthMethod;
use crate::oauth::params;
use crate::providers::{FieldError, OpenedProvider, Wording, has_value, secrets};

/// What of a provider decides which flows its tokens can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderShape {
    /// How it authenticates the client (none: a name of no known method).
    pub method: Option<ClientAuthMethod>,
    /// Whether it has an authorization endpoint (the browser flows).
    pub has_authorization_endpoint: bool,
    /// Whether it has a JWKS URI (id_tokens checked).
    pub has_jwks_uri: bool,
    /// Whether it has a device authorization endpoint (the Device Code flow).
    pub has_device_endpoint: bool,
}

impl From<&provider::Model> for ProviderShape {
    fn from(p: &provider::Model) -> Self {
        Self {
            method: Some(p.client_auth_method),
            has_authorization_endpoint: p.authorization_endpoint.is_some(),
            has_jwks_uri: p.jwks_uri.is_some(),
            has_device_endpoint: p.device_authorization_endpoint.is_some(),
        }
    }
}

/// Every reason `flow` cannot be used with `provider`, in order.
pub fn flow_misfits(flow: Flow, provider: &ProviderShape, words: Wording) -> Vec<FieldError> {
    let mut found = Vec::new();
    if provider.method == Some(ClientAuthMethod::PrivateKeyJwt) && flow != Flow::ClientCredentials {
        found.push(match words {
            Wording::Form => {
                "this provider uses Private Key JWT, which works only with the Client Credentials flow"
            }
            Wording::Bundle => {
                "the provider uses private_key_jwt, which works only with client_credentials"
            }
            Wording::ExistingProvider => {
                "the existing provider uses private_key_jwt, which works only with client_credentials"
            }
        });
    }
    if flow.is_interactive() && !provider.has_authorization_endpoint {
        found.push(match words {
            Wording::Form => {
                "this flow needs a browser, but the provider has no authorization endpoint"
            }
            Wording::Bundle => {
                "this flow needs a browser, but the provider has no authorization_endpoint"
            }
            Wording::ExistingProvider => {
                "this flow needs a browser, but the existing provider has no authorization_endpoint"
            }
        });
    }
    if flow == Flow::DeviceCode && !provider.has_device_endpoint {
        found.push(match words {
            Wording::Form => {
                "the Device Code flow needs the provider's device authorization endpoint"
            }
            Wording::Bundle => "device_code needs the provider's device_authorization_endpoint",
            Wording::ExistingProvider => {
                "device_code needs the existing provider's device_authorization_endpoint"
            }
        });
    }
    if flow == Flow::OidcHybrid && !provider.has_jwks_uri {
        found.push(match words {
            Wording::Form => "OIDC Hybrid needs the provider's JWKS URI to check id_tokens",
            Wording::Bundle => "oidc_hybrid needs the provider's jwks_uri to check id_tokens",
            Wording::ExistingProvider => {
                "oidc_hybrid needs the existing provider's jwks_uri to check id_tokens"
            }
        });
    }
    found
        .into_iter()
        .map(|message| FieldError::new("flow", message))
        .collect()
}

/// A token of a provider that proves its client with its own key
/// (`private_key_jwt`, mutual TLS) uses the provider's keys: the key (and
/// its certificate) are for the provider's client only.
pub fn check_own_keys(
    use_default_keys: bool,
    provider: &ProviderShape,
    words: Wording,
) -> Result<(), FieldError> {
    let Some(method) = provider.method.filter(|m| m.uses_provider_key()) else {
        return Ok(());
    };
    if use_default_keys {
        return Ok(());
    }
    let message = match (method, words) {
        (ClientAuthMethod::PrivateKeyJwt, Wording::Form) => {
            "this provider uses Private Key JWT: its key signs for the provider's client only, so its tokens use the provider's keys".to_owned()
        }
        (ClientAuthMethod::PrivateKeyJwt, Wording::Bundle) => {
            "must be true: the provider uses private_key_jwt, whose key signs for the provider's client only".to_owned()
        }
        (ClientAuthMethod::PrivateKeyJwt, Wording::ExistingProvider) => {
            "must be true: the existing provider uses private_key_jwt, whose key signs for the provider's client only".to_owned()
        }
        (_, Wording::Form) => {
            "this provider uses mutual TLS: its certificate is the provider's client's, so its tokens use the provider's keys".to_owned()
        }
        (_, Wording::Bundle) => format!(
            "must be true: the provider uses {method}, whose certificate is the provider's client's"
        ),
        (_, Wording::ExistingProvider) => format!(
            "must be true: the existing provider uses {method}, whose certificate is the provider's client's"
        ),
    };
    Err(FieldError::new("use_default_keys", message))
}

/// Refresh ahead of expiry: 0 to a day.
pub fn check_refresh_margin(secs: i64, words: Wording) -> Result<(), FieldError> {
    if (0..=86_400).contains(&secs) {
        return Ok(());
    }
    let field = match words {
        Wording::Form => "refresh_margin_seconds",
        Wording::Bundle | Wording::ExistingProvider => "refresh_margin_secs",
    };
    Err(FieldError::new(field, "must be between 0 and 86400"))
}

/// Background renewal ahead of expiry: 0 to a week.
pub fn check_refresh_lead(secs: i64, words: Wording) -> Result<(), FieldError> {
    if (0..=604_800).contains(&secs) {
        return Ok(());
    }
    Err(match words {
        Wording::Form => FieldError::new(
            "refresh_lead_seconds",
            "must be between 0 and 604800 (a week)",
        ),
        Wording::Bundle | Wording::ExistingProvider => {
            FieldError::new("refresh_lead_secs", "must be between 0 and 604800")
        }
    })
}

/// An RFC 8707 resource: an absolute URI.
pub fn check_resource(resource: &str) -> Result<(), FieldError> {
    Url::parse(resource)
        .map(|_| ())
        .map_err(|_| FieldError::new("resource", "must be an absolute URI (RFC 8707)"))
}

impl TokenEngine {
    /// Checks and applies the settings of `input` (absent keeps).
    pub(crate) fn apply_settings(
        &self,
        id: &str,
        active: &mut token::ActiveModel,
        provider: &OpenedProvider,
        flow: Flow,
        input: &TokenInput,
        creating: bool,
    ) -> Result<(), AppError> {
        let method = provider.model.client_auth_method;
        let shape = ProviderShape::from(&provider.model);
        if let Some(misfit) = flow_misfits(flow, &shape, Wording::Form).into_iter().next() {
            return Err(misfit.into());
        }
        if let Some(v) = input.use_default_keys {
            active.use_default_keys = Set(v);
        } else if creating {
            active.use_default_keys = Set(true);
        }
        let use_default = active.use_default_keys.clone().unwrap();
        check_own_keys(input.use_default_keys != Some(false), &shape, Wording::Form)?;
        if let Some(v) = input.client_id.clone() {
            active.client_id = Set(clean(Some(v)));
        }
        if let Some(v) = input.client_secret.clone() {
            active.client_secret = Set(clean(Some(v)).map(|s| self.seal(id, "client_secret", &s)));
        }
        if let Some(v) = input.next_client_secret.clone() {
            active.next_client_secret =
                Set(clean(Some(v)).map(|s| self.seal(id, "next_client_secret", &s)));
        }
        if let Some(text) = input.client_secret_expires_at.as_deref() {
            active.client_secret_expires_at =
                Set(secrets::parse_expiry("client_secret_expires_at", text)?);
        }
        if let Some(text) = input.next_client_secret_expires_at.as_deref() {
            active.next_client_secret_expires_at = Set(secrets::parse_expiry(
                "next_client_secret_expires_at",
                text,
            )?);
        }
        // New secrets: which one the provider accepts is not known yet.
        if input.client_secret.is_some() || input.next_client_secret.is_some() {
            active.secret_in_use = Set(None);
            active.secret_in_use_since = Set(None);
        }
        let needs_secret = matches!(
            method,
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
        );
        if use_default {
            if provider.model.client_id.is_none() {
                return Err(invalid(
                    "use_default_keys",
                    "the provider has no default Consumer Key (client id); enter the token's own keys",
                ));
            }
            if needs_secret && provider.client_secret.is_none() {
                return Err(invalid(
                    "use_default_keys",
                    "the provider has no default Secret Key; enter the token's own keys",
                ));
            }
        } else {
            if !has_value(&active.client_id) {
                return Err(invalid(
                    "client_id",
                    "is required when Use Default Keys is off",
                ));
            }
            if needs_secret && !has_value(&active.client_secret) {
                return Err(invalid(
                    "client_secret",
                    "is required when Use Default Keys is off",
                ));
            }
        }
        if let Some(v) = input.username.clone() {
            active.username = Set(clean(Some(v)));
        }
        if let Some(v) = input.password.clone() {
            active.password = Set((!v.is_empty()).then(|| self.seal(id, "password", &v)));
        }
        if flow == Flow::Password {
            if !has_value(&active.username) {
                return Err(invalid("username", "is required for the Password flow"));
            }
            if !has_value(&active.password) {
                return Err(invalid("password", "is required for the Password flow"));
            }
        }
        if let Some(v) = input.resource.clone() {
            let v = clean(Some(v));
            if let Some(r) = &v {
                check_resource(r)?;
            }
            active.resource = Set(v);
        }
        // The provider's required scopes are always asked for.
        let required = provider.model.required_scope.as_deref();
        if let Some(v) = input.scope.clone() {
            active.scope = Set(params::with_required(clean(Some(v)).as_deref(), required));
        } else if creating {
            // A token given no scope starts with the provider's default.
            active.scope = Set(params::with_required(
                provider.model.default_scope.as_deref(),
                required,
            ));
        }
        if let Some(margin) = input.refresh_margin_seconds {
            check_refresh_margin(margin, Wording::Form)?;
            active.refresh_margin_secs = Set(margin as i32);
        } else if creating {
            active.refresh_margin_secs = Set(60);
        }
        if let Some(on) = input.auto_refresh {
            active.auto_refresh = Set(on);
        } else if creating {
            active.auto_refresh = Set(true);
        }
        if let Some(lead) = input.refresh_lead_seconds {
            check_refresh_lead(lead, Wording::Form)?;
            active.refresh_lead_secs = Set(lead as i32);
        } else if creating {
            active.refresh_lead_secs = Set(DEFAULT_LEAD_SECS);
        }
        if creating {
            active.failure_count = Set(0);
            active.refresh_due_at = Set(None);
        }
        if let Some(map) = &input.additional_values {
            params::check(map).map_err(|problem| match problem.key() {
                Some(key) => invalid(
                    &format!("additional_values.{}", key.trim()),
                    problem.message(),
                ),
                None => invalid("additional_values", "has an empty key"),
            })?;
            active.additional_values =
                Set(serde_json::to_string(map).unwrap_or_else(|_| "{}".into()));
        }
        Ok(())
    }
}
