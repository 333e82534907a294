//! A database of its own on the test PostgreSQL server, dropped (with its
//! connections) when the value drops, also while unwinding from a failure.
//!
//! Shared by the integration tests and the benchmarks (`server/benches`
//! include this file).

use sea_orm::{ConnectOptions, ConnectionTrait, Database};

/// The test PostgreSQL server: `QUIVER_TEST_POSTGRES_URL`, by default the
/// local cluster `scripts/postgres.sh` starts.
pub fn postgres_url() -> String {
    std::env::var("QUIVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Connection options that do not log every statement.
fn quiet(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    options
}

pub struct PgDatabase {
    /// The server's URL, where the database is dropped from.
    server: String,
    name: String,
    /// The database's URL.
    pub url: String,
}

impl PgDatabase {
    /// Creates a database named `prefix` and a random suffix on `server`.
    pub async fn create(server: &str, prefix: &str) -> Result<Self, String> {
        let admin = Database::connect(quiet(server)).await.map_err(|e| {
            format!("PostgreSQL is not reachable at {server}: {e} (scripts/postgres.sh starts it)")
        })?;
        let name = format!("{prefix}_{:016x}", rand::random::<u64>());
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| format!("create database {name}: {e}"))?;
        let _ = admin.close().await;
        let mut url = url::Url::parse(server).map_err(|e| format!("{server}: {e}"))?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            server: server.to_owned(),
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Possibly inside a runtime: drop from a thread with one of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = Database::connect(quiet(&server))
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop the PostgreSQL database {}: {dropped:?}",
                self.name
            );
        }
    }
}
