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
//! If anything in a group fails, the group is rolled back and each write
//! runs again on its own: one bad write never fails its neighbours.
//!
//! On PostgreSQL (many writers, row locks) writes go straight to the pool:
//! a group would make every write in it wait for any row lock one of them
//! meets.

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult, Statement,
    TransactionTrait,
};
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
            Ok(Written {
                rows_affected: done.rows_affected(),
                ..Written::default()
            })
        }
        Returns::Id => {
            let row = db.query_one_raw(statement).await?;
            let id = match row {
                Some(row) => Some(row.try_get::<i64>("", "id")?),
                None => None,
            };
            Ok(Written {
                rows_affected: u64::from(id.is_some()),
                id,
                ..Written::default()
            })
        }
        Returns::Rows => {
            let rows = db.query_all_raw(statement).await?;
            Ok(Written {
                rows_affected: rows.len() as u64,
                rows,
                ..Written::default()
            })
        }
    }
}

/// The group task: takes every write waiting, commits them together.
async fn commit_groups(db: DatabaseConnection, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        if group.len() == 1 {
            let job = group.pop().expect("one job");
            let result = run(&db, job.statement, job.returns).await;
            let _ = job.reply.send(result);
            continue;
        }
        match commit_together(&db, &group).await {
            Ok(results) => {
                for (job, result) in group.drain(..).zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, writes = group.len(), "a group of writes failed; writing each on its own");
                for job in group.drain(..) {
                    let result = run(&db, job.statement, job.returns).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// Every statement of `group` in one transaction; nothing is kept unless
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

    fn insert(v: &str) -> Statement {
        Statement::from_sql_and_values(
            DatabaseBackend::Sqlite,
            "INSERT INTO t (v) VALUES ($1) RETURNING id",
            [v.into()],
        )
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
