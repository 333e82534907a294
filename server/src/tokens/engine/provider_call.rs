//! The call to the provider: client authentication, the reused HTTP
//! client, the grant sent to the token endpoint, and revocation.

use std::collections::BTreeMap;

use app::error::AppError;
use url::Url;

use super::{RequestValues, TokenEngine};
use crate::db::entity::{provider, token};
use crate::oauth::client_auth::ClientAuth;
use crate::oauth::grant::{GrantError, TokenEndpoint};
use crate::oauth::outbound::OutboundError;
use crate::oauth::params;
use crate::oauth::token_response::{ProviderFault, ResponseShape, TokenSet};
use crate::providers::{OpenedProvider, kept_fields, params_map};
use crate::secret::SecretString;
use crate::tokens::open_secret;
use app::providers::SecretSlot;
use app::tokens::Revocation;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// Whose client secrets: the provider's default client, or a token's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretOwner {
    Provider(String),
    Token(String),
}

impl std::fmt::Display for SecretOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Provider(id) => write!(f, "provider {id}"),
            Self::Token(id) => write!(f, "token {id}"),
        }
    }
}

/// The client secrets a request may use, preferred first.
pub(crate) struct ClientSecrets {
    owner: SecretOwner,
    client_id: String,
    choices: Vec<(SecretSlot, SecretString)>,
    /// The secret the provider last accepted, as recorded.
    in_use: Option<SecretSlot>,
}

/// The provider refused the client's authentication.
fn is_invalid_client(e: &GrantError) -> bool {
    match e {
        GrantError::Provider(ProviderFault::Refused { error, .. })
        | GrantError::RetryAfter {
            fault: ProviderFault::Refused { error, .. },
            ..
        } => error == "invalid_client",
        _ => false,
    }
}

