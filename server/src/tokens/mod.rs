//! OAuth tokens: settings, ownership, views, and the lifecycle actions in
//! [`engine`]. A user sees and acts on their own tokens only; an admin on all.

pub mod access;
pub mod authorize;
pub mod device;
pub mod engine;
pub mod lifetimes;
pub mod overview;
pub mod reauthorization;
pub mod renewal;
pub mod usage;
pub mod validation;

pub(crate) use crate::db::db_error;
use crate::db::writes::Writes;
use app::names::WireName;
use std::collections::BTreeMap;
use std::sync::Arc;

use app::error::AppError;
use app::tokens::{Identity, TokenError, TokenPage, TokenView};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, NullOrdering};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::account::ops::rfc3339;
use crate::auth::Caller;
use crate::clock::SharedClock;
use crate::db::entity::{provider, token, user};
use crate::seal::{SealSlot, Sealer};
use crate::secret::SecretString;
use usage::{TokenUsage, Usage};

pub use app::tokens::{Flow, TokenStatus};

/// The identity stored on a token. It only ever comes from an id_token
/// whose signature and claims were verified, and says so; a stored identity
/// without that mark is never shown.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredIdentity {
    /// Subject, email and name.
    #[serde(flatten)]
    pub identity: Identity,
    /// Taken from a verified id_token.
    #[serde(default)]
    pub verified: bool,
}

/// What a token's view shows of its provider.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProviderFacts {
    name: String,
    /// It names a connection test request.
    has_test: bool,
}

impl From<&provider::Model> for ProviderFacts {
    fn from(p: &provider::Model) -> Self {
        Self {
            name: p.name.clone(),
            has_test: p.test_request_url.is_some(),
        }
    }
}

/// Filters for the token list.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TokenQuery {
    /// Page size (default 50, at most 500).
    pub limit: Option<u64>,
    /// Offset.
    pub offset: Option<u64>,
    /// Part of the name.
    pub q: Option<String>,
    /// A status.
    pub status: Option<String>,
    /// A provider.
    pub provider_id: Option<String>,
    /// A flow.
    pub flow: Option<String>,
    /// `name` (default), `expires_at`, `last_refreshed_at`, `last_used_at`
    /// or `created_at`.
    pub sort: Option<String>,
    /// Only tokens not handed out for this many days (never used: created
    /// that long ago).
    pub unused_days: Option<u32>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
}

/// A token expiring within this many seconds is "expiring soon".
pub const EXPIRING_SOON_SECS: i64 = 600;

/// Read access to tokens.
#[derive(Clone)]
pub struct Tokens {
    pub(crate) db: DatabaseConnection,
    /// Lease and renewal writes, committed in groups on SQLite.
    pub(crate) writes: Writes,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) clock: SharedClock,
    /// Access tokens handed out, counted and written in batches.
    pub usage: Arc<Usage>,
}

/// A token's sealed column opened.
pub(crate) fn open_secret(
    sealer: &Sealer,
    id: &str,
    column: &str,
    sealed: &Option<String>,
) -> Result<Option<SecretString>, AppError> {
    match sealed {
        None => Ok(None),
        Some(value) => sealer
            .open(SealSlot::new("tokens", id, column), value)
            .map_err(|e| {
                tracing::error!(token = id, column, error = %e, "cannot open a sealed token column");
                AppError::Internal
            })?
            .into_secret_string()
            .map(Some)
            .map_err(|_| AppError::Internal),
    }
}

/// Where a person authorizes `t` again: a fresh auth link for the browser
/// flows, a new device code (requesting it again) for the Device Code flow.
pub(crate) fn reauthorization_link(t: &token::Model) -> String {
    if t.flow == Flow::DeviceCode {
        format!("/api/v1/tokens/{}/request", t.id)
    } else {
        format!("/api/v1/tokens/{}/auth-link", t.id)
    }
}

/// A device authorization in progress on `t`, as shown.
pub fn device_authorization(t: &token::Model) -> Option<app::tokens::DeviceAuthorization> {
    t.device_code.as_ref()?;
    Some(app::tokens::DeviceAuthorization {
        user_code: t.user_code.clone()?,
        verification_uri: t.verification_uri.clone()?,
        verification_uri_complete: t.verification_uri_complete.clone(),
        expires_at: rfc3339(t.device_expires_at?),
        interval_seconds: i64::from(t.device_interval_secs.unwrap_or(5)),
    })
}

