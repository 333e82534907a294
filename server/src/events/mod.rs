//! Events: what people should know about without watching the screens (a
//! token failed, needs re-authorization, works again; a job failed). Each
//! is stored, listed as a notification, and POSTed to the webhook when one
//! is configured (see [`webhook`]).

pub mod webhook;

use crate::db::db_error;
use app::error::AppError;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

use crate::account::ops::rfc3339;
use crate::auth::Caller;
use crate::clock::SharedClock;
use crate::db::entity::{event, token};

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A token could not be renewed (several times in a row, or when asked).
    TokenFailed,
    /// A person must authorize a token again.
    ReauthorizationNeeded,
    /// A failed token was renewed.
    TokenRecovered,
    /// A scheduled job run failed for some of its targets.
    JobFailed,
    /// A provider's certificate expires within 30 days (or has expired).
    CertificateExpiring,
    /// A token a person authorizes must be authorized again soon (its
    /// refresh token expires).
    ReauthorizationDue,
    /// A renewal answered no new refresh token at a provider that rotates them.
    RefreshTokenDropped,
    /// A renewal granted less scope than before.
    ScopeNarrowed,
    /// A renewal answered no `expires_in`.
    ExpiresInMissing,
    /// A renewed token's connection test failed: the API refused it.
    TokenTestFailed,
    /// A client secret (a provider's default client's, or a token's own)
    /// expires within 30 days (or has expired).
    SecretExpiring,
    /// No program has fetched an active token for 30 days.
    TokenUnused,
}

impl EventKind {
    /// The stored and sent name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenFailed => "token.failed",
            Self::ReauthorizationNeeded => "token.reauthorization_needed",
            Self::TokenRecovered => "token.recovered",
            Self::JobFailed => "job.failed",
            Self::CertificateExpiring => "provider.certificate_expiring",
            Self::ReauthorizationDue => "token.reauthorization_due",
            Self::RefreshTokenDropped => "token.refresh_token_dropped",
            Self::ScopeNarrowed => "token.scope_narrowed",
            Self::ExpiresInMissing => "token.expires_in_missing",
            Self::TokenTestFailed => "token.test_failed",
            Self::SecretExpiring => "provider.secret_expiring",
            Self::TokenUnused => "token.unused",
        }
    }
}

/// Webhook delivery states.
pub mod delivery {
    /// No webhook was configured when the event was raised.
    pub const NONE: &str = "none";
    /// Waiting to be sent (or retried).
    pub const PENDING: &str = "pending";
    /// The receiver answered 2xx.
    pub const DELIVERED: &str = "delivered";
    /// Given up after the last retry.
    pub const FAILED: &str = "failed";
}

/// An event as listed and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventView {
    /// Event id (also the webhook's idempotency key).
    pub id: String,
    /// `token.failed`, `token.reauthorization_needed`, `token.recovered`,
    /// `token.reauthorization_due`, `token.refresh_token_dropped`,
    /// `token.scope_narrowed`, `token.expires_in_missing`, `token.test_failed`, `job.failed`,
    /// `provider.certificate_expiring`.
    pub kind: String,
    /// The token concerned, if any.
    pub token_id: Option<String>,
    /// The job concerned, if any.
    pub job_id: Option<String>,
    /// One sentence for people.
    pub message: String,
    /// Details (JSON; never a secret).
    pub detail: serde_json::Value,
    /// RFC 3339.
    pub created_at: String,
    /// Webhook delivery: `none`, `pending`, `delivered` or `failed`.
    pub webhook_status: String,
}

/// A page of events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventPage {
    /// The events.
    pub items: Vec<EventView>,
    /// How many there are in all.
    pub total: u64,
}

impl From<event::Model> for EventView {
    fn from(e: event::Model) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            token_id: e.token_id,
            job_id: e.job_id,
            message: e.message,
            detail: e
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(serde_json::Value::Null),
            created_at: rfc3339(e.created_at),
            webhook_status: e.webhook_status,
        }
    }
}

/// Raises and lists events.
#[derive(Clone)]
pub struct Events {
    db: DatabaseConnection,
    clock: SharedClock,
    webhook: bool,
}

impl Events {
    /// The service; `webhook` says whether new events wait for delivery.
    pub fn new(db: DatabaseConnection, clock: SharedClock, webhook: bool) -> Self {
        Self { db, clock, webhook }
    }

    /// Records an event. A storage failure is logged, never passed on: the
    /// action that raised the event has already happened.
    pub async fn raise(
        &self,
        kind: EventKind,
        token_id: Option<&str>,
        job_id: Option<&str>,
        message: String,
        detail: serde_json::Value,
    ) {
        let now = self.clock.now();
        let row = event::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            kind: Set(kind.as_str().to_owned()),
            token_id: Set(token_id.map(str::to_owned)),
            job_id: Set(job_id.map(str::to_owned)),
            message: Set(message),
            detail: Set(Some(detail.to_string())),
            created_at: Set(now),
            webhook_status: Set(if self.webhook {
                delivery::PENDING
            } else {
                delivery::NONE
            }
            .to_owned()),
            webhook_attempts: Set(0),
            webhook_next_at: Set(self.webhook.then_some(now)),
            lease_owner: Set(None),
            lease_until: Set(None),
        };
        match row.insert(&self.db).await {
            Ok(e) => {
                tracing::info!(event = %e.id, kind = kind.as_str(), token = ?token_id, job = ?job_id, "event raised")
            }
            Err(e) => tracing::error!(error = %e, kind = kind.as_str(), "could not store an event"),
        }
    }

    /// The events the caller may see, newest first: admins see all; users
    /// the events of their own tokens.
    pub async fn list(
        &self,
        caller: &Caller,
        limit: u64,
        offset: u64,
    ) -> Result<EventPage, AppError> {
        let mut query = event::Entity::find();
        if !caller.is_admin() {
            query = query.filter(
                event::Column::TokenId.in_subquery(
                    Query::select()
                        .column(token::Column::Id)
                        .from(token::Entity)
                        .and_where(token::Column::OwnerId.eq(caller.user.id.clone()))
                        .to_owned(),
                ),
            );
        }
        let total = query.clone().count(&self.db).await.map_err(db_error)?;
        let items = query
            .order_by_desc(event::Column::CreatedAt)
            .order_by_desc(event::Column::Id)
            .offset(offset)
            .limit(limit.clamp(1, 500))
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(EventView::from)
            .collect();
        Ok(EventPage { items, total })
    }
}
