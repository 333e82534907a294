//! `jobs`: scheduled actions on a set of tokens.

use app::jobs::{JobAction, JobTarget};
use sea_orm::entity::prelude::*;

/// One job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub name: String,
    /// Stored as its wire name; an unknown name fails the read.
    pub action: JobAction,
    /// Stored as its wire name; an unknown name fails the read.
    pub target: JobTarget,
    /// The token or provider (for `client_credentials`: an optional provider).
    pub target_id: Option<String>,
    pub every_minutes: Option<i32>,
    pub cron: Option<String>,
    pub paused: bool,
    pub next_run_at: Option<DateTimeUtc>,
    pub last_run_at: Option<DateTimeUtc>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The replica running it, while it does.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
