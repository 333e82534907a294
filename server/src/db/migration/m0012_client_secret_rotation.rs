//! Client-secret rotation: a provider's default client, and a token with
//! its own client, hold the current secret and optionally the next one,
//! each with an optional expiry; which of the two the provider last
//! accepted; and which expiry dates were announced.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_null, text_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Rotation {
    NextClientSecret,
    ClientSecretExpiresAt,
    NextClientSecretExpiresAt,
    SecretInUse,
    SecretInUseSince,
    SecretExpiryAnnouncedFor,
    NextSecretExpiryAnnouncedFor,
}

const COLUMNS: [Rotation; 7] = [
    Rotation::NextClientSecret,
    Rotation::ClientSecretExpiresAt,
    Rotation::NextClientSecretExpiresAt,
    Rotation::SecretInUse,
    Rotation::SecretInUseSince,
    Rotation::SecretExpiryAnnouncedFor,
    Rotation::NextSecretExpiryAnnouncedFor,
];

fn definitions() -> [ColumnDef; 7] {
    [
        text_null(Rotation::NextClientSecret),
        timestamp_with_time_zone_null(Rotation::ClientSecretExpiresAt),
        timestamp_with_time_zone_null(Rotation::NextClientSecretExpiresAt),
        string_null(Rotation::SecretInUse),
        timestamp_with_time_zone_null(Rotation::SecretInUseSince),
        timestamp_with_time_zone_null(Rotation::SecretExpiryAnnouncedFor),
        timestamp_with_time_zone_null(Rotation::NextSecretExpiryAnnouncedFor),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::add_columns(manager, Providers::Table, definitions()).await?;
        super::add_columns(manager, Tokens::Table, definitions()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::drop_columns(manager, Tokens::Table, COLUMNS).await?;
        super::drop_columns(manager, Providers::Table, COLUMNS).await?;
        Ok(())
    }
}
