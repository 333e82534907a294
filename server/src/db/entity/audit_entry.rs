//! `audit_log`: who did what, when, from where, and how it ended. The
//! application only ever inserts into it.

use sea_orm::entity::prelude::*;

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Increasing id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When.
    pub at: DateTimeUtc,
    /// `user`, `api_key`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The user or key id.
    pub actor_id: Option<String>,
    /// Email, key name, or what an anonymous caller claimed.
    pub actor_label: String,
    /// `login`, `token.refresh`, …
    pub action: String,
    /// `session`, `user`, `api_key`, `token`, `provider`, …
    pub object_kind: String,
    /// The object's id.
    pub object_id: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// A short explanation; never a secret.
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
}

/// No relation.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
