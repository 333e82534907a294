//! Handing out a fresh access token to programs: refresh first when the
//! token expires within its margin; concurrent callers share one refresh,
//! inside a process (a lock per token) and across replicas (a lease in the
//! database, claimed before and released in the same update that stores
//! the result; no transaction is held across the provider call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use app::error::AppError;
use app::tokens::{AccessTokenView, TokenError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::QueryTrait as _;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter};

use super::engine::TokenEngine;
use super::{Flow, db_error, open_secret, status};
use crate::account::ops::rfc3339;
use crate::auth::Caller;
use crate::db::entity::token;
use crate::secret::SecretString;

/// How long a replica may hold a refresh lease before others take over.
pub const LEASE: Duration = Duration::seconds(45);
/// How often a waiting caller looks again.
const POLL: StdDuration = StdDuration::from_millis(50);
/// A failure recorded this recently is reported instead of retried.
pub const FAILURE_REUSE: Duration = Duration::seconds(2);
/// Retry hint when the provider gave none.
pub const DEFAULT_RETRY_SECONDS: u64 = 5;

/// One lock per token within this process.
#[derive(Default)]
pub struct Flights {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Flights {
    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.len() > 10_000 {
            // Drop locks nobody holds, to keep memory bounded.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(id.to_owned()).or_default().clone()
    }
}

/// A token that was fresh when read, kept by [`crate::cache::Cache`] so
/// that a stream of callers does not read the database for each request.
#[derive(Clone)]
pub struct FreshToken {
    owner_id: String,
    /// When it stops being fresh (its expiry less its margin); `None`
    /// when the provider gave no expiry.
    fresh_until: Option<DateTime<Utc>>,
    access_token: SecretString,
    token_type: String,
    expires_at: Option<String>,
    scope: Option<String>,
}

impl FreshToken {
    fn view(&self) -> AccessTokenView {
        AccessTokenView {
            access_token: self.access_token.expose().to_owned(),
            token_type: self.token_type.clone(),
            expires_at: self.expires_at.clone(),
            scope: self.scope.clone(),
        }
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
    fn is_fresh(&self, t: &token::Model) -> bool {
        let now = self.tokens.clock.now();
        let margin = Self::margin(t);
        t.status != status::PENDING
            && t.access_token.is_some()
            && t.expires_at.is_none_or(|e| e - now > margin)
    }

    fn just_renewed(&self, t: &token::Model) -> bool {
        t.status == status::ACTIVE
            && t.access_token.is_some()
            && t.expires_at.is_none_or(|e| e > self.tokens.clock.now())
    }

    fn opened(&self, t: &token::Model) -> Result<FreshToken, AppError> {
        let access = open_secret(&self.tokens.sealer, &t.id, "access_token", &t.access_token)?
            .ok_or(AppError::Internal)?;
        Ok(FreshToken {
            owner_id: t.owner_id.clone(),
            fresh_until: t.expires_at.map(|e| e - Self::margin(t)),
            access_token: access,
            token_type: t.token_type.clone().unwrap_or_else(|| "Bearer".into()),
            expires_at: t.expires_at.map(rfc3339),
            scope: t.granted_scope.clone().or_else(|| t.scope.clone()),
        })
    }

    fn hand_out(&self, t: &token::Model) -> Result<AccessTokenView, AppError> {
        Ok(self.opened(t)?.view())
    }

    async fn reload(&self, id: &str) -> Result<token::Model, AppError> {
        token::Entity::find_by_id(id.to_owned())
            .one(&self.tokens.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::NotFound("the token".into()))
    }

    /// Claims the refresh lease for the version of the token just read;
    /// false when another replica holds the lease or has renewed the token
    /// since (compare-and-set, so a finished refresh is never repeated).
    pub(crate) async fn claim(
        &self,
        id: &str,
        version: Option<chrono::DateTime<chrono::Utc>>,
        lease: Duration,
    ) -> Result<bool, AppError> {
        self.claim_if(id, version, lease).await
    }

    async fn claim_if(
        &self,
        id: &str,
        version: Option<chrono::DateTime<chrono::Utc>>,
        lease: Duration,
    ) -> Result<bool, AppError> {
        let now = self.tokens.clock.now();
        let update = token::Entity::update_many()
            .col_expr(token::Column::LeaseOwner, Expr::value(self.replica.clone()))
            .col_expr(token::Column::LeaseUntil, Expr::value(now + lease))
            .filter(token::Column::Id.eq(id))
            .filter(match version {
                Some(v) => token::Column::LastRefreshedAt.eq(v),
                None => token::Column::LastRefreshedAt.is_null(),
            })
            .filter(
                Condition::any()
                    .add(token::Column::LeaseUntil.is_null())
                    .add(token::Column::LeaseUntil.lt(now))
                    .add(token::Column::LeaseOwner.eq(self.replica.clone())),
            );
        let statement = update.build(self.tokens.db.get_database_backend());
        let written = self
            .tokens
            .writes
            .execute(statement)
            .await
            .map_err(db_error)?;
        Ok(written.rows_affected == 1)
    }

    /// Claims the refresh leases of those of `ids` that are still due
    /// and free (or this replica's), in one statement, and answers the
    /// claimed rows as they are now: a row changed since the caller listed
    /// it is renewed from its current state.
    pub(crate) async fn claim_due(
        &self,
        ids: &[String],
        lease: Duration,
    ) -> Result<Vec<token::Model>, AppError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.tokens.clock.now();
        let mut claim = token::Entity::update_many()
            .col_expr(token::Column::LeaseOwner, Expr::value(self.replica.clone()))
            .col_expr(token::Column::LeaseUntil, Expr::value(now + lease))
            .filter(token::Column::Id.is_in(ids.iter().cloned()))
            .filter(token::Column::AutoRefresh.eq(true))
            .filter(token::Column::RefreshDueAt.lte(now))
            .filter(token::Column::Status.ne(status::PENDING))
            .filter(
                Condition::any()
                    .add(token::Column::LeaseUntil.is_null())
                    .add(token::Column::LeaseUntil.lt(now))
                    .add(token::Column::LeaseOwner.eq(self.replica.clone())),
            )
            .into_query();
        claim.returning_all();
        let statement = self.tokens.db.get_database_backend().build(&claim);
        let rows = self
            .tokens
            .writes
            .returning_rows(statement)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| token::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)
    }

