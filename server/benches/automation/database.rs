//! The run's database: a SQLite file in a temporary folder or a PostgreSQL
//! database of its own, the settings of a Quiver instance on it, and its
//! tokens cloned, made due and counted in SQL (thousands at once, without
//! a provider).

use std::path::Path;

use base64::Engine;
use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use server::db::DatabaseUrl;

use crate::harness::{BenchResult, Settings};
use crate::pg_database::PgDatabase;

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
        }
    }
}

/// A database of the run's own: a SQLite file in a temporary folder, or a
/// fresh PostgreSQL database dropped (with its connections) on drop.
pub(crate) struct BenchDb {
    pub(crate) url: String,
    pub(crate) master_key: String,
    /// The PostgreSQL database, dropped with this value.
    _pg: Option<PgDatabase>,
    pub(crate) dir: tempfile::TempDir,
}

impl BenchDb {
    pub(crate) async fn create(kind: Kind, s: &Settings) -> BenchResult<Self> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let master_key = base64::engine::general_purpose::STANDARD
            .encode(rand::thread_rng().r#gen::<[u8; 32]>());
        let (url, pg) = match kind {
            Kind::Sqlite => (
                DatabaseUrl::sqlite_file(&dir.path().join("quiver.db"))
                    .expose()
                    .to_owned(),
                None,
            ),
            Kind::Postgres => {
                let pg = PgDatabase::create(&s.postgres_url, "quiver_bench").await?;
                (pg.url.clone(), Some(pg))
            }
        };
        Ok(Self {
            url,
            master_key,
            _pg: pg,
            dir,
        })
    }
}

/// The settings of a Quiver instance on `db` with its data in `data_dir`.
pub(crate) fn quiver_env(db: &BenchDb, data_dir: &Path) -> Vec<(String, String)> {
    vec![
        ("QUIVER_DATA_DIR".into(), data_dir.display().to_string()),
        ("QUIVER_DATABASE_URL".into(), db.url.clone()),
        ("QUIVER_MASTER_KEY".into(), db.master_key.clone()),
        ("QUIVER_ALLOW_INSECURE_LOOPBACK".into(), "true".into()),
    ]
}

/// `$n` placeholders, numbered the SQLite way (`?n`) when needed.
fn sql(backend: DbBackend, text: &str) -> String {
    match backend {
        DbBackend::Sqlite => text.replace('$', "?"),
        _ => text.to_owned(),
    }
}

/// Clones token `id` into tokens 2..=`total` in batched `INSERT … SELECT`s:
/// new ids and names, no sealed column (sealed values are bound to their
/// row; a Client Credentials token without an access token is renewed by
/// requesting anew), automatic refresh on, next due at `due`.
pub(crate) async fn clone_tokens(
    db: &DatabaseConnection,
    id: &str,
    total: u64,
    batch: u64,
    due: chrono::DateTime<chrono::Utc>,
) -> BenchResult {
    let backend = db.get_database_backend();
    let (with, series, n) = match backend {
        DbBackend::Postgres => ("", "generate_series($1::int, $2::int) AS g", "g"),
        _ => (
            "WITH RECURSIVE g(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM g WHERE n < $2) ",
            "g",
            "n",
        ),
    };
    let padded = |width: usize| match backend {
        DbBackend::Postgres => format!("lpad({n}::text, {width}, '0')"),
        _ => format!("printf('%0{width}d', {n})"),
    };
    let text = format!(
        "{with}INSERT INTO tokens (id, name, owner_id, provider_id, flow, use_default_keys, \
         client_id, client_secret, username, password, resource, scope, additional_values, \
         status, access_token, refresh_token, token_type, expires_at, granted_scope, identity, \
         last_error, last_refreshed_at, refresh_margin_secs, lease_owner, lease_until, \
         auto_refresh, refresh_lead_secs, refresh_due_at, failure_count, created_at, updated_at) \
         SELECT '00000000-0000-4000-8000-' || {id}, 'bench-' || {name}, owner_id, provider_id, \
         flow, use_default_keys, client_id, NULL, username, NULL, resource, scope, \
         additional_values, status, NULL, NULL, token_type, expires_at, granted_scope, identity, \
         last_error, last_refreshed_at, refresh_margin_secs, NULL, NULL, $3, refresh_lead_secs, \
         $4, 0, created_at, updated_at FROM tokens, {series} WHERE id = $5",
        id = padded(12),
        name = padded(7),
    );
    let text = sql(backend, &text);
    let mut first = 2;
    while first <= total {
        let last = (first + batch - 1).min(total);
        let done = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                &text,
                [
                    Value::from(first as i32),
                    Value::from(last as i32),
                    Value::from(true),
                    Value::from(due),
                    Value::from(id.to_owned()),
                ],
            ))
            .await
            .map_err(|e| format!("cloning tokens {first}..={last}: {e}"))?;
        if done.rows_affected() != last - first + 1 {
            return Err(format!(
                "cloning tokens {first}..={last} inserted {} rows",
                done.rows_affected()
            ));
        }
        first = last + 1;
    }
    // The original too.
    set_due(db, None, due).await
}

/// Sets automatic refresh and the next renewal of every token (or of the
/// first `limit` by id).
pub(crate) async fn set_due(
    db: &DatabaseConnection,
    limit: Option<u64>,
    due: chrono::DateTime<chrono::Utc>,
) -> BenchResult {
    let backend = db.get_database_backend();
    let text = match limit {
        None => "UPDATE tokens SET auto_refresh = $1, refresh_due_at = $2".to_owned(),
        Some(n) => format!(
            "UPDATE tokens SET auto_refresh = $1, refresh_due_at = $2 \
             WHERE id IN (SELECT id FROM tokens ORDER BY id LIMIT {n})"
        ),
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql(backend, &text),
        [Value::from(true), Value::from(due)],
    ))
    .await
    .map_err(|e| format!("setting refresh_due_at: {e}"))?;
    Ok(())
}

/// Tokens whose renewal is due at `now`.
pub(crate) async fn count_due(
    db: &DatabaseConnection,
    now: chrono::DateTime<chrono::Utc>,
) -> BenchResult<u64> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql(
                backend,
                "SELECT count(*) FROM tokens WHERE auto_refresh = $1 AND refresh_due_at <= $2",
            ),
            [Value::from(true), Value::from(now)],
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no count")?;
    let n: i64 = row.try_get_by_index(0).map_err(|e| e.to_string())?;
    Ok(n as u64)
}
