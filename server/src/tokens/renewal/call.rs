//! The renewal's call to the provider: the refresh_token grant, or the
//! flow's own grant (Request again, Reset Client Credentials after
//! revoking), and the outcome stored and audited.

use app::error::AppError;
use app::tokens::TokenInput;
use sea_orm::ActiveModelTrait;
use tokio::sync::OwnedSemaphorePermit;

use super::{Claim, Renewal, Renewed};
use crate::audit::Actor;
use crate::db::entity::token;
use crate::oauth::grant::GrantError;
use crate::oauth::token_response::{ProviderFault, TokenSet};
use crate::providers::OpenedProvider;
use crate::secret::SecretString;
use crate::tokens::engine::{Mode, RequestValues, TokenEngine, token_error};
use crate::tokens::lifetimes::Issued;
use crate::tokens::{Flow, db_error, open_secret};

impl TokenEngine {
    /// Renews `t`, whose row was read after `claim` was taken, at the
    /// provider, and stores the outcome in the update that releases the
    /// claim. `slot`, a place in the provider's concurrency limit, is given
    /// back as soon as the provider has answered.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn renew_claimed(
        &self,
        t: token::Model,
        claim: &Claim,
        renewal: Renewal,
        actor: Actor,
        addr: Option<String>,
        mode: Mode,
        provider: &OpenedProvider,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<Renewed, AppError> {
        let started = std::time::Instant::now();
        let action = renewal.action();
        let flow = t.flow;
        let mut t = t;
        let mut revocation = None;
        let outcome = match renewal {
            Renewal::Refresh => {
                let refresh_token = open_secret(
                    &self.tokens.sealer,
                    &t.id,
                    "refresh_token",
                    &t.refresh_token,
                )?;
                match refresh_token {
                    Some(refresh) => self.refresh_grant(&t, provider, flow, refresh).await,
                    None if !flow.needs_person() => self
                        .obtain(&t, provider, &Self::values(&t))
                        .await
                        .map(|set| (set, Issued::Granted)),
                    None => {
                        if mode == Mode::Background {
                            self.needs_person(&t, claim).await?;
                        }
                        return self
                            .audited(
                                actor,
                                &addr,
                                action,
                                Some(t.id.clone()),
                                Err(AppError::NeedsReauthorization {
                                    auth_link: crate::tokens::reauthorization_link(&t),
                                }),
                                Some("no refresh token".into()),
                            )
                            .await;
                    }
                }
            }
            Renewal::Request => self
                .obtain(&t, provider, &Self::values(&t))
                .await
                .map(|set| (set, Issued::Granted)),
            Renewal::Reset(overrides) => {
                if overrides.scope.is_some()
                    || overrides.resource.is_some()
                    || overrides.additional_values.is_some()
                {
                    let input = TokenInput {
                        scope: overrides.scope.clone(),
                        resource: overrides.resource.clone(),
                        additional_values: overrides.additional_values.clone(),
                        ..Default::default()
                    };
                    let mut active: token::ActiveModel = t.clone().into();
                    self.apply_settings(
                        &t.id,
                        &mut active,
                        provider,
                        Flow::ClientCredentials,
                        &input,
                        false,
                    )?;
                    t = active.update(&self.tokens.db).await.map_err(db_error)?;
                }
                let (done, error) = self.revoke_at_provider(&t, provider).await;
                revocation = Some(format!(
                    "revocation: {done}{}",
                    error.map(|e| format!(" ({e})")).unwrap_or_default()
                ));
                self.obtain(&t, provider, &Self::values(&t))
                    .await
                    .map(|set| (set, Issued::Granted))
            }
        };
        // The provider is done with: the next renewal may call it while
        // this one is stored.
        drop(slot);
        let failed = outcome.as_ref().err().map(|e| format!("failed: {e}"));
        let failure = outcome.as_ref().err().map(token_error);
        let stored = match outcome {
            Ok((set, issued)) => {
                let stored = self.store_success(&t, provider, set, issued, claim).await;
                if let Ok(renewed) = &stored {
                    self.test_after_renewal(renewed, provider);
                }
                stored
            }
            Err(e) => self.store_failure(&t, &e, mode, claim).await,
        };
        self.tokens
            .usage
            .note_renewal(&t.owner_id, stored.is_ok() && failure.is_none());
        if action == "token.refresh" {
            let trigger = match mode {
                Mode::Asked => "asked",
                Mode::Background => "background",
            };
            self.metrics.refresh(
                &provider.model.name,
                stored.is_ok() && failure.is_none(),
                trigger,
                started.elapsed(),
            );
        }
        let detail = match (failed, revocation) {
            (Some(f), Some(r)) => Some(format!("{f}; {r}")),
            (f, r) => f.or(r),
        };
        let model = self
            .audited(
                actor,
                &addr,
                action,
                Some(t.id.clone()),
                stored,
                detail.clone(),
            )
            .await?;
        Ok(Renewed {
            model,
            failure,
            detail,
            called: true,
        })
    }

