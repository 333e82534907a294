//! The audit log: every login, logout, change and token action, with actor,
//! time, object, outcome and client address. Never a secret value. The
//! application only inserts and reads; nothing updates or deletes entries.

use std::sync::Arc;

use app::error::AppError;
use chrono::{DateTime, Utc};
use sea_orm::QueryTrait as _;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::cache::Changes;
use crate::clock::SharedClock;
use crate::db::entity::audit_entry;
use crate::db::writes::Writes;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User {
        /// User id.
        id: String,
        /// Email.
        email: String,
    },
    /// An API key acting for its user.
    ApiKey {
        /// Key id.
        id: String,
        /// Key name and owner, for people reading the log.
        label: String,
    },
    /// Quiver itself (scheduler, CLI).
    System(String),
    /// Nobody signed in; `claimed` is what they said (an email at login).
    Anonymous {
        /// The claimed identity, if any.
        claimed: Option<String>,
    },
}

impl Actor {
    fn parts(&self) -> (&'static str, Option<String>, String) {
        match self {
            Self::User { id, email } => ("user", Some(id.clone()), email.clone()),
            Self::ApiKey { id, label } => ("api_key", Some(id.clone()), label.clone()),
            Self::System(what) => ("system", None, what.clone()),
            Self::Anonymous { claimed } => (
                "anonymous",
                None,
                claimed.clone().unwrap_or_else(|| "anonymous".into()),
            ),
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Success,
    /// Tried and failed.
    Failure,
    /// Refused by an access rule.
    Denied,
}

impl Outcome {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

/// One thing to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who.
    pub actor: Actor,
    /// What, e.g. `login`, `user.create`, `token.refresh`.
    pub action: &'static str,
    /// Kind of object.
    pub object_kind: &'static str,
    /// The object's id.
    pub object_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// A short explanation; never a secret.
    pub detail: Option<String>,
    /// Where from.
    pub client_addr: Option<String>,
}

impl AuditEvent {
    /// An event with no object id, detail or address yet.
    pub fn new(
        actor: Actor,
        action: &'static str,
        object_kind: &'static str,
        outcome: Outcome,
    ) -> Self {
        Self {
            actor,
            action,
            object_kind,
            object_id: None,
            outcome,
            detail: None,
            client_addr: None,
        }
    }

    /// Sets the object id.
    pub fn object(mut self, id: impl Into<String>) -> Self {
        self.object_id = Some(id.into());
        self
    }

    /// Sets the object id, when there is one.
    pub fn maybe_object(mut self, id: Option<String>) -> Self {
        self.object_id = id;
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the client address.
    pub fn from_addr(mut self, addr: Option<String>) -> Self {
        self.client_addr = addr;
        self
    }
}

/// A stored entry.
pub type AuditEntry = audit_entry::Model;

/// Filters for reading the log; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Actor id, or a part of the actor label.
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Object id.
    pub object_id: Option<String>,
    /// Object kind.
    pub object_kind: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
}

/// The audit log.
#[derive(Clone)]
pub struct Audit {
    db: DatabaseConnection,
    /// Entries are appended through the group commit (SQLite).
    writes: Writes,
    clock: SharedClock,
    changes: Arc<Changes>,
}

impl Audit {
    /// Wraps the database. Every recorded change (all but sign-ins and
    /// refusals) also moves `changes` on, which drops the caches of
    /// API keys and access tokens here and, announced, on other replicas.
    pub fn new(
        db: DatabaseConnection,
        writes: Writes,
        clock: SharedClock,
        changes: Arc<Changes>,
    ) -> Self {
        Self {
            db,
            writes,
            clock,
            changes,
        }
    }

    /// Records how an action ended and hands its result back: an error
    /// is the entry's detail, with outcome `denied` for
    /// [`AppError::Forbidden`] and `failure` for any other; a success keeps
    /// the event's own outcome and detail.
    pub async fn record_result<T>(
        &self,
        mut event: AuditEvent,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        if let Err(e) = &result {
            event.outcome = match e {
                AppError::Forbidden => Outcome::Denied,
                _ => Outcome::Failure,
            };
            event.detail = Some(e.to_string());
        }
        let _ = self.record(event).await;
        result
    }

    /// Appends an event. A failure to write is logged and returned.
    pub async fn record(&self, event: AuditEvent) -> Result<(), DbErr> {
        if event.object_kind != "session" && event.outcome != Outcome::Denied {
            self.changes.changed().await;
        }
        let (actor_kind, actor_id, actor_label) = event.actor.parts();
        let entry = audit_entry::ActiveModel {
            at: Set(self.clock.now()),
            actor_kind: Set(actor_kind.to_owned()),
            actor_id: Set(actor_id),
            actor_label: Set(actor_label),
            action: Set(event.action.to_owned()),
            object_kind: Set(event.object_kind.to_owned()),
            object_id: Set(event.object_id),
            outcome: Set(event.outcome.as_str().to_owned()),
            detail: Set(event.detail),
            client_addr: Set(event.client_addr),
            ..Default::default()
        };
        let mut insert = audit_entry::Entity::insert(entry).into_query();
        insert.returning_col(audit_entry::Column::Id);
        let statement = self.db.get_database_backend().build(&insert);
        match self.writes.insert_returning_id(statement).await {
            Ok(id) => {
                self.changes.wrote(id);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, action = event.action, "could not write the audit log");
                Err(e)
            }
        }
    }

    /// Entries matching `filter`, newest first, and how many match in all.
    pub async fn query(
        &self,
        filter: &AuditFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<AuditEntry>, u64), DbErr> {
        let mut query = audit_entry::Entity::find();
        if let Some(actor) = filter.actor.as_deref().filter(|a| !a.is_empty()) {
            query = query.filter(
                audit_entry::Column::ActorId
                    .eq(actor)
                    .or(audit_entry::Column::ActorLabel.contains(actor)),
            );
        }
        if let Some(action) = filter.action.as_deref().filter(|a| !a.is_empty()) {
            query = query.filter(audit_entry::Column::Action.eq(action));
        }
        if let Some(object) = filter.object_id.as_deref().filter(|a| !a.is_empty()) {
            query = query.filter(audit_entry::Column::ObjectId.eq(object));
        }
        if let Some(kind) = filter.object_kind.as_deref().filter(|a| !a.is_empty()) {
            query = query.filter(audit_entry::Column::ObjectKind.eq(kind));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit_entry::Column::At.gte(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_entry::Column::At.lt(until));
        }
        let total = query.clone().count(&self.db).await?;
        let entries = query
            .order_by_desc(audit_entry::Column::Id)
            .offset(offset)
            .limit(Ord::min(limit, 500))
            .all(&self.db)
            .await?;
        Ok((entries, total))
    }
}
