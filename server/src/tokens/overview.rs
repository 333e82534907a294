//! The overview of the tokens a caller may see: counts by status, the
//! tokens that need a person (why, and what to do), and the renewals of the
//! last day and month from the aggregate [`super::usage`] keeps. Every
//! reason is one bounded query, so the overview stays cheap with many
//! tokens; the same counts feed the metrics' attention gauges.

use std::collections::BTreeMap;

use app::error::AppError;
use app::names::WireName;
use app::overview::{AttentionItem, AttentionReason, Overview, RenewalBucket};
use app::providers::ClientAuthMethod;
use app::tokens::{Flow, TokenError, TokenStatus};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Select,
};

use super::engine::TokenEngine;
use super::{EXPIRING_SOON_SECS, db_error, lifetimes, reauthorization};
use crate::account::ops::rfc3339;
use crate::auth::Caller;
use crate::db::entity::{provider, token};
use crate::oauth::certificate::Certificate;
use crate::providers::secrets::SECRET_WARNING_DAYS;

/// Items listed per reason; the counts cover all.
const ITEMS_PER_REASON: u64 = 20;
/// A token not handed out for this many days is unused.
pub const UNUSED_DAYS: i64 = 30;

/// Active tokens no program fetched for [`UNUSED_DAYS`] days (never
/// fetched: created that long ago).
fn unused(now: DateTime<Utc>) -> Condition {
    let cutoff = now - Duration::days(UNUSED_DAYS);
    Condition::all()
        .add(token::Column::Status.eq(TokenStatus::Active))
        .add(
            Condition::any()
                .add(token::Column::LastUsedAt.lt(cutoff))
                .add(
                    Condition::all()
                        .add(token::Column::LastUsedAt.is_null())
                        .add(token::Column::CreatedAt.lt(cutoff)),
                ),
        )
}

/// Providers whose default secret or certificate expires soon.
struct ExpiringProviders {
    /// Provider id → when its default client secret expires.
    secrets: BTreeMap<String, DateTime<Utc>>,
    /// Provider id → when its certificate expires.
    certificates: BTreeMap<String, DateTime<Utc>>,
    names: BTreeMap<String, String>,
}

impl TokenEngine {
    fn scoped(&self, caller: Option<&Caller>) -> Select<token::Entity> {
        let query = token::Entity::find();
        match caller {
            Some(c) if !c.is_admin() => query.filter(token::Column::OwnerId.eq(c.user.id.clone())),
            _ => query,
        }
    }

    async fn expiring_providers(&self, now: DateTime<Utc>) -> Result<ExpiringProviders, AppError> {
        let horizon = now + Duration::days(SECRET_WARNING_DAYS);
        let rows = provider::Entity::find()
            .all(&self.tokens.db)
            .await
            .map_err(db_error)?;
        let mut found = ExpiringProviders {
            secrets: BTreeMap::new(),
            certificates: BTreeMap::new(),
            names: BTreeMap::new(),
        };
        for p in rows {
            found.names.insert(p.id.clone(), p.name.clone());
            let uses_secret = matches!(
                p.client_auth_method,
                ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
            );
            if uses_secret
                && p.client_secret.is_some()
                && let Some(at) = p.client_secret_expires_at.filter(|at| *at <= horizon)
            {
                found.secrets.insert(p.id.clone(), at);
            }
            if p.client_auth_method.uses_provider_key()
                && let Some(Ok(c)) = p.certificate.as_deref().map(Certificate::from_pem)
                && c.not_after <= horizon
            {
                found.certificates.insert(p.id.clone(), c.not_after);
            }
        }
        Ok(found)
    }

