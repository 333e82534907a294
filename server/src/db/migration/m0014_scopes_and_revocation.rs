//! Two provider settings: required scopes, added to every token's scope
//! made or edited for it (a refresh token only comes with
//! `offline_access`, say); and how revocation requests carry the token
//! (a form, or JSON for providers such as Intuit).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string, text_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
}

#[derive(DeriveIden, Clone, Copy)]
enum Settings {
    RequiredScope,
    RevocationFormat,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::add_columns(
            manager,
            Providers::Table,
            [
                text_null(Settings::RequiredScope),
                string(Settings::RevocationFormat)
                    .default("form")
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::drop_columns(
            manager,
            Providers::Table,
            [Settings::RequiredScope, Settings::RevocationFormat],
        )
        .await
    }
}
