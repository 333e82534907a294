//! How long a refresh token lasts, and what a renewal left out. Providers
//! get a refresh-token lifetime for when their answers do not say (and
//! whether it restarts with each use); tokens keep when their refresh token
//! expires, which re-authorization warning was last raised, and the notes
//! of their last renewal (a dropped refresh token, a narrower scope, no
//! `expires_in`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer_null, boolean, text_null, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
    RefreshTokenLifetimeSecs,
    RefreshTokenLifetimeSliding,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    RefreshTokenExpiresAt,
    ReauthorizationAnnouncedFor,
    RenewalNotes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::add_columns(
            manager,
            Providers::Table,
            [
                big_integer_null(Providers::RefreshTokenLifetimeSecs),
                boolean(Providers::RefreshTokenLifetimeSliding)
                    .default(false)
                    .to_owned(),
            ],
        )
        .await?;
        super::add_columns(
            manager,
            Tokens::Table,
            [
                timestamp_with_time_zone_null(Tokens::RefreshTokenExpiresAt),
                timestamp_with_time_zone_null(Tokens::ReauthorizationAnnouncedFor),
                text_null(Tokens::RenewalNotes),
            ],
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tokens_refresh_token_expires_at")
                    .table(Tokens::Table)
                    .col(Tokens::RefreshTokenExpiresAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tokens_refresh_token_expires_at")
                    .table(Tokens::Table)
                    .to_owned(),
            )
            .await?;
        super::drop_columns(
            manager,
            Tokens::Table,
            [
                Tokens::RefreshTokenExpiresAt,
                Tokens::ReauthorizationAnnouncedFor,
                Tokens::RenewalNotes,
            ],
        )
        .await?;
        super::drop_columns(
            manager,
            Providers::Table,
            [
                Providers::RefreshTokenLifetimeSecs,
                Providers::RefreshTokenLifetimeSliding,
            ],
        )
        .await?;
        Ok(())
    }
}
