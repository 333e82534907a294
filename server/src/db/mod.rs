//! The database: connection, entities and migrations, the same code on
//! SQLite (embedded default) and PostgreSQL.

mod database_url;
pub mod entity;
pub mod migration;
pub mod writes;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

pub use database_url::{DatabaseKind, DatabaseUrl};

/// A database failure as callers see it: logged here (the error says which
/// statement), `Internal` to the caller, who learns nothing of the schema.
pub(crate) fn db_error(e: DbErr) -> app::error::AppError {
    tracing::error!(error = %e, "a database operation failed");
    app::error::AppError::Internal
}

/// How much of the SQLite file each connection maps into memory (address
/// space, not resident memory: the pages are the OS page cache's).
const SQLITE_MMAP_BYTES: u64 = 256 * 1024 * 1024;

/// How long a SQLite writer waits for another writer before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The SQLite file's folder could not be created.
    #[error("cannot create the folder for the SQLite file {path}: {source}")]
    CreateDir {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The SQLite file could not be created.
    #[error("cannot create the SQLite file {path}: {source}")]
    CreateFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot connect to the database {url}: {source}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's error.
        source: DbErr,
    },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(DbErr),
}

/// Opens a connection pool. `schema` selects a PostgreSQL schema (tests
/// isolate themselves that way); it is ignored for SQLite.
pub async fn connect(
    url: &DatabaseUrl,
    schema: Option<&str>,
) -> Result<DatabaseConnection, DbError> {
    if let Some(file) = url.sqlite_path() {
        if let Some(parent) = file
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty() && !parent.exists())
        {
            crate::files::private_dir(parent).map_err(|source| DbError::CreateDir {
                path: parent.display().to_string(),
                source,
            })?;
        }
        crate::files::private_sqlite_files(&file).map_err(|source| DbError::CreateFile {
            path: file.display().to_string(),
            source,
        })?;
    }
    let mut options = ConnectOptions::new(url.expose().to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(15))
        // No ping before every query: it doubled the round trips of the
        // hot paths; a broken connection fails its query, which reports
        // the error, and the pool replaces it.
        .test_before_acquire(false);
    match url.kind() {
        DatabaseKind::Sqlite => {
            options
                .max_connections(8)
                .min_connections(1)
                .map_sqlx_sqlite_opts(|opts| {
                    opts.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(SQLITE_BUSY_TIMEOUT)
                        .foreign_keys(true)
                        // Pages are read from a shared mapping instead of
                        // copied by a read call each time another
                        // connection's write invalidated this one's cache
                        // (a quarter of the scheduler's CPU went there).
                        .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
                });
        }
        DatabaseKind::Postgres => {
            options.max_connections(16).min_connections(1);
            if let Some(schema) = schema {
                options.set_schema_search_path(schema.to_owned());
            }
        }
    }
    Database::connect(options)
        .await
        .map_err(|source| DbError::Connect {
            url: url.to_string(),
            source,
        })
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbError> {
    migration::Migrator::up(db, None)
        .await
        .map_err(DbError::Migrate)
}

/// Names of the migrations applied so far, oldest first.
pub async fn applied_migrations(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(migration::Migrator::get_applied_migrations(db)
        .await?
        .into_iter()
        .map(|m| m.name().to_owned())
        .collect())
}

/// Checks that the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}
