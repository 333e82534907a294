//! Per-token refresh margin, and the lease that lets one process at a time
//! renew a token.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, string_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Tokens {
    Table,
    RefreshMarginSecs,
    LeaseOwner,
    LeaseUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            integer(Tokens::RefreshMarginSecs).default(60).to_owned(),
            string_null(Tokens::LeaseOwner),
            timestamp_with_time_zone_null(Tokens::LeaseUntil),
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Tokens::RefreshMarginSecs,
            Tokens::LeaseOwner,
            Tokens::LeaseUntil,
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
        Ok(())
    }
}
