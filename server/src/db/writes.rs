//! Group commit for the small writes of the hot paths (refresh leases,
//! renewed tokens, audit entries) on SQLite.
//!
//! SQLite has one writer at a time, and each commit costs far more than
//! the statement it commits: WAL frames for every page touched, the lock
//! dance, and a later checkpoint of those pages. When many renewals finish
//! at once, their writes queue here and a single task commits whatever is
//! waiting in one transaction, so a burst of N writes costs about one
//! commit instead of N. Each caller still awaits its own statement's
//! result, after its transaction is committed, so the order of one
//! caller's writes and what it reads afterwards are unchanged.
//!
//! A group goes to SQLite as one script (`BEGIN IMMEDIATE; …; COMMIT`), so
//! that committing N writes is one hand-over to sqlx's SQLite thread rather
//! than N + 2. The group task writes on a connection of its own, outside
//! the pool, kept while the task runs: its page cache stays warm from one
//! group to the next (only a write made elsewhere invalidates it), one
//! SQLite thread does every grouped write instead of whichever pooled
//! connection was free, and closing the pool never waits for it. If anything
//! in a group fails, the group is rolled back and each write runs again on
//! its own: one bad write never fails its neighbours.
//!
//! On PostgreSQL (many writers, row locks) writes go straight to the pool:
//! a group would make every write in it wait for any row lock one of them
//! meets.

use futures_util::TryStreamExt;
use sea_orm::sea_query::Values;
use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::{self, ConnectOptions, Either, Executor};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult, RuntimeErr,
    Statement, TransactionTrait,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed together.
const MAX_GROUP: usize = 256;

/// What a write did.
#[derive(Debug, Default)]
pub struct Written {
    /// Rows the statement changed.
    pub rows_affected: u64,
    /// The `id` column of the row the statement returned (an `INSERT …
    /// RETURNING id`), when it was asked for.
    pub id: Option<i64>,
    /// The rows it returned (`… RETURNING *`), when they were asked for.
    pub rows: Vec<QueryResult>,
}

/// What a statement answers besides the rows it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Returns {
    Nothing,
    Id,
    Rows,
}

/// One write: a statement, and what it returns.
struct Job {
    statement: Statement,
    returns: Returns,
    reply: oneshot::Sender<Result<Written, DbErr>>,
}

/// The write path of one database.
#[derive(Clone)]
pub struct Writes {
    db: DatabaseConnection,
    queue: Option<mpsc::UnboundedSender<Job>>,
}

impl Writes {
    /// Writes to `db`; on SQLite, a task that groups them is started on
    /// the current runtime and stops when the last `Writes` is dropped.
    pub fn new(db: &DatabaseConnection) -> Self {
        let queue = (db.get_database_backend() == DatabaseBackend::Sqlite).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(commit_groups(db.clone(), rx));
            tx
        });
        Self {
            db: db.clone(),
            queue,
        }
    }

    /// Runs `statement`, committed by the time this returns.
    pub async fn execute(&self, statement: Statement) -> Result<Written, DbErr> {
        self.submit(statement, Returns::Nothing).await
    }

    /// Runs `statement` (an `INSERT … RETURNING id`) and answers the id.
    pub async fn insert_returning_id(&self, statement: Statement) -> Result<i64, DbErr> {
        self.submit(statement, Returns::Id)
            .await?
            .id
            .ok_or_else(|| DbErr::Custom("the insert returned no id".into()))
    }

    /// Runs `statement` (an `UPDATE … RETURNING …`) and answers its rows.
    pub async fn returning_rows(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        Ok(self.submit(statement, Returns::Rows).await?.rows)
    }

    async fn submit(&self, statement: Statement, returns: Returns) -> Result<Written, DbErr> {
        let Some(queue) = &self.queue else {
            return run(&self.db, statement, returns).await;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            statement,
            returns,
            reply,
        };
        if let Err(mpsc::error::SendError(job)) = queue.send(job) {
            // The group task is gone (its runtime ended): write directly.
            return run(&self.db, job.statement, job.returns).await;
        }
        answer
            .await
            .map_err(|_| DbErr::Custom("the write was dropped before it was committed".into()))?
    }
}

