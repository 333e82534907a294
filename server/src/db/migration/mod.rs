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

use sea_orm_migration::prelude::*;

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
        ]
    }
}
