//! Renewals and failed renewals per token owner, in hourly buckets (kept
//! two days) and daily buckets (kept a month), for the overview's charts:
//! a compact aggregate written in batches, not the audit log read on each
//! view. And on each token, the last use (or creation) whose 30 idle days
//! were announced.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, string, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum RenewalCounts {
    Table,
    OwnerId,
    Span,
    StartsAt,
    Renewals,
    Failures,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    UnusedAnnouncedFor,
}

const SPAN_INDEX: &str = "idx_renewal_counts_span_starts_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RenewalCounts::Table)
                    .col(string(RenewalCounts::OwnerId))
                    .col(string(RenewalCounts::Span))
                    .col(timestamp_with_time_zone(RenewalCounts::StartsAt))
                    .col(big_integer(RenewalCounts::Renewals))
                    .col(big_integer(RenewalCounts::Failures))
                    .primary_key(
                        Index::create()
                            .col(RenewalCounts::OwnerId)
                            .col(RenewalCounts::Span)
                            .col(RenewalCounts::StartsAt),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SPAN_INDEX)
                    .table(RenewalCounts::Table)
                    .col(RenewalCounts::Span)
                    .col(RenewalCounts::StartsAt)
                    .to_owned(),
            )
            .await?;
        super::add_columns(
            manager,
            Tokens::Table,
            [timestamp_with_time_zone_null(Tokens::UnusedAnnouncedFor)],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::drop_columns(manager, Tokens::Table, [Tokens::UnusedAnnouncedFor]).await?;
        manager
            .drop_table(Table::drop().table(RenewalCounts::Table).to_owned())
            .await?;
        Ok(())
    }
}