impl TokenEngine {
    /// The client secrets a token's requests may use: the provider's
    /// default client's, or the token's own; the one the provider last
    /// accepted first.
    pub(crate) fn client_secrets(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
    ) -> Result<ClientSecrets, AppError> {
        let method = provider.model.client_auth_method;
        // The provider's key signs for the provider's client only: a token
        // cannot make Quiver sign an assertion for another client (rows
        // stored before this was refused are sent as the provider's client).
        let provider_keys = t.use_default_keys || method.uses_provider_key();
        let (owner, client_id, current, next, in_use) = if provider_keys {
            (
                SecretOwner::Provider(provider.model.id.clone()),
                provider.model.client_id.clone().unwrap_or_default(),
                provider.client_secret.clone(),
                provider.next_client_secret.clone(),
                provider.model.secret_in_use,
            )
        } else {
            let open = |column, sealed| open_secret(&self.tokens.sealer, &t.id, column, sealed);
            (
                SecretOwner::Token(t.id.clone()),
                t.client_id.clone().unwrap_or_default(),
                open("client_secret", &t.client_secret)?,
                open("next_client_secret", &t.next_client_secret)?,
                t.secret_in_use,
            )
        };
        let mut choices: Vec<(SecretSlot, SecretString)> = [
            current.map(|s| (SecretSlot::Current, s)),
            next.map(|s| (SecretSlot::Next, s)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if in_use == Some(SecretSlot::Next) {
            choices.reverse();
        }
        Ok(ClientSecrets {
            owner,
            client_id,
            choices,
            in_use,
        })
    }

    /// The client authentication for a token, with its preferred secret.
    pub(crate) fn client_auth(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
    ) -> Result<ClientAuth, AppError> {
        let secrets = self.client_secrets(t, provider)?;
        Ok(self.auth_with(provider, &secrets, 0))
    }

    /// The client authentication with the secret at `choice` of `secrets`.
    fn auth_with(
        &self,
        provider: &OpenedProvider,
        secrets: &ClientSecrets,
        choice: usize,
    ) -> ClientAuth {
        let audience = provider
            .model
            .assertion_audience
            .clone()
            // An issuer with a tenant placeholder is no audience; the
            // token endpoint always is.
            .or_else(|| {
                provider
                    .model
                    .issuer
                    .clone()
                    .filter(|i| !i.contains(crate::oauth::id_token::TENANT_PLACEHOLDER))
            })
            .unwrap_or_else(|| provider.model.token_endpoint.clone());
        ClientAuth {
            method: provider.model.client_auth_method,
            client_id: secrets.client_id.clone(),
            client_secret: secrets.choices.get(choice).map(|(_, s)| s.clone()),
            key: provider.key.clone(),
            audience,
            client_id_in_body: provider.model.send_client_id_in_body,
        }
    }

    /// Records that the provider accepted the `slot` secret of `owner`.
    async fn record_secret_in_use(&self, owner: &SecretOwner, slot: SecretSlot) {
        let now = self.now();
        let stored = match owner {
            SecretOwner::Provider(id) => provider::Entity::update_many()
                .col_expr(provider::Column::SecretInUse, Expr::value(slot))
                .col_expr(provider::Column::SecretInUseSince, Expr::value(now))
                .filter(provider::Column::Id.eq(id.as_str()))
                .exec(&self.tokens.db)
                .await
                .map(|_| ()),
            SecretOwner::Token(id) => token::Entity::update_many()
                .col_expr(token::Column::SecretInUse, Expr::value(slot))
                .col_expr(token::Column::SecretInUseSince, Expr::value(now))
                .filter(token::Column::Id.eq(id.as_str()))
                .exec(&self.tokens.db)
                .await
                .map(|_| ()),
        };
        match stored {
            Ok(()) => {
                tracing::info!(client = %owner, secret = %slot, "the provider accepts this client secret now")
            }
            Err(e) => {
                tracing::warn!(client = %owner, error = %e, "could not record which client secret works")
            }
        }
    }

    pub(crate) fn http_client(&self, provider: &OpenedProvider) -> reqwest::Client {
        self.http_for(&provider.model)
    }

    /// The reused HTTP client for a provider's timeouts; with mutual TLS,
    /// one that presents the provider's certificate and key.
    pub(crate) fn http_for(&self, model: &crate::db::entity::provider::Model) -> reqwest::Client {
        let connect = u64::try_from(model.connect_timeout_ms).unwrap_or(5_000);
        let total = u64::try_from(model.timeout_ms).unwrap_or(30_000);
        if model.client_auth_method.is_mutual_tls()
            && let Some(key) = self.providers.key_of(model)
            && let Some(certificate) = &key.certificate
        {
            let identity = crate::oauth::outbound::TlsIdentity {
                name: format!("{}:{}", model.id, certificate.x5t_s256()),
                certificate_pem: certificate.pem.clone(),
                key_pem: key.pem.clone(),
            };
            return self.http.with_identity(connect, total, &identity);
        }
        self.http.get(connect, total)
    }

    pub(crate) fn values(t: &token::Model) -> RequestValues {
        RequestValues {
            scope: t.scope.clone(),
            resource: t.resource.clone(),
            additional: serde_json::from_str(&t.additional_values).unwrap_or_default(),
        }
    }

    /// Sends a grant to the token (or refresh) endpoint.
    pub(crate) async fn call(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        mut grant: Vec<(String, String)>,
        values: &RequestValues,
        refresh: bool,
    ) -> Result<TokenSet, GrantError> {
        if let Some(scope) = &values.scope {
            grant.push((
                "scope".into(),
                crate::oauth::params::scope_param(scope, &provider.model.scope_separator),
            ));
        }
        if let Some(resource) = &values.resource {
            grant.push(("resource".into(), resource.clone()));
        }
        let secrets = self.client_secrets(t, provider).map_err(|e| {
            GrantError::ClientAuth(crate::oauth::client_auth::ClientAuthError::Sign(
                e.to_string(),
            ))
        })?;
        let url_text = if refresh {
            provider
                .model
                .refresh_endpoint
                .clone()
                .unwrap_or_else(|| provider.model.token_endpoint.clone())
        } else {
            provider.model.token_endpoint.clone()
        };
        let url = Url::parse(&url_text)
            .map_err(|e| GrantError::Outbound(OutboundError::Refused(e.to_string())))?;
        let provider_params = params_map(&provider.model.token_params);
        for (source, name) in params::stored_reserved(&provider_params, &values.additional) {
            tracing::warn!(
                token = %t.id,
                provider = %provider.model.id,
                source,
                parameter = name,
                "an extra value named like a parameter Quiver sets itself is not sent; remove it"
            );
        }
        let keep = kept_fields(&provider.model.keep_response_fields);
        let client = self.http_client(provider);
        let send = |auth: ClientAuth, grant: Vec<(String, String)>| {
            let (url, client, provider_params, keep) = (&url, &client, &provider_params, &keep);
            async move {
                TokenEndpoint {
                    url,
                    client,
                    auth: &auth,
                    provider_params,
                    token_params: &values.additional,
                    shape: ResponseShape {
                        expires_in_millis: provider.model.expires_in_millis,
                        path: provider.model.token_response_path.as_deref(),
                        keep,
                    },
                }
                .request(grant, self.now())
                .await
            }
        };
        let Some(&(preferred, _)) = secrets.choices.first() else {
            return send(self.auth_with(provider, &secrets, 0), grant).await;
        };
        let first = send(self.auth_with(provider, &secrets, 0), grant.clone()).await;
        // `invalid_client` says the client's authentication failed before
        // the provider looked at the grant (RFC 6749 §5.2): the grant, a
        // refresh token included, was not used, and can go once more with
        // the other secret.
        let (result, slot) = match (first, secrets.choices.get(1)) {
            (Err(e), Some(&(other, _))) if is_invalid_client(&e) => {
                tracing::warn!(
                    client = %secrets.owner,
                    refused = %preferred,
                    trying = %other,
                    "the provider refused the client secret; trying the other one"
                );
                (
                    send(self.auth_with(provider, &secrets, 1), grant).await,
                    other,
                )
            }
            (first, _) => (first, preferred),
        };
        if result.is_ok() && secrets.choices.len() > 1 && secrets.in_use != Some(slot) {
            self.record_secret_in_use(&secrets.owner, slot).await;
        }
        result
    }

    /// Exchanges an authorization code (no scope or resource: the grant has them).
    pub(crate) async fn exchange_code(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        grant: Vec<(String, String)>,
    ) -> Result<TokenSet, GrantError> {
        let values = RequestValues {
            scope: None,
            resource: None,
            additional: BTreeMap::new(),
        };
        self.call(t, provider, grant, &values, false).await
    }

    /// Revokes the token's refresh and access tokens at the provider.
    pub(crate) async fn revoke_at_provider(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
    ) -> (Revocation, Option<String>) {
        let Some(endpoint) = provider.model.revocation_endpoint.as_deref() else {
            return (Revocation::NotSupported, None);
        };
        let refresh = open_secret(
            &self.tokens.sealer,
            &t.id,
            "refresh_token",
            &t.refresh_token,
        )
        .ok()
        .flatten();
        let access = open_secret(&self.tokens.sealer, &t.id, "access_token", &t.access_token)
            .ok()
            .flatten();
        if refresh.is_none() && access.is_none() {
            return (Revocation::NothingToRevoke, None);
        }
        let Ok(url) = Url::parse(endpoint) else {
            return (
                Revocation::Failed,
                Some("the revocation endpoint is not a URL".into()),
            );
        };
        let auth = match self.client_auth(t, provider) {
            Ok(a) => a,
            Err(e) => return (Revocation::Failed, Some(e.to_string())),
        };
        let client = self.http_client(provider);
        let none = BTreeMap::new();
        let endpoint = TokenEndpoint {
            url: &url,
            client: &client,
            auth: &auth,
            provider_params: &none,
            token_params: &none,
            shape: ResponseShape::default(),
        };
        for (token, hint) in [(refresh, "refresh_token"), (access, "access_token")] {
            if let Some(token) = token
                && let Err(e) = endpoint
                    .revoke(
                        &url,
                        token.expose(),
                        hint,
                        provider.model.revocation_format,
                        self.now(),
                    )
                    .await
            {
                return (Revocation::Failed, Some(e.to_string()));
            }
        }
        (Revocation::Revoked, None)
    }
}