    /// The refresh_token grant with the refresh token stored now, sent as
    /// the provider's settings say: scope not sent again (the grant keeps
    /// it) unless the provider wants it, the authorization code again for
    /// the providers that want it, the refresh token URL-encoded once more
    /// for those that expect it so. Password falls back to its saved
    /// credentials when the refresh token is refused (a new grant then).
    async fn refresh_grant(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        flow: Flow,
        refresh: SecretString,
    ) -> Result<(TokenSet, Issued), GrantError> {
        let values = Self::values(t);
        let settings = &provider.model;
        let refresh_value = if settings.url_encode_refresh_token {
            url::form_urlencoded::byte_serialize(refresh.expose().as_bytes()).collect()
        } else {
            refresh.expose().to_owned()
        };
        let mut grant = vec![
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), refresh_value),
        ];
        if !settings.omit_code_on_refresh
            && let Some(code) = open_secret(
                &self.tokens.sealer,
                &t.id,
                "authorization_code",
                &t.authorization_code,
            )
            .ok()
            .flatten()
        {
            grant.push(("code".into(), code.expose().to_owned()));
        }
        let refresh_values = RequestValues {
            scope: if settings.omit_scope_on_refresh {
                None
            } else {
                values.scope.clone()
            },
            resource: values.resource.clone(),
            additional: values.additional.clone(),
        };
        match self.call(t, provider, grant, &refresh_values, true).await {
            Err(GrantError::Provider(ProviderFault::Refused { ref error, .. }))
                if error == "invalid_grant" && flow == Flow::Password =>
            {
                self.obtain(t, provider, &values)
                    .await
                    .map(|set| (set, Issued::Granted))
            }
            other => other.map(|set| (set, Issued::Refreshed)),
        }
    }

    /// Obtains a token with the flow's own grant (not a refresh).
    pub(super) async fn obtain(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        values: &RequestValues,
    ) -> Result<TokenSet, GrantError> {
        let grant = match t.flow {
            Flow::ClientCredentials => {
                vec![("grant_type".into(), "client_credentials".into())]
            }
            Flow::Password => {
                let password = open_secret(&self.tokens.sealer, &t.id, "password", &t.password)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| SecretString::new(""));
                vec![
                    ("grant_type".into(), "password".into()),
                    ("username".into(), t.username.clone().unwrap_or_default()),
                    ("password".into(), password.expose().to_owned()),
                ]
            }
            Flow::AuthorizationCode | Flow::OidcHybrid => {
                return Err(GrantError::ClientAuth(
                    crate::oauth::client_auth::ClientAuthError::Sign(
                        "this flow is authorized in a browser, with the token's auth link".into(),
                    ),
                ));
            }
            Flow::DeviceCode => {
                return Err(GrantError::ClientAuth(
                    crate::oauth::client_auth::ClientAuthError::Sign(
                        "this flow is authorized on a device: request the token again for a new code"
                            .into(),
                    ),
                ));
            }
        };
        self.call(t, provider, grant, values, false).await
    }
}