/// The extra answer fields kept with a token, as stored.
pub(crate) fn response_fields(stored: Option<&str>) -> Option<BTreeMap<String, String>> {
    stored
        .and_then(|j| serde_json::from_str::<BTreeMap<String, String>>(j).ok())
        .filter(|f| !f.is_empty())
}

impl Tokens {
    /// Builds the service.
    pub fn new(
        db: DatabaseConnection,
        writes: Writes,
        sealer: Arc<Sealer>,
        clock: SharedClock,
    ) -> Self {
        Self {
            usage: Arc::new(Usage::new(db.clone(), clock.clone())),
            db,
            writes,
            sealer,
            clock,
        }
    }

    /// A token the caller may see, else `NotFound` (never "forbidden": the
    /// existence of other people's tokens is not revealed).
    pub async fn visible(&self, caller: &Caller, id: &str) -> Result<token::Model, AppError> {
        let found = token::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_error)?;
        match found {
            Some(t) if caller.is_admin() || t.owner_id == caller.user.id => Ok(t),
            _ => Err(AppError::NotFound("the token".into())),
        }
    }

    /// The displayed status.
    pub fn status_of(&self, t: &token::Model) -> TokenStatus {
        match t.status {
            TokenStatus::Active if t.expires_at.is_some_and(|e| e <= self.clock.now()) => {
                TokenStatus::Expired
            }
            status => status,
        }
    }

    /// How token `t` was used: its last use, uses in the last 24 hours,
    /// and uses per day over the last [`usage::CHART_DAYS`] days.
    pub async fn usage_of(
        &self,
        t: &token::Model,
    ) -> Result<(TokenUsage, Vec<(chrono::NaiveDate, u64)>), AppError> {
        let usage = self
            .usage
            .of(&self.db, std::slice::from_ref(t))
            .await
            .map_err(db_error)?
            .remove(&t.id)
            .unwrap_or_default();
        let days = self.usage.daily(&t.id).await.map_err(db_error)?;
        Ok((usage, days))
    }

    /// The wire view of a token.
    pub async fn view(
        &self,
        t: &token::Model,
        auth_url: Option<String>,
    ) -> Result<TokenView, AppError> {
        let provider = provider::Entity::find_by_id(t.provider_id.clone())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(|p| ProviderFacts::from(&p))
            .unwrap_or_default();
        let owner_email = user::Entity::find_by_id(t.owner_id.clone())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(|u| u.email)
            .unwrap_or_default();
        let usage = self
            .usage
            .of(&self.db, std::slice::from_ref(t))
            .await
            .map_err(db_error)?
            .remove(&t.id)
            .unwrap_or_default();
        Ok(self.view_with(t, provider, owner_email, auth_url, usage))
    }

    pub(crate) fn view_with(
        &self,
        t: &token::Model,
        provider: ProviderFacts,
        owner_email: String,
        auth_url: Option<String>,
        usage: TokenUsage,
    ) -> TokenView {
        let pending = device_authorization(t);
        TokenView {
            id: t.id.clone(),
            name: t.name.clone(),
            provider_id: t.provider_id.clone(),
            provider_name: provider.name,
            flow: t.flow,
            use_default_keys: t.use_default_keys,
            client_id: t.client_id.clone(),
            has_client_secret: t.client_secret.is_some(),
            rotation: crate::providers::secrets::RotationColumns::from(t).view(),
            username: t.username.clone(),
            has_password: t.password.is_some(),
            resource: t.resource.clone(),
            scope: t.scope.clone(),
            additional_values: serde_json::from_str::<BTreeMap<String, String>>(
                &t.additional_values,
            )
            .unwrap_or_default(),
            status: self.status_of(t),
            has_access_token: t.access_token.is_some(),
            has_refresh_token: t.refresh_token.is_some(),
            token_type: t.token_type.clone(),
            expires_at: t.expires_at.map(rfc3339),
            granted_scope: t.granted_scope.clone(),
            response_fields: response_fields(t.response_fields.as_deref()).unwrap_or_default(),
            pending_authorization: pending.clone(),
            user_code: pending.as_ref().map(|d| d.user_code.clone()),
            verification_uri: pending.as_ref().map(|d| d.verification_uri.clone()),
            verification_uri_complete: pending
                .as_ref()
                .and_then(|d| d.verification_uri_complete.clone()),
            identity: t
                .identity
                .as_deref()
                .and_then(|j| serde_json::from_str::<StoredIdentity>(j).ok())
                .filter(|stored| stored.verified)
                .map(|stored| stored.identity),
            error: t
                .last_error
                .as_deref()
                .and_then(|j| serde_json::from_str::<TokenError>(j).ok()),
            auth_url,
            owner_id: t.owner_id.clone(),
            owner_email,
            last_refreshed_at: t.last_refreshed_at.map(rfc3339),
            refresh_margin_seconds: i64::from(t.refresh_margin_secs),
            auto_refresh: t.auto_refresh,
            refresh_lead_seconds: i64::from(t.refresh_lead_secs),
            next_refresh_at: t.refresh_due_at.map(rfc3339),
            failure_count: i64::from(t.failure_count),
            refresh_token_expires_at: t
                .refresh_token
                .as_ref()
                .and(t.refresh_token_expires_at)
                .map(rfc3339),
            reauthorization_due_at: lifetimes::reauthorization_due_at(t).map(rfc3339),
            renewal_notes: lifetimes::stored_notes(t),
            test_request_url: t.test_request_url.clone(),
            test_request_method: t.test_request_method,
            can_test: t.test_request_url.is_some() || provider.has_test,
            last_test: t
                .last_test_result
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            last_used_at: usage.last_used_at.map(rfc3339),
            last_used_by: usage.last_used_by,
            uses_24h: usage.uses_24h,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }

    /// How many tokens of `owner` (all: `None`) there are in each
    /// displayed status (for metrics and the overview).
    pub async fn count_by_status(
        &self,
        owner: Option<&str>,
    ) -> Result<BTreeMap<String, u64>, AppError> {
        let now = self.clock.now();
        let owned = || {
            let query = token::Entity::find();
            match owner {
                Some(id) => query.filter(token::Column::OwnerId.eq(id)),
                None => query,
            }
        };
        let rows: Vec<(TokenStatus, i64)> = owned()
            .select_only()
            .column(token::Column::Status)
            .column_as(token::Column::Id.count(), "n")
            .group_by(token::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let expired = owned()
            .filter(token::Column::Status.eq(TokenStatus::Active))
            .filter(token::Column::ExpiresAt.lte(now))
            .count(&self.db)
            .await
            .map_err(db_error)?;
        let mut counts: BTreeMap<String, u64> = TokenStatus::ALL
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect();
        for (s, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            let shown = match s {
                TokenStatus::Active => {
                    *counts.entry(TokenStatus::Expired.to_string()).or_default() += expired;
                    n.saturating_sub(expired)
                }
                _ => n,
            };
            *counts.entry(s.to_string()).or_default() += shown;
        }
        Ok(counts)
    }

    /// A page of the tokens the caller may see.
    pub async fn list(&self, caller: &Caller, q: &TokenQuery) -> Result<TokenPage, AppError> {
        let now: DateTime<Utc> = self.clock.now();
        let mut query = token::Entity::find();
        if !caller.is_admin() {
            query = query.filter(token::Column::OwnerId.eq(caller.user.id.clone()));
        }
        if let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            query = query.filter(
                Expr::expr(Func::lower(Expr::col(token::Column::Name))).like(format!(
                    "%{}%",
                    text.to_lowercase().replace(['\\', '%', '_'], "")
                )),
            );
        }
        if let Some(provider_id) = q.provider_id.as_deref().filter(|p| !p.is_empty()) {
            query = query.filter(token::Column::ProviderId.eq(provider_id));
        }
        if let Some(flow) = q.flow.as_deref().filter(|f| !f.is_empty()) {
            let flow: Flow = flow.parse()?;
            query = query.filter(token::Column::Flow.eq(flow));
        }
        match q.status.as_deref().filter(|s| !s.is_empty()) {
            None => {}
            // Not a status of its own: active and close to its expiry.
            Some("expiring_soon") => {
                query = query
                    .filter(token::Column::Status.eq(TokenStatus::Active))
                    .filter(token::Column::ExpiresAt.gt(now))
                    .filter(
                        token::Column::ExpiresAt
                            .lte(now + chrono::Duration::seconds(EXPIRING_SOON_SECS)),
                    );
            }
            Some(text) => match text.parse::<TokenStatus>().map_err(|_| {
                AppError::invalid(
                    "status",
                    "must be active, expiring_soon, expired, failed, pending_authorization or needs_credentials",
                )
            })? {
                TokenStatus::Expired => {
                    query = query
                        .filter(token::Column::Status.eq(TokenStatus::Active))
                        .filter(token::Column::ExpiresAt.lte(now));
                }
                TokenStatus::Active => {
                    query = query
                        .filter(token::Column::Status.eq(TokenStatus::Active))
                        .filter(
                            Condition::any()
                                .add(token::Column::ExpiresAt.is_null())
                                .add(token::Column::ExpiresAt.gt(now)),
                        );
                }
                s @ (TokenStatus::Failed
                | TokenStatus::PendingAuthorization
                | TokenStatus::NeedsCredentials) => {
                    query = query.filter(token::Column::Status.eq(s));
                }
            },
        }
        let sort = q.sort.as_deref().filter(|s| !s.is_empty());
        let column = match sort {
            None | Some("name") => token::Column::Name,
            Some("expires_at") => token::Column::ExpiresAt,
            Some("last_refreshed_at") => token::Column::LastRefreshedAt,
            Some("last_used_at") => token::Column::LastUsedAt,
            Some("created_at") => token::Column::CreatedAt,
            Some(_) => {
                return Err(AppError::invalid(
                    "sort",
                    "must be name, expires_at, last_refreshed_at, last_used_at or created_at",
                ));
            }
        };
        if let Some(days) = q.unused_days {
            if !(1..=3650).contains(&days) {
                return Err(AppError::invalid(
                    "unused_days",
                    "must be a number of days from 1 to 3650",
                ));
            }
            // Unused: its last use, or without one its creation, is older.
            let cutoff = now - chrono::Duration::days(i64::from(days));
            query = query.filter(
                Condition::any()
                    .add(token::Column::LastUsedAt.lt(cutoff))
                    .add(
                        Condition::all()
                            .add(token::Column::LastUsedAt.is_null())
                            .add(token::Column::CreatedAt.lt(cutoff)),
                    ),
            );
        }
        // Filtering or sorting by use reads the stored last uses: the
        // uses counted here are written first.
        if (q.unused_days.is_some() || sort == Some("last_used_at"))
            && let Err(e) = self.usage.write().await
        {
            tracing::warn!(error = %e, "could not store how tokens were used");
        }
        let total = query.clone().count(&self.db).await.map_err(db_error)?;
        let order = match q.order.as_deref().filter(|s| !s.is_empty()) {
            None | Some("asc") => Order::Asc,
            Some("desc") => Order::Desc,
            Some(_) => return Err(AppError::invalid("order", "must be asc or desc")),
        };
        // Never used sorts as the oldest use on both databases.
        let nulls = match order {
            Order::Desc => NullOrdering::Last,
            _ => NullOrdering::First,
        };
        let models = query
            .order_by_with_nulls(column, order.clone(), nulls)
            .order_by(token::Column::Id, order)
            .offset(q.offset.unwrap_or(0))
            .limit(Ord::clamp(q.limit.unwrap_or(50), 1, 500))
            .all(&self.db)
            .await
            .map_err(db_error)?;
        // Names of the providers and owners on this page, in two queries.
        let provider_ids: Vec<String> = models.iter().map(|t| t.provider_id.clone()).collect();
        let owner_ids: Vec<String> = models.iter().map(|t| t.owner_id.clone()).collect();
        let providers: BTreeMap<String, ProviderFacts> = provider::Entity::find()
            .filter(provider::Column::Id.is_in(provider_ids))
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|p| (p.id.clone(), ProviderFacts::from(&p)))
            .collect();
        let owners: BTreeMap<String, String> = user::Entity::find()
            .filter(user::Column::Id.is_in(owner_ids))
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|u| (u.id, u.email))
            .collect();
        let mut usage = self.usage.of(&self.db, &models).await.map_err(db_error)?;
        let items = models
            .iter()
            .map(|t| {
                self.view_with(
                    t,
                    providers.get(&t.provider_id).cloned().unwrap_or_default(),
                    owners.get(&t.owner_id).cloned().unwrap_or_default(),
                    None,
                    usage.remove(&t.id).unwrap_or_default(),
                )
            })
            .collect();
        Ok(TokenPage { items, total })
    }
}