    /// The condition of each reason (re-authorization is checked again
    /// row by row: its date depends on the flow and the refresh token).
    fn reason_filter(
        &self,
        reason: AttentionReason,
        now: DateTime<Utc>,
        providers: &ExpiringProviders,
    ) -> Condition {
        let horizon = now + Duration::days(SECRET_WARNING_DAYS);
        match reason {
            AttentionReason::Failed => {
                Condition::all().add(token::Column::Status.eq(TokenStatus::Failed))
            }
            AttentionReason::PendingAuthorization => {
                Condition::all().add(token::Column::Status.eq(TokenStatus::PendingAuthorization))
            }
            AttentionReason::NeedsCredentials => {
                Condition::all().add(token::Column::Status.eq(TokenStatus::NeedsCredentials))
            }
            AttentionReason::ReauthorizationDue => {
                reauthorization::due_candidates(now + self.settings.reauthorization_notice)
            }
            AttentionReason::SecretExpiring => Condition::any()
                .add(
                    Condition::all()
                        .add(token::Column::UseDefaultKeys.eq(false))
                        .add(token::Column::ClientSecret.is_not_null())
                        .add(token::Column::ClientSecretExpiresAt.lte(horizon)),
                )
                .add(
                    Condition::all()
                        .add(token::Column::UseDefaultKeys.eq(true))
                        .add(token::Column::ProviderId.is_in(providers.secrets.keys().cloned())),
                ),
            AttentionReason::CertificateExpiring => Condition::all()
                .add(token::Column::ProviderId.is_in(providers.certificates.keys().cloned())),
            AttentionReason::Unused => unused(now),
        }
    }

    /// How many tokens of `caller`'s (all: `None`) need attention, per reason.
    pub async fn attention_counts(
        &self,
        caller: Option<&Caller>,
    ) -> Result<BTreeMap<AttentionReason, u64>, AppError> {
        let now = self.tokens.clock.now();
        let providers = self.expiring_providers(now).await?;
        let mut counts = BTreeMap::new();
        for &reason in AttentionReason::ALL {
            let query = self
                .scoped(caller)
                .filter(self.reason_filter(reason, now, &providers));
            let n = if reason == AttentionReason::ReauthorizationDue {
                self.reauthorization_due(query, now, None).await?.len() as u64
            } else {
                query.count(&self.tokens.db).await.map_err(db_error)?
            };
            counts.insert(reason, n);
        }
        Ok(counts)
    }

