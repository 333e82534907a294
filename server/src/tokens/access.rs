//! Handing out a fresh access token to programs: renewed first when the
//! token expires within its margin, through [`super::renewal`], so that
//! concurrent callers, here and on other replicas, share one renewal.

use std::sync::Arc;

use app::error::AppError;
use app::tokens::AccessTokenView;
use chrono::{DateTime, Duration, Utc};

use super::engine::{Mode, TokenEngine};
use super::renewal::{Need, Renewal, refusal};
use super::{TokenStatus, open_secret};
use crate::account::ops::rfc3339;
use crate::auth::Caller;
use crate::db::entity::token;
use zeroize::{Zeroize, Zeroizing};

use crate::secret::SecretString;

/// Retry hint when the provider gave none.
pub const DEFAULT_RETRY_SECONDS: u64 = 5;

/// A token that was fresh when read, kept by [`crate::cache::Cache`] so
/// that a stream of callers does not read the database for each request.
pub struct FreshToken {
    owner_id: String,
    /// When it stops being fresh (its expiry less its margin); `None`
    /// when the provider gave no expiry.
    fresh_until: Option<DateTime<Utc>>,
    /// The access token, for Quiver's own use of it (the connection test).
    access_token: SecretString,
    /// The answer, an [`AccessTokenView`] serialized once for every caller
    /// it is handed to; each response shares these bytes (a reference
    /// count, no copy), and they are wiped when the last one is gone.
    body: bytes::Bytes,
}

/// An access token ready to be sent: the answer's JSON, shared with the
/// cache rather than copied.
pub struct HandOut(Arc<FreshToken>);

impl HandOut {
    /// The access token itself.
    #[must_use]
    pub fn access_token(&self) -> &SecretString {
        &self.0.access_token
    }

    /// The answer as a response body, without copying it.
    #[must_use]
    pub fn body(&self) -> bytes::Bytes {
        self.0.body.clone()
    }
}

impl std::fmt::Debug for HandOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandOut(..)")
    }
}

/// The cache of fresh tokens.
pub type FreshTokens = crate::cache::Cache<Arc<FreshToken>>;

impl TokenEngine {
    /// How long before its expiry a token is renewed before it is handed
    /// out: its margin, at most half the token's lifetime, so that a
    /// provider that issues tokens shorter than the margin is not asked
    /// again by every caller.
    fn margin(t: &token::Model) -> Duration {
        let margin = Duration::seconds(i64::from(t.refresh_margin_secs));
        match (t.expires_at, t.last_refreshed_at) {
            (Some(expires), Some(renewed)) if expires > renewed => {
                margin.min((expires - renewed) / 2)
            }
            _ => margin,
        }
    }

    /// Whether the token can be served as it is: it expires later than its
    /// margin from now.
    pub(super) fn is_fresh(&self, t: &token::Model) -> bool {
        let now = self.tokens.clock.now();
        let margin = Self::margin(t);
        t.status != TokenStatus::PendingAuthorization
            && t.access_token.is_some()
            && t.expires_at.is_none_or(|e| e - now > margin)
    }

    pub(super) fn just_renewed(&self, t: &token::Model) -> bool {
        t.status == TokenStatus::Active
            && t.access_token.is_some()
            && t.expires_at.is_none_or(|e| e > self.tokens.clock.now())
    }

    fn opened(&self, t: &token::Model) -> Result<FreshToken, AppError> {
        let access = open_secret(&self.tokens.sealer, &t.id, "access_token", &t.access_token)?
            .ok_or(AppError::Internal)?;
        let mut view = AccessTokenView {
            access_token: access.expose().to_owned(),
            token_type: t.token_type.clone().unwrap_or_else(|| "Bearer".into()),
            expires_at: t.expires_at.map(rfc3339),
            scope: t.granted_scope.clone().or_else(|| t.scope.clone()),
            response_fields: super::response_fields(t.response_fields.as_deref())
                .unwrap_or_default(),
        };
        let body = serde_json::to_vec(&view).map_err(|_| AppError::Internal);
        view.access_token.zeroize();
        Ok(FreshToken {
            owner_id: t.owner_id.clone(),
            fresh_until: t.expires_at.map(|e| e - Self::margin(t)),
            access_token: access,
            body: bytes::Bytes::from_owner(Zeroizing::new(body?)),
        })
    }

    fn hand_out(&self, t: &token::Model) -> Result<HandOut, AppError> {
        Ok(HandOut(Arc::new(self.opened(t)?)))
    }

    /// A fresh access token for the caller, refreshing first when needed;
    /// each one handed out is counted (see [`super::usage`]).
    pub async fn access_token(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<HandOut, AppError> {
        let served = self.serve(caller, id, addr).await;
        if served.is_ok() {
            self.tokens.usage.note(id, caller);
        }
        served
    }

    async fn serve(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<HandOut, AppError> {
        // Served moments ago and nothing changed since: no database read.
        if let Some(hit) = self.fresh.get(id)
            && (caller.is_admin() || hit.owner_id == caller.user.id)
            && hit
                .fresh_until
                .is_none_or(|until| self.tokens.clock.now() < until)
        {
            return Ok(HandOut(hit));
        }
        let epoch = self.fresh.epoch();
        let t = self.tokens.visible(caller, id).await?;
        if self.is_fresh(&t) {
            let fresh = Arc::new(self.opened(&t)?);
            self.fresh.put(id, fresh.clone(), epoch);
            return Ok(HandOut(fresh));
        }
        // The version this caller saw: a renewal stored since answers it.
        let need = Need::Fresh {
            seen: t.last_refreshed_at,
        };
        let (renewed, _) = self
            .renew(
                &t,
                Renewal::Refresh,
                need,
                caller.actor(),
                addr,
                Mode::Asked,
            )
            .await?;
        let t = renewed.model;
        // Just renewed: serve it even when the provider's lifetime is
        // shorter than the margin; after waiting for another replica, the
        // stored token while it is valid.
        let unexpired = t.expires_at.is_none_or(|e| e > self.tokens.clock.now());
        if self.is_fresh(&t)
            || self.just_renewed(&t)
            || (!renewed.called
                && renewed.failure.is_none()
                && t.access_token.is_some()
                && unexpired)
        {
            return self.hand_out(&t);
        }
        Err(refusal(&t, renewed.failure.as_ref()))
    }
}
