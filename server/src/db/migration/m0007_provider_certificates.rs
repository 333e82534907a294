//! A provider's certificate for its signing key (public, stored as PEM),
//! whether client assertions also carry its SHA-1 thumbprint, and which
//! certificate's coming expiry has already been announced.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{boolean, string_null, text_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
    Certificate,
    SendSha1Thumbprint,
    CertificateExpiryAnnounced,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            text_null(Providers::Certificate),
            boolean(Providers::SendSha1Thumbprint)
                .default(false)
                .to_owned(),
            string_null(Providers::CertificateExpiryAnnounced),
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Providers::Certificate,
            Providers::SendSha1Thumbprint,
            Providers::CertificateExpiryAnnounced,
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
