//! Scheduled jobs (an action run on a set of tokens on a schedule) and the
//! record of each run.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, integer, integer_null, string, string_null, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Name,
    Action,
    Target,
    TargetId,
    EveryMinutes,
    Cron,
    Paused,
    NextRunAt,
    LastRunAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    LeaseOwner,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Id,
    JobId,
    StartedAt,
    FinishedAt,
    Status,
    Trigger,
    Total,
    Succeeded,
    Failed,
    Results,
    Replica,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(string(Jobs::Id).primary_key())
                    .col(string(Jobs::Name).unique_key())
                    .col(string(Jobs::Action))
                    .col(string(Jobs::Target))
                    .col(string_null(Jobs::TargetId))
                    .col(integer_null(Jobs::EveryMinutes))
                    .col(string_null(Jobs::Cron))
                    .col(boolean(Jobs::Paused).default(false))
                    .col(timestamp_with_time_zone_null(Jobs::NextRunAt))
                    .col(timestamp_with_time_zone_null(Jobs::LastRunAt))
                    .col(string(Jobs::CreatedBy))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .col(string_null(Jobs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Jobs::LeaseUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_next_run_at")
                    .table(Jobs::Table)
                    .col(Jobs::NextRunAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JobRuns::Table)
                    .col(string(JobRuns::Id).primary_key())
                    .col(string(JobRuns::JobId))
                    .col(timestamp_with_time_zone(JobRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(JobRuns::FinishedAt))
                    .col(string(JobRuns::Status))
                    .col(string(JobRuns::Trigger))
                    .col(integer(JobRuns::Total).default(0))
                    .col(integer(JobRuns::Succeeded).default(0))
                    .col(integer(JobRuns::Failed).default(0))
                    .col(text_null(JobRuns::Results))
                    .col(text(JobRuns::Replica))
                    .foreign_key(
                        ForeignKey::create()
                            .from(JobRuns::Table, JobRuns::JobId)
                            .to(Jobs::Table, Jobs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_runs_job_started")
                    .table(JobRuns::Table)
                    .col(JobRuns::JobId)
                    .col(JobRuns::StartedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(JobRuns::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await?;
        Ok(())
    }
}
