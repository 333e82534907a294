//! The Device Code flow (RFC 8628): Quiver asks the provider for a device
//! code, shows the person the user code and where to type it, and polls
//! the token endpoint as the provider says (`interval`, `slow_down`,
//! `authorization_pending`, `expired_token`, `access_denied`) until the
//! person has approved, then stores the token like any other.
//!
//! Polls are claimed: a poll first moves the token's next poll time from
//! the value it read, so among replicas (or passes) only one polls a code
//! at a time, and its outcome is stored only while the row still holds
//! the device code it polled with.

use std::collections::BTreeMap;

use app::error::AppError;
use chrono::Duration;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use url::Url;

use super::engine::{RequestValues, TokenEngine, token_error};
use super::{TokenStatus, open_secret};
use crate::audit::Actor;
use crate::db::entity::token;
use crate::events::EventKind;
use crate::oauth::device::{self, DeviceCode};
use crate::oauth::grant::GrantError;
use crate::oauth::token_response::ProviderFault;
use crate::oauth::{outbound, params};
use crate::providers::{OpenedProvider, params_map};

/// Device codes polled in one pass, at most.
const POLLS_PER_PASS: u64 = 100;

/// How a poll ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// The person approved: the token is stored.
    Authorized,
    /// Not yet (`authorization_pending`, `slow_down`, or no answer).
    Pending,
    /// The code is finished with (`expired_token`, `access_denied`, another
    /// refusal, or its time ran out).
    Ended,
    /// Another poll or a new code took the token over.
    Superseded,
}

fn device_columns_cleared(active: &mut token::ActiveModel) {
    active.device_code = Set(None);
    active.user_code = Set(None);
    active.verification_uri = Set(None);
    active.verification_uri_complete = Set(None);
    active.device_expires_at = Set(None);
    active.device_interval_secs = Set(None);
    active.device_next_poll_at = Set(None);
}

impl TokenEngine {
    /// Asks the provider for a new device code for `t` and stores it; the
    /// token waits for its person (its current access token, if any, stays
    /// usable). A refusal is stored on a token that has no access token.
    pub(crate) async fn start_device(&self, t: &token::Model) -> Result<token::Model, GrantError> {
        let provider = self
            .providers
            .open(&t.provider_id)
            .await
            .map_err(|e| GrantError::Outbound(outbound::OutboundError::Other(e.to_string())))?;
        let outcome = self.device_code(t, &provider).await;
        let now = self.tokens.clock.now();
        let mut active: token::ActiveModel = t.clone().into();
        active.updated_at = Set(now);
        let result = match &outcome {
            Ok(code) => {
                active.device_code = Set(Some(self.seal(
                    &t.id,
                    "device_code",
                    code.device_code.expose(),
                )));
                active.user_code = Set(Some(code.user_code.clone()));
                active.verification_uri = Set(Some(code.verification_uri.clone()));
                active.verification_uri_complete = Set(code.verification_uri_complete.clone());
                active.device_expires_at = Set(Some(now + code.expires_in));
                active.device_interval_secs = Set(Some(code.interval_secs as i32));
                active.device_next_poll_at = Set(Some(now + Duration::seconds(code.interval_secs)));
                if t.access_token.is_none() {
                    active.status = Set(TokenStatus::PendingAuthorization);
                    active.last_error = Set(None);
                }
                Ok(())
            }
            Err(e) => {
                device_columns_cleared(&mut active);
                if t.access_token.is_none() {
                    active.status = Set(TokenStatus::Failed);
                }
                active.last_error = Set(serde_json::to_string(&token_error(e)).ok());
                Err(())
            }
        };
        let stored = active.update(&self.tokens.db).await;
        match (outcome, result, stored) {
            (Ok(_), Ok(()), Ok(model)) => Ok(model),
            (Err(e), _, _) => Err(e),
            (_, _, Err(e)) => Err(GrantError::Outbound(outbound::OutboundError::Other(
                e.to_string(),
            ))),
            (Ok(_), Err(()), Ok(_)) => unreachable!("a stored code is a success"),
        }
    }

