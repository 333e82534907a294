//! `job_runs`: each run of a job, with the outcome per token.

use sea_orm::entity::prelude::*;

/// One run.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub job_id: String,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// `running`, `success`, `partial`, `failure` or `interrupted`.
    pub status: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub total: i32,
    pub succeeded: i32,
    pub failed: i32,
    /// JSON array of `{"token_id","token_name","outcome","error"?}`.
    #[sea_orm(column_type = "Text", nullable)]
    pub results: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub replica: String,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