/// Runs one statement on `db` (a pool, or an open transaction).
async fn run<C: ConnectionTrait>(
    db: &C,
    statement: Statement,
    returns: Returns,
) -> Result<Written, DbErr> {
    match returns {
        Returns::Nothing => {
            let done = db.execute_raw(statement).await?;
            written(returns, done.rows_affected(), Vec::new())
        }
        Returns::Id => {
            let row = db.query_one_raw(statement).await?;
            written(returns, 0, row.into_iter().collect())
        }
        Returns::Rows => written(returns, 0, db.query_all_raw(statement).await?),
    }
}

/// The group task: takes every write waiting, commits them together.
async fn commit_groups(db: DatabaseConnection, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut writer = Writer { db, conn: None };
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let together = if group.iter().all(|job| in_script(&job.statement)) {
            writer.commit_script(&group).await
        } else {
            commit_together(&writer.db, &group).await
        };
        match together {
            Ok(results) => {
                for (job, result) in group.drain(..).zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(e) if group.len() == 1 => {
                let job = group.pop().expect("one job");
                let _ = job.reply.send(Err(e));
            }
            Err(e) => {
                tracing::debug!(error = %e, writes = group.len(), "a group of writes failed; writing each on its own");
                for job in group.drain(..) {
                    let result = run(&writer.db, job.statement, job.returns).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// Whether `statement` can be part of a script: its parameters are
/// positional `?` (as sea-query writes them), which bind in order across
/// the statements of a script, and it is a single statement.
fn in_script(statement: &Statement) -> bool {
    let sql = statement.sql.as_bytes();
    !sql.contains(&b';')
        && !sql.contains(&b'$')
        && !sql
            .windows(2)
            .any(|w| w[0] == b'?' && w[1].is_ascii_digit())
}

/// The group task's own connection, opened with the pool's options on
/// the first group, and again after one that could not be rolled back.
struct Writer {
    db: DatabaseConnection,
    conn: Option<SqliteConnection>,
}

impl Writer {
    /// Every statement of `group` in one script, one transaction; nothing
    /// is kept unless all of them and the commit succeed.
    async fn commit_script(&mut self, group: &[Job]) -> Result<Vec<Written>, DbErr> {
        let mut sql = String::from("BEGIN IMMEDIATE;\n");
        let mut values = Vec::new();
        for job in group {
            sql.push_str(&job.statement.sql);
            sql.push_str(";\n");
            if let Some(v) = &job.statement.values {
                values.extend(v.0.iter().cloned());
            }
        }
        sql.push_str("COMMIT;");
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(
                self.db
                    .get_sqlite_connection_pool()
                    .connect_options()
                    .connect()
                    .await
                    .map_err(sql_error)?,
            ),
        };
        // Not kept in the connection's statement cache: a script is seldom
        // the same twice, and would push out statements that are.
        let query = sqlx::query_with(sqlx::AssertSqlSafe(sql), SqlxValues(Values(values)))
            .persistent(false);
        // Each statement answers its rows, then what it did; the first
        // answer is BEGIN's, the last COMMIT's.
        let mut results = Vec::with_capacity(group.len());
        let mut rows = Vec::new();
        let mut finished: usize = 0;
        let outcome = {
            let mut answers = conn.fetch_many(query);
            loop {
                match answers.try_next().await {
                    Ok(Some(Either::Right(row))) => rows.push(QueryResult::from(row)),
                    Ok(Some(Either::Left(done))) => {
                        if let Some(job) = finished.checked_sub(1).and_then(|i| group.get(i)) {
                            results.push(written(
                                job.returns,
                                done.rows_affected(),
                                std::mem::take(&mut rows),
                            )?);
                        }
                        finished += 1;
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(sql_error(e)),
                }
            }
        };
        if outcome.is_ok() && finished == group.len() + 2 {
            return Ok(results);
        }
        // Not committed: roll back what the script began, or give up the
        // connection if even that fails.
        if conn.execute("ROLLBACK").await.is_err() {
            self.conn = None;
        }
        outcome.and(Err(DbErr::Custom(
            "the group's script ended before its commit".into(),
        )))
    }
}

/// A statement's result from what it did and the rows it returned (the
/// rows it changed count only for statements that return nothing).
fn written(returns: Returns, rows_affected: u64, rows: Vec<QueryResult>) -> Result<Written, DbErr> {
    Ok(match returns {
        Returns::Nothing => Written {
            rows_affected,
            ..Written::default()
        },
        Returns::Id => {
            let id = match rows.first() {
                Some(row) => Some(row.try_get::<i64>("", "id")?),
                None => None,
            };
            Written {
                rows_affected: u64::from(id.is_some()),
                id,
                ..Written::default()
            }
        }
        Returns::Rows => Written {
            rows_affected: rows.len() as u64,
            rows,
            ..Written::default()
        },
    })
}

fn sql_error(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e.into()))
}

/// Every statement of `group` in one transaction, one at a time (for
/// statements that cannot be part of a script); nothing is kept unless
/// all of them and the commit succeed.
async fn commit_together(db: &DatabaseConnection, group: &[Job]) -> Result<Vec<Written>, DbErr> {
    let txn = db.begin().await?;
    let mut results = Vec::with_capacity(group.len());
    for job in group {
        match run(&txn, job.statement.clone(), job.returns).await {
            Ok(result) => results.push(result),
            Err(e) => {
                let _ = txn.rollback().await;
                return Err(e);
            }
        }
    }
    txn.commit().await?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let db = sea_orm::Database::connect(url).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
            .await
            .unwrap();
        (dir, db)
    }

    /// An insert with a positional parameter (as sea-query writes them):
    /// grouped writes of this kind go to SQLite as one script.
    fn insert(v: &str) -> Statement {
        Statement::from_sql_and_values(
            DatabaseBackend::Sqlite,
            "INSERT INTO t (v) VALUES (?) RETURNING id",
            [v.into()],
        )
    }

    /// The same with a numbered parameter: such writes are grouped in one
    /// transaction, one statement at a time.
    fn insert_numbered(v: &str) -> Statement {
        Statement::from_sql_and_values(
            DatabaseBackend::Sqlite,
            "INSERT INTO t (v) VALUES ($1) RETURNING id",
            [v.into()],
        )
    }

    #[test]
    fn only_single_statements_with_positional_parameters_make_scripts() {
        assert!(in_script(&insert("a")));
        assert!(!in_script(&insert_numbered("a")));
        let numbered = Statement::from_string(DatabaseBackend::Sqlite, "SELECT ?1");
        assert!(!in_script(&numbered));
        let two = Statement::from_string(DatabaseBackend::Sqlite, "SELECT 1; SELECT 2");
        assert!(!in_script(&two));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_each_get_their_own_result() {
        let (_dir, db) = sqlite().await;
        let writes = Writes::new(&db);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let writes = writes.clone();
            tasks.spawn(async move { writes.insert_returning_id(insert(&format!("v{i}"))).await });
        }
        let mut ids = Vec::new();
        while let Some(done) = tasks.join_next().await {
            ids.push(done.unwrap().unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 200, "every insert has its own id");
        let update = Statement::from_string(DatabaseBackend::Sqlite, "UPDATE t SET v = v || '!'");
        assert_eq!(writes.execute(update).await.unwrap().rows_affected, 200);
        // Rows returned, each write with its own, in one group.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 1..=20_i64 {
            let writes = writes.clone();
            tasks.spawn(async move {
                let update = Statement::from_sql_and_values(
                    DatabaseBackend::Sqlite,
                    "UPDATE t SET v = v || '?' WHERE id <= ? RETURNING id",
                    [i.into()],
                );
                (i, writes.returning_rows(update).await.unwrap().len())
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, rows) = done.unwrap();
            assert_eq!(
                rows as i64, i,
                "an update of ids up to {i} returns {i} rows"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_with_numbered_parameters_are_grouped_too() {
        let (_dir, db) = sqlite().await;
        let writes = Writes::new(&db);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..100 {
            let writes = writes.clone();
            tasks.spawn(async move {
                writes
                    .insert_returning_id(insert_numbered(&format!("n{i}")))
                    .await
            });
        }
        let mut ids = Vec::new();
        while let Some(done) = tasks.join_next().await {
            ids.push(done.unwrap().unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 100);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_fails_alone() {
        let (_dir, db) = sqlite().await;
        let writes = Writes::new(&db);
        writes.insert_returning_id(insert("taken")).await.unwrap();
        // Many at once, so that they are grouped; one breaks the unique
        // constraint.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let writes = writes.clone();
            let v = if i == 25 {
                "taken".to_owned()
            } else {
                format!("v{i}")
            };
            tasks.spawn(async move { (i, writes.insert_returning_id(insert(&v)).await) });
        }
        let mut failed = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (i, result) = done.unwrap();
            if result.is_err() {
                failed.push(i);
            }
        }
        assert_eq!(failed, vec![25]);
        let count = db
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM t",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(count, 50, "the other 49 and the first are stored");
    }
}
