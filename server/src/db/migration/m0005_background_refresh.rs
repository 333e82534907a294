//! Background refresh: per-token auto-refresh settings and schedule,
//! per-provider limits, and the events table (notifications, webhooks).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, integer, string, string_null, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Status,
    ExpiresAt,
    UpdatedAt,
    RefreshToken,
    AutoRefresh,
    RefreshLeadSecs,
    RefreshDueAt,
    FailureCount,
}

#[derive(DeriveIden)]
enum Providers {
    Table,
    RefreshConcurrency,
    RefreshRatePerMinute,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    Kind,
    TokenId,
    JobId,
    Message,
    Detail,
    CreatedAt,
    WebhookStatus,
    WebhookAttempts,
    WebhookNextAt,
    LeaseOwner,
    LeaseUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            boolean(Tokens::AutoRefresh).default(true).to_owned(),
            integer(Tokens::RefreshLeadSecs).default(300).to_owned(),
            timestamp_with_time_zone_null(Tokens::RefreshDueAt),
            integer(Tokens::FailureCount).default(0).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tokens::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // Tokens stored before this migration: due at their expiry (or now,
        // for refresh tokens without one); the first renewal sets the
        // precise time.
        manager
            .exec_stmt(
                Query::update()
                    .table(Tokens::Table)
                    .value(Tokens::RefreshDueAt, Expr::col(Tokens::ExpiresAt))
                    .and_where(Expr::col(Tokens::Status).eq("active"))
                    .and_where(Expr::col(Tokens::ExpiresAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Tokens::Table)
                    .value(Tokens::RefreshDueAt, Expr::col(Tokens::UpdatedAt))
                    .and_where(Expr::col(Tokens::Status).eq("active"))
                    .and_where(Expr::col(Tokens::ExpiresAt).is_null())
                    .and_where(Expr::col(Tokens::RefreshToken).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tokens_refresh_due_at")
                    .table(Tokens::Table)
                    .col(Tokens::RefreshDueAt)
                    .to_owned(),
            )
            .await?;
        for column in [
            integer(Providers::RefreshConcurrency).default(4).to_owned(),
            integer(Providers::RefreshRatePerMinute)
                .default(600)
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Providers::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(string(Events::Id).primary_key())
                    .col(string(Events::Kind))
                    .col(string_null(Events::TokenId))
                    .col(string_null(Events::JobId))
                    .col(text(Events::Message))
                    .col(text_null(Events::Detail))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .col(string(Events::WebhookStatus))
                    .col(integer(Events::WebhookAttempts).default(0))
                    .col(timestamp_with_time_zone_null(Events::WebhookNextAt))
                    .col(string_null(Events::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Events::LeaseUntil))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_events_created_at", Events::CreatedAt),
            ("idx_events_webhook_next_at", Events::WebhookNextAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Events::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tokens_refresh_due_at")
                    .table(Tokens::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Tokens::AutoRefresh,
            Tokens::RefreshLeadSecs,
            Tokens::RefreshDueAt,
            Tokens::FailureCount,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tokens::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Providers::RefreshConcurrency,
            Providers::RefreshRatePerMinute,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Providers::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