    /// The candidates of `query` whose re-authorization date is within the
    /// notice, soonest first.
    async fn reauthorization_due(
        &self,
        query: Select<token::Entity>,
        now: DateTime<Utc>,
        limit: Option<usize>,
    ) -> Result<Vec<(token::Model, DateTime<Utc>)>, AppError> {
        let notice = now + self.settings.reauthorization_notice;
        let mut due: Vec<(token::Model, DateTime<Utc>)> = query
            .limit(5_000)
            .all(&self.tokens.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .filter_map(|t| {
                let at = lifetimes::reauthorization_due_at(&t)?;
                (at <= notice).then_some((t, at))
            })
            .collect();
        due.sort_by_key(|(_, at)| *at);
        if let Some(limit) = limit {
            due.truncate(limit);
        }
        Ok(due)
    }

    /// The caller's overview: an admin's covers every token.
    pub async fn overview(&self, caller: &Caller) -> Result<Overview, AppError> {
        let now = self.tokens.clock.now();
        let providers = self.expiring_providers(now).await?;
        // Counts by displayed status, and expiring soon within active.
        let owner = (!caller.is_admin()).then_some(caller.user.id.as_str());
        let mut counts = self.tokens.count_by_status(owner).await?;
        let total = counts.values().sum();
        let expiring_soon = self
            .scoped(Some(caller))
            .filter(token::Column::Status.eq(TokenStatus::Active))
            .filter(token::Column::ExpiresAt.gt(now))
            .filter(token::Column::ExpiresAt.lte(now + Duration::seconds(EXPIRING_SOON_SECS)))
            .count(&self.tokens.db)
            .await
            .map_err(db_error)?;
        counts.insert("expiring_soon".into(), expiring_soon);

        let mut attention = Vec::new();
        let mut attention_counts = BTreeMap::new();
        for &reason in AttentionReason::ALL {
            let query = self
                .scoped(Some(caller))
                .filter(self.reason_filter(reason, now, &providers));
            let listed: Vec<(token::Model, Option<DateTime<Utc>>)> =
                if reason == AttentionReason::ReauthorizationDue {
                    let due = self.reauthorization_due(query, now, None).await?;
                    attention_counts.insert(reason.to_string(), due.len() as u64);
                    due.into_iter()
                        .take(ITEMS_PER_REASON as usize)
                        .map(|(t, at)| (t, Some(at)))
                        .collect()
                } else {
                    let n = query
                        .clone()
                        .count(&self.tokens.db)
                        .await
                        .map_err(db_error)?;
                    attention_counts.insert(reason.to_string(), n);
                    if n == 0 {
                        continue;
                    }
                    // Longest unused first; otherwise the longest in that state.
                    let order: Expr = match reason {
                        AttentionReason::Unused => Func::coalesce([
                            Expr::col(token::Column::LastUsedAt),
                            Expr::col(token::Column::CreatedAt),
                        ])
                        .into(),
                        _ => Expr::col(token::Column::UpdatedAt),
                    };
                    query
                        .order_by(order, sea_orm::Order::Asc)
                        .order_by(token::Column::Name, sea_orm::Order::Asc)
                        .limit(ITEMS_PER_REASON)
                        .all(&self.tokens.db)
                        .await
                        .map_err(db_error)?
                        .into_iter()
                        .map(|t| (t, None))
                        .collect()
                };
            for (t, due) in listed {
                attention.push(self.attention_item(&t, reason, due, now, &providers));
            }
        }
        let history = self.tokens.usage.renewals(owner).await.map_err(db_error)?;
        Ok(Overview {
            counts,
            total,
            attention_counts,
            attention,
            renewals_hourly: history
                .hourly
                .into_iter()
                .map(|(at, c)| RenewalBucket {
                    starts_at: rfc3339(at),
                    renewals: c.renewals,
                    failures: c.failures,
                })
                .collect(),
            renewals_daily: history
                .daily
                .into_iter()
                .map(|(day, c)| RenewalBucket {
                    starts_at: day.to_string(),
                    renewals: c.renewals,
                    failures: c.failures,
                })
                .collect(),
        })
    }

    fn attention_item(
        &self,
        t: &token::Model,
        reason: AttentionReason,
        due: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        providers: &ExpiringProviders,
    ) -> AttentionItem {
        let date = |at: DateTime<Utc>| at.format("%Y-%m-%d").to_string();
        let (why, what_to_do, due_at) = match reason {
            AttentionReason::Failed => {
                let error = t
                    .last_error
                    .as_deref()
                    .and_then(|j| serde_json::from_str::<TokenError>(j).ok())
                    .map(|e| match e.error_description {
                        Some(d) => format!("{}: {d}", e.error),
                        None => e.error,
                    })
                    .unwrap_or_else(|| "no reason recorded".into());
                (
                    format!("Its last renewal failed ({error})."),
                    "Check the provider and the token's credentials, then refresh it or request it again.".to_owned(),
                    None,
                )
            }
            AttentionReason::PendingAuthorization => (
                "A person has not authorized it yet.".to_owned(),
                if t.flow == Flow::DeviceCode {
                    "Open it and enter the code shown at the provider's page.".to_owned()
                } else {
                    "Open it and authorize it with Get Auth Link.".to_owned()
                },
                None,
            ),
            AttentionReason::NeedsCredentials => (
                "It was imported without its secrets.".to_owned(),
                "Give it (or its provider) the client secret or password, then request it."
                    .to_owned(),
                None,
            ),
            AttentionReason::ReauthorizationDue => {
                let at = due.or_else(|| lifetimes::reauthorization_due_at(t));
                (
                    match at {
                        Some(at) if at <= now => {
                            format!("It can no longer be renewed since {}.", date(at))
                        }
                        Some(at) => format!(
                            "Its refresh token expires on {}; after that a person must authorize it again.",
                            date(at)
                        ),
                        None => "A person must authorize it again soon.".to_owned(),
                    },
                    "Open it and choose Re-authorize before then.".to_owned(),
                    at,
                )
            }
            AttentionReason::SecretExpiring => {
                let (at, todo) = if t.use_default_keys {
                    (
                        providers.secrets.get(&t.provider_id).copied(),
                        "An admin adds the provider's new secret as its next secret, and promotes it once the provider has switched.",
                    )
                } else {
                    (
                        t.client_secret_expires_at,
                        "Add the provider's new secret as the token's next secret, and promote it once the provider has switched.",
                    )
                };
                (
                    match at {
                        Some(at) if at <= now => {
                            format!("The client secret it uses expired on {}.", date(at))
                        }
                        Some(at) => format!("The client secret it uses expires on {}.", date(at)),
                        None => "The client secret it uses expires soon.".to_owned(),
                    },
                    todo.to_owned(),
                    at,
                )
            }
            AttentionReason::CertificateExpiring => {
                let at = providers.certificates.get(&t.provider_id).copied();
                (
                    match at {
                        Some(at) if at <= now => format!("Its provider's certificate expired on {}.", date(at)),
                        Some(at) => format!("Its provider's certificate expires on {}.", date(at)),
                        None => "Its provider's certificate expires soon.".to_owned(),
                    },
                    "An admin uploads a new certificate on the provider's page and registers it at the provider.".to_owned(),
                    at,
                )
            }
            AttentionReason::Unused => {
                let since = t.last_used_at.unwrap_or(t.created_at);
                let days = (now - since).num_days();
                (
                    match t.last_used_at {
                        Some(_) => format!("No program has fetched it for {days} days."),
                        None => format!(
                            "No program has fetched it since it was created {days} days ago."
                        ),
                    },
                    "Delete it if nothing needs it any more; it is renewed all the same."
                        .to_owned(),
                    None,
                )
            }
        };
        AttentionItem {
            token_id: t.id.clone(),
            token_name: t.name.clone(),
            provider_name: providers
                .names
                .get(&t.provider_id)
                .cloned()
                .unwrap_or_default(),
            reason,
            why,
            what_to_do,
            due_at: due_at.map(rfc3339),
        }
    }
}

impl TokenEngine {
    /// Raises `token.unused` once for each active token no program has
    /// fetched for [`UNUSED_DAYS`] days (never fetched: created that long
    /// ago), and again only after a later use lapses too. Replicas share
    /// the work: a token is announced by whichever marks it first. Returns
    /// how many were announced.
    pub async fn announce_unused(&self) -> usize {
        // Uses counted here and not written yet count.
        if let Err(e) = self.tokens.usage.write().await {
            tracing::warn!(error = %e, "could not store how tokens were used");
        }
        let now = self.tokens.clock.now();
        let candidates = match token::Entity::find()
            .filter(unused(now))
            .limit(2_000)
            .all(&self.tokens.db)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the unused tokens");
                return 0;
            }
        };
        let mut announced = 0;
        for t in candidates {
            let since = t.last_used_at.unwrap_or(t.created_at);
            if t.unused_announced_for == Some(since) {
                continue;
            }
            let marked = token::Entity::update_many()
                .col_expr(token::Column::UnusedAnnouncedFor, Expr::value(since))
                .filter(token::Column::Id.eq(t.id.clone()))
                .filter(
                    Condition::any()
                        .add(token::Column::UnusedAnnouncedFor.is_null())
                        .add(token::Column::UnusedAnnouncedFor.ne(since)),
                )
                .exec(&self.tokens.db)
                .await;
            if !matches!(marked, Ok(r) if r.rows_affected == 1) {
                continue;
            }
            let days = (now - since).num_days();
            let message = match t.last_used_at {
                Some(_) => format!(
                    "No program has fetched token {} for {days} days: delete it if nothing needs it any more.",
                    t.name
                ),
                None => format!(
                    "No program has fetched token {} since it was created {days} days ago: delete it if nothing needs it.",
                    t.name
                ),
            };
            self.events
                .raise(
                    crate::events::EventKind::TokenUnused,
                    Some(&t.id),
                    None,
                    message,
                    serde_json::json!({
                        "token_name": t.name,
                        "last_used_at": t.last_used_at.map(rfc3339),
                        "last_used_by": t.last_used_by,
                        "unused_days": days,
                    }),
                )
                .await;
            announced += 1;
        }
        announced
    }
}
