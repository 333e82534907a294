//! Master key rotation: re-seals every secret column under a new key, in
//! batches, safe to interrupt and run again (each sealed value names its
//! key id, so values already under the new key are skipped).

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, TransactionTrait, Value};

use crate::key_check;
use crate::master_key::MasterKey;
use crate::seal::{SealSlot, Sealer};

/// Every sealed column: table, primary key column, sealed columns. A new
/// secret column must be added here, or rotation would leave it behind.
pub const SEALED_COLUMNS: &[(&str, &str, &[&str])] = &[
    ("instance_settings", "name", &["value"]),
    (
        "providers",
        "id",
        &["client_secret", "next_client_secret", "private_key"],
    ),
    (
        "tokens",
        "id",
        &[
            "client_secret",
            "next_client_secret",
            "password",
            "access_token",
            "refresh_token",
            "authorization_code",
            "device_code",
        ],
    ),
    ("auth_requests", "state_hash", &["pkce_verifier"]),
];

/// Rows re-sealed per transaction.
pub const BATCH: u64 = 200;

/// Why a rotation stopped.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The configured (old) key is not the database's.
    #[error(transparent)]
    KeyCheck(#[from] key_check::KeyCheckError),
    /// A stored value does not open with either key.
    #[error("{table}.{column} of row {row} does not open: {source}")]
    Open {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// Row key.
        row: String,
        /// Why.
        source: crate::seal::SealError,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// What a rotation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// Values re-sealed now.
    pub resealed: u64,
    /// Values that were already under the new key.
    pub already_done: u64,
}

/// Re-seals every value under `new`, opening old ones with `old` (the key
/// the database was sealed with, or `new` itself when a previous run
/// finished). `progress` is told after each batch.
pub async fn rotate(
    db: &DatabaseConnection,
    old: &MasterKey,
    new: &MasterKey,
    mut progress: impl FnMut(&RotationReport),
) -> Result<RotationReport, RotateError> {
    let mut sealer = Sealer::new(new);
    sealer.add_key(old);
    // The database must belong to one of the two keys (the new one after an
    // interrupted or finished run), and its canary must open.
    let stored = key_check::stored_key_id(db).await?.unwrap_or_default();
    if stored != old.id().to_hex() && stored != new.id().to_hex() {
        return Err(key_check::KeyCheckError::Mismatch {
            stored,
            given: old.id(),
        }
        .into());
    }
    key_check::open_canary(db, &sealer).await?;
    let new_prefix = format!("qv1.{}.", new.id().to_hex());
    let backend = db.get_database_backend();
    let ph = |n: usize| match backend {
        sea_orm::DatabaseBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    };
    let mut report = RotationReport::default();
    for (table, pk, columns) in SEALED_COLUMNS {
        for column in *columns {
            let count = db
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "SELECT COUNT(*) FROM {table} WHERE {column} LIKE 'qv1.%' AND {column} LIKE {}",
                        ph(1)
                    ),
                    [Value::from(format!("{new_prefix}%"))],
                ))
                .await?
                .and_then(|r| r.try_get_by_index::<i64>(0).ok())
                .unwrap_or(0);
            report.already_done += count.unsigned_abs();
            loop {
                let rows = db
                    .query_all_raw(Statement::from_sql_and_values(
                        backend,
                        format!(
                            "SELECT {pk}, {column} FROM {table} \
                             WHERE {column} LIKE 'qv1.%' AND {column} NOT LIKE {} \
                             ORDER BY {pk} LIMIT {BATCH}",
                            ph(1)
                        ),
                        [Value::from(format!("{new_prefix}%"))],
                    ))
                    .await?;
                if rows.is_empty() {
                    break;
                }
                let txn = db.begin().await?;
                for row in rows {
                    let key: String = row.try_get_by_index(0)?;
                    let sealed: String = row.try_get_by_index(1)?;
                    let slot = SealSlot::new(table, &key, column);
                    let plain = sealer
                        .open(slot, &sealed)
                        .map_err(|source| RotateError::Open {
                            table,
                            column,
                            row: key.clone(),
                            source,
                        })?;
                    let resealed = sealer.seal(slot, plain.expose());
                    // Only if nobody changed the value meanwhile.
                    txn.execute_raw(Statement::from_sql_and_values(
                        backend,
                        format!(
                            "UPDATE {table} SET {column} = {} WHERE {pk} = {} AND {column} = {}",
                            ph(1),
                            ph(2),
                            ph(3)
                        ),
                        [Value::from(resealed), Value::from(key), Value::from(sealed)],
                    ))
                    .await?;
                    report.resealed += 1;
                }
                txn.commit().await?;
                progress(&report);
            }
        }
    }
    key_check::adopt(db, new).await?;
    Ok(report)
}
