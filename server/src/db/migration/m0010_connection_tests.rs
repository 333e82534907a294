//! Connection tests: a request a provider's API answers with the access
//! token as bearer (its userinfo endpoint, a cheap API call), named on the
//! provider and optionally per token, optionally run after every renewal;
//! each token keeps the outcome of its last test.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, integer_null, string_null, text_null, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
    TestRequestUrl,
    TestRequestMethod,
    TestAfterRenewal,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    TestRequestUrl,
    TestRequestMethod,
    LastTestAt,
    LastTestStatus,
    LastTestResult,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::add_columns(
            manager,
            Providers::Table,
            [
                text_null(Providers::TestRequestUrl),
                string_null(Providers::TestRequestMethod),
                boolean(Providers::TestAfterRenewal)
                    .default(false)
                    .to_owned(),
            ],
        )
        .await?;
        super::add_columns(
            manager,
            Tokens::Table,
            [
                text_null(Tokens::TestRequestUrl),
                string_null(Tokens::TestRequestMethod),
                timestamp_with_time_zone_null(Tokens::LastTestAt),
                integer_null(Tokens::LastTestStatus),
                text_null(Tokens::LastTestResult),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::drop_columns(
            manager,
            Tokens::Table,
            [
                Tokens::TestRequestUrl,
                Tokens::TestRequestMethod,
                Tokens::LastTestAt,
                Tokens::LastTestStatus,
                Tokens::LastTestResult,
            ],
        )
        .await?;
        super::drop_columns(
            manager,
            Providers::Table,
            [
                Providers::TestRequestUrl,
                Providers::TestRequestMethod,
                Providers::TestAfterRenewal,
            ],
        )
        .await?;
        Ok(())
    }
}
