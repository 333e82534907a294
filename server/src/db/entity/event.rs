//! `events`: things people should know about (a token failed, needs
//! re-authorization, a job failed), shown as notifications and sent to the
//! webhook when one is configured.

use sea_orm::entity::prelude::*;

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `token.failed`, `token.reauthorization_needed`, `token.recovered`, `job.failed`.
    pub kind: String,
    pub token_id: Option<String>,
    pub job_id: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    /// JSON details (never a secret).
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    pub created_at: DateTimeUtc,
    /// `none` (no webhook), `pending`, `delivered` or `failed`.
    pub webhook_status: String,
    pub webhook_attempts: i32,
    pub webhook_next_at: Option<DateTimeUtc>,
    /// The replica delivering it, while it does.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
