//! Token usage: when each token was last handed out and to whom, and how
//! often, per caller, in hourly buckets (kept two days) and daily buckets
//! (kept a month), written in batches by the server rather than per use.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, string, string_null, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    LastUsedAt,
    LastUsedBy,
}

#[derive(DeriveIden)]
enum TokenUses {
    Table,
    TokenId,
    CallerId,
    Via,
    Span,
    StartsAt,
    Uses,
}

const LAST_USED_INDEX: &str = "idx_tokens_last_used_at";
const SPAN_INDEX: &str = "idx_token_uses_span_starts_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::add_columns(
            manager,
            Tokens::Table,
            [
                timestamp_with_time_zone_null(Tokens::LastUsedAt),
                string_null(Tokens::LastUsedBy),
            ],
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name(LAST_USED_INDEX)
                    .table(Tokens::Table)
                    .col(Tokens::LastUsedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TokenUses::Table)
                    .col(string(TokenUses::TokenId))
                    .col(string(TokenUses::CallerId))
                    .col(string(TokenUses::Via))
                    .col(string(TokenUses::Span))
                    .col(timestamp_with_time_zone(TokenUses::StartsAt))
                    .col(big_integer(TokenUses::Uses))
                    .primary_key(
                        Index::create()
                            .col(TokenUses::TokenId)
                            .col(TokenUses::CallerId)
                            .col(TokenUses::Span)
                            .col(TokenUses::StartsAt),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(TokenUses::Table, TokenUses::TokenId)
                            .to(Tokens::Table, Tokens::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(SPAN_INDEX)
                    .table(TokenUses::Table)
                    .col(TokenUses::Span)
                    .col(TokenUses::StartsAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TokenUses::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(LAST_USED_INDEX)
                    .table(Tokens::Table)
                    .to_owned(),
            )
            .await?;
        super::drop_columns(
            manager,
            Tokens::Table,
            [Tokens::LastUsedAt, Tokens::LastUsedBy],
        )
        .await?;
        Ok(())
    }
}
