//! A token's settings checked against its provider and applied: the flow
//! fits the provider, the keys and credentials it needs are there, and the
//! numeric settings are in range.

use app::error::AppError;
use app::tokens::TokenInput;
use sea_orm::ActiveValue::Set;
use url::Url;

use super::Flow;
use super::engine::{DEFAULT_LEAD_SECS, TokenEngine, clean, invalid};
use crate::db::entity::token;
use crate::oauth::client_auth::ClientAuthMethod;
use crate::oauth::params;
use crate::providers::{OpenedProvider, has_value};

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
        if method == ClientAuthMethod::PrivateKeyJwt && flow != Flow::ClientCredentials {
            return Err(invalid(
                "flow",
                "this provider uses Private Key JWT, which works only with the Client Credentials flow",
            ));
        }
        if flow.is_interactive() && provider.model.authorization_endpoint.is_none() {
            return Err(invalid(
                "flow",
                "this flow needs a browser, but the provider has no authorization endpoint",
            ));
        }
        if flow == Flow::OidcHybrid && provider.model.jwks_uri.is_none() {
            return Err(invalid(
                "flow",
                "OIDC Hybrid needs the provider's JWKS URI to check id_tokens",
            ));
        }
        if let Some(v) = input.use_default_keys {
            active.use_default_keys = Set(v);
        } else if creating {
            active.use_default_keys = Set(true);
        }
        let use_default = active.use_default_keys.clone().unwrap();
        if method == ClientAuthMethod::PrivateKeyJwt && input.use_default_keys == Some(false) {
            return Err(invalid(
                "use_default_keys",
                "this provider uses Private Key JWT: its key signs for the provider's client only, so its tokens use the provider's keys",
            ));
        }
        if let Some(v) = input.client_id.clone() {
            active.client_id = Set(clean(Some(v)));
        }
        if let Some(v) = input.client_secret.clone() {
            active.client_secret = Set(clean(Some(v)).map(|s| self.seal(id, "client_secret", &s)));
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
                Url::parse(r)
                    .map_err(|_| invalid("resource", "must be an absolute URI (RFC 8707)"))?;
            }
            active.resource = Set(v);
        }
        if let Some(v) = input.scope.clone() {
            active.scope = Set(clean(Some(v)));
        }
        if let Some(margin) = input.refresh_margin_seconds {
            if !(0..=86_400).contains(&margin) {
                return Err(invalid(
                    "refresh_margin_seconds",
                    "must be between 0 and 86400",
                ));
            }
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
            if !(0..=604_800).contains(&lead) {
                return Err(invalid(
                    "refresh_lead_seconds",
                    "must be between 0 and 604800 (a week)",
                ));
            }
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
