//! Schema migrations, applied at start and by `quiver migrate`. Never edit
//! a migration that has shipped: add a new one.

mod m0001_instance_settings;
mod m0002_accounts;
mod m0003_providers_tokens;
mod m0004_token_leases;
mod m0005_background_refresh;
mod m0006_jobs;
mod m0007_provider_certificates;
mod m0008_provider_quirks;
mod m0009_refresh_token_lifetimes;
mod m0010_connection_tests;
mod m0011_token_usage;
mod m0012_client_secret_rotation;
mod m0013_renewal_counts;
mod m0014_scopes_and_revocation;

use sea_orm_migration::prelude::*;

/// Adds `columns` to `table`, one statement each: SQLite's ALTER TABLE
/// adds one at a time.
async fn add_columns(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    columns: impl IntoIterator<Item = ColumnDef>,
) -> Result<(), DbErr> {
    let table = table.into_iden();
    for mut column in columns {
        manager
            .alter_table(
                Table::alter()
                    .table(table.clone())
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// Drops `columns` from `table`, one statement each.
async fn drop_columns<C: IntoIden>(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    columns: impl IntoIterator<Item = C>,
) -> Result<(), DbErr> {
    let table = table.into_iden();
    for column in columns {
        manager
            .alter_table(
                Table::alter()
                    .table(table.clone())
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

/// The list of migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_instance_settings::Migration),
            Box::new(m0002_accounts::Migration),
            Box::new(m0003_providers_tokens::Migration),
            Box::new(m0004_token_leases::Migration),
            Box::new(m0005_background_refresh::Migration),
            Box::new(m0006_jobs::Migration),
            Box::new(m0007_provider_certificates::Migration),
            Box::new(m0008_provider_quirks::Migration),
            Box::new(m0009_refresh_token_lifetimes::Migration),
            Box::new(m0010_connection_tests::Migration),
            Box::new(m0011_token_usage::Migration),
            Box::new(m0012_client_secret_rotation::Migration),
            Box::new(m0013_renewal_counts::Migration),
            Box::new(m0014_scopes_and_revocation::Migration),
        ]
    }
}