    /// The device authorization request: scope and resource as the token
    /// has them, then the provider's extra authorization parameters, then
    /// the token's own extra values.
    async fn device_code(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
    ) -> Result<DeviceCode, GrantError> {
        let endpoint = provider
            .model
            .device_authorization_endpoint
            .as_deref()
            .ok_or_else(|| {
                GrantError::Outbound(outbound::OutboundError::Refused(
                    "the provider has no device authorization endpoint".into(),
                ))
            })?;
        let url = Url::parse(endpoint)
            .map_err(|e| GrantError::Outbound(outbound::OutboundError::Refused(e.to_string())))?;
        let mut own: Vec<(String, String)> = Vec::new();
        if let Some(scope) = &t.scope {
            own.push((
                "scope".into(),
                crate::oauth::params::scope_param(scope, &provider.model.scope_separator),
            ));
        }
        if let Some(resource) = &t.resource {
            own.push(("resource".into(), resource.clone()));
        }
        let additional: BTreeMap<String, String> =
            serde_json::from_str(&t.additional_values).unwrap_or_default();
        let extra = params::merge(
            &own,
            &params_map(&provider.model.authorize_params),
            &additional,
        );
        own.extend(extra);
        let auth = self.client_auth(t, provider).map_err(|e| {
            GrantError::ClientAuth(crate::oauth::client_auth::ClientAuthError::Sign(
                e.to_string(),
            ))
        })?;
        let client = self.http_client(provider);
        device::request(&client, &url, &auth, own, self.tokens.clock.now()).await
    }