    pub(crate) async fn release(&self, id: &str) {
        let release = token::Entity::update_many()
            .col_expr(
                token::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                token::Column::LeaseUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(token::Column::Id.eq(id))
            .filter(token::Column::LeaseOwner.eq(self.replica.clone()))
            .build(self.tokens.db.get_database_backend());
        let _ = self.tokens.writes.execute(release).await;
    }

    /// A fresh access token for the caller, refreshing first when needed.
    pub async fn access_token(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<AccessTokenView, AppError> {
        // Served moments ago and nothing changed since: no database read.
        if let Some(hit) = self.fresh.get(id)
            && (caller.is_admin() || hit.owner_id == caller.user.id)
            && hit
                .fresh_until
                .is_none_or(|until| self.tokens.clock.now() < until)
        {
            return Ok(hit.view());
        }
        let epoch = self.fresh.epoch();
        let t = self.tokens.visible(caller, id).await?;
        if self.is_fresh(&t) {
            let fresh = self.opened(&t)?;
            let view = fresh.view();
            self.fresh.put(id, Arc::new(fresh), epoch);
            return Ok(view);
        }
        // The version this caller saw; a different one after the lock means
        // another caller renewed the token meanwhile.
        let seen = t.last_refreshed_at;
        let lock = self.flights.lock_for(id);
        let _guard = lock.lock().await;
        let deadline =
            tokio::time::Instant::now() + StdDuration::from_secs(LEASE.num_seconds() as u64 + 5);
        loop {
            let t = self.reload(id).await?;
            // Renewed by someone else while this caller waited: that is the
            // token to use, even inside the margin.
            let renewed_meanwhile = t.last_refreshed_at != seen;
            if self.is_fresh(&t) || (renewed_meanwhile && self.just_renewed(&t)) {
                return self.hand_out(&t);
            }
            // A refresh failed moments ago: report that failure rather than
            // send the provider one more request per caller.
            if t.status == status::FAILED
                && self.tokens.clock.now() - t.updated_at < FAILURE_REUSE
                && t.last_error.is_some()
            {
                return Err(self.explain(&t));
            }
            if self.claim(id, t.last_refreshed_at, LEASE).await? {
                let outcome = self.refresh(caller, id, addr.clone()).await;
                // The store cleared the lease; a refusal before storing did not.
                if outcome.is_err() {
                    self.release(id).await;
                }
                let t = self.reload(id).await?;
                return match outcome {
                    // Just renewed: serve it even when the provider's lifetime
                    // is shorter than the margin.
                    Ok(_) if self.is_fresh(&t) || self.just_renewed(&t) => self.hand_out(&t),
                    Ok(_) => Err(self.explain(&t)),
                    Err(AppError::Validation { field: Some(f), .. }) if f == "refresh_token" => {
                        Err(AppError::NeedsReauthorization {
                            auth_link: format!("/api/v1/tokens/{id}/auth-link"),
                        })
                    }
                    Err(e) => Err(e),
                };
            }
            // Another replica is refreshing: wait for its result.
            if tokio::time::Instant::now() > deadline {
                return Err(AppError::ProviderUnavailable {
                    message: "another Quiver replica is still refreshing this token".into(),
                    retry_after_seconds: DEFAULT_RETRY_SECONDS,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Why a token could not be renewed, for the caller.
    fn explain(&self, t: &token::Model) -> AppError {
        let error: Option<TokenError> = t
            .last_error
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        let interactive = t.flow.parse::<Flow>().is_ok_and(Flow::is_interactive);
        match error {
            Some(e) if e.error == "invalid_grant" && interactive => {
                AppError::NeedsReauthorization {
                    auth_link: format!("/api/v1/tokens/{}/auth-link", t.id),
                }
            }
            Some(e)
                if matches!(
                    e.error.as_str(),
                    "server_error"
                        | "temporarily_unavailable"
                        | "timeout"
                        | "unreachable"
                        | "invalid_response"
                ) || e.http_status.is_some_and(|s| s >= 500) =>
            {
                AppError::ProviderUnavailable {
                    retry_after_seconds: e.retry_after_seconds.unwrap_or(DEFAULT_RETRY_SECONDS),
                    message: e.error_description.unwrap_or(e.error),
                }
            }
            Some(e) => AppError::ProviderRefused {
                message: format!(
                    "{}{}",
                    e.error,
                    e.error_description
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            },
            None => AppError::ProviderUnavailable {
                message: "the token could not be renewed".into(),
                retry_after_seconds: DEFAULT_RETRY_SECONDS,
            },
        }
    }
}