    /// Polls every device code that is due; answers how many were polled.
    pub async fn poll_devices(&self) -> usize {
        let now = self.tokens.clock.now();
        let due = token::Entity::find()
            .filter(token::Column::DeviceNextPollAt.lte(now))
            .filter(token::Column::DeviceCode.is_not_null())
            .order_by_asc(token::Column::DeviceNextPollAt)
            .limit(POLLS_PER_PASS)
            .all(&self.tokens.db)
            .await;
        let due = match due {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the device codes due");
                return 0;
            }
        };
        let mut polled = 0;
        for t in due {
            if self.poll_device(&t).await != PollOutcome::Superseded {
                polled += 1;
            }
        }
        polled
    }

    /// Claims and polls `t`'s device code once.
    pub async fn poll_device(&self, t: &token::Model) -> PollOutcome {
        let now = self.tokens.clock.now();
        let (Some(sealed), Some(read_at)) = (t.device_code.clone(), t.device_next_poll_at) else {
            return PollOutcome::Superseded;
        };
        let interval = i64::from(t.device_interval_secs.unwrap_or(5)).max(1);
        // The claim: move the next poll on, from the value read (always to
        // a later one, so a second claim from the same read fails).
        let next = (now + Duration::seconds(interval)).max(read_at + Duration::milliseconds(1));
        let claimed = token::Entity::update_many()
            .col_expr(token::Column::DeviceNextPollAt, Expr::value(next))
            .filter(token::Column::Id.eq(t.id.clone()))
            .filter(token::Column::DeviceCode.eq(sealed.clone()))
            .filter(token::Column::DeviceNextPollAt.eq(read_at))
            .exec(&self.tokens.db)
            .await;
        if !matches!(claimed, Ok(r) if r.rows_affected == 1) {
            return PollOutcome::Superseded;
        }
        if t.device_expires_at.is_some_and(|at| now >= at) {
            let lapsed = GrantError::Provider(ProviderFault::Refused {
                error: "expired_token".into(),
                description: Some(
                    "the device code lapsed before it was approved; request the token again".into(),
                ),
                http_status: 400,
            });
            return self.device_ended(t, &sealed, &lapsed).await;
        }
        let provider = match self.providers.open(&t.provider_id).await {
            Ok(p) => p,
            Err(_) => return PollOutcome::Pending,
        };
        let device_code =
            match open_secret(&self.tokens.sealer, &t.id, "device_code", &t.device_code) {
                Ok(Some(code)) => code,
                _ => return PollOutcome::Pending,
            };
        let grant = vec![
            ("grant_type".to_owned(), device::GRANT_TYPE.to_owned()),
            ("device_code".to_owned(), device_code.expose().to_owned()),
        ];
        let values = RequestValues {
            scope: None,
            resource: None,
            additional: BTreeMap::new(),
        };
        match self.call(t, &provider, grant, &values, false).await {
            Ok(set) => {
                let mut active = self.success_row(
                    t,
                    &provider,
                    set,
                    &Self::values(t),
                    crate::tokens::lifetimes::Issued::Granted,
                );
                device_columns_cleared(&mut active);
                let statement = token::Entity::update_many()
                    .set(active)
                    .filter(token::Column::Id.eq(t.id.clone()))
                    .filter(token::Column::DeviceCode.eq(sealed))
                    .build(self.tokens.db.get_database_backend());
                let stored = self.tokens.writes.execute(statement).await;
                let ok = matches!(stored, Ok(r) if r.rows_affected == 1);
                let _ = self
                    .audited(
                        Actor::System("device authorization".into()),
                        &None,
                        "token.authorize",
                        Some(t.id.clone()),
                        Ok::<(), AppError>(()),
                        Some("approved on a device".into()),
                    )
                    .await;
                if ok {
                    PollOutcome::Authorized
                } else {
                    PollOutcome::Superseded
                }
            }
            Err(GrantError::Provider(ProviderFault::Refused { error, .. }))
                if error == "authorization_pending" =>
            {
                PollOutcome::Pending
            }
            Err(GrantError::Provider(ProviderFault::Refused { error, .. }))
                if error == "slow_down" =>
            {
                let slower = interval + device::SLOW_DOWN_SECS;
                let _ = token::Entity::update_many()
                    .col_expr(
                        token::Column::DeviceIntervalSecs,
                        Expr::value(slower as i32),
                    )
                    .col_expr(
                        token::Column::DeviceNextPollAt,
                        Expr::value(now + Duration::seconds(slower)),
                    )
                    .filter(token::Column::Id.eq(t.id.clone()))
                    .filter(token::Column::DeviceCode.eq(sealed))
                    .exec(&self.tokens.db)
                    .await;
                PollOutcome::Pending
            }
            // No answer, or the provider's own trouble: poll again later,
            // while the code lasts.
            Err(e @ (GrantError::Outbound(_) | GrantError::RetryAfter { .. })) => {
                tracing::info!(token = %t.id, error = %e, "device poll got no answer; polling again");
                PollOutcome::Pending
            }
            Err(GrantError::Provider(fault)) if fault.http_status() >= 500 => PollOutcome::Pending,
            Err(e) => self.device_ended(t, &sealed, &e).await,
        }
    }

    /// A device code that is finished with: it is dropped, and a token
    /// without an access token fails with the provider's words (a token
    /// that has one keeps it and says why the new authorization ended).
    async fn device_ended(
        &self,
        t: &token::Model,
        sealed: &str,
        error: &GrantError,
    ) -> PollOutcome {
        let stored_error = token_error(error);
        let mut active: token::ActiveModel = t.clone().into();
        device_columns_cleared(&mut active);
        active.last_error = Set(serde_json::to_string(&stored_error).ok());
        active.updated_at = Set(self.tokens.clock.now());
        let failed = t.access_token.is_none();
        if failed {
            active.status = Set(TokenStatus::Failed);
        }
        let statement = token::Entity::update_many()
            .set(active)
            .filter(token::Column::Id.eq(t.id.clone()))
            .filter(token::Column::DeviceCode.eq(sealed.to_owned()))
            .build(self.tokens.db.get_database_backend());
        match self.tokens.writes.execute(statement).await {
            Ok(r) if r.rows_affected == 1 => {}
            _ => return PollOutcome::Superseded,
        }
        let _ = self
            .audited(
                Actor::System("device authorization".into()),
                &None,
                "token.authorize",
                Some(t.id.clone()),
                Ok::<(), AppError>(()),
                Some(format!("failed: {error}")),
            )
            .await;
        if failed {
            self.events
                .raise(
                    EventKind::TokenFailed,
                    Some(&t.id),
                    None,
                    format!(
                        "Token {} was not authorized on the device: {}",
                        t.name, stored_error.error
                    ),
                    serde_json::json!({"token_name": t.name, "error": stored_error.error}),
                )
                .await;
        }
        PollOutcome::Ended
    }
}
