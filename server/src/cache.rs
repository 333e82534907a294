//! Short-lived caches for the hot path of programs asking for an access
//! token (`GET /api/v1/tokens/{id}/access-token`): the verified API key and
//! a token that is still fresh, so that a steady stream of requests does
//! not read the database for each one.
//!
//! Safety rests on two rules:
//! - every entry remembers the [`Changes`] epoch it was read under, and any
//!   audited change (every token, provider, account and key change writes
//!   an audit entry) moves the epoch on, which drops every entry at once;
//!   on PostgreSQL the change is announced to the other replicas with
//!   `NOTIFY`, and each replica moves its own epoch on when it hears it;
//! - no entry is used longer than `QUIVER_CACHE_TTL` (1 s by default; 0
//!   turns the caches off), which bounds what a change made elsewhere
//!   without an announcement (the CLI on SQLite, a lost listener
//!   connection) can leave behind.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};

/// The PostgreSQL channel changes are announced on.
pub const CHANNEL: &str = "quiver_changes";
/// How often the audit log is looked at for changes made elsewhere.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);
/// Most entries a cache keeps; past that it starts over.
const CAPACITY: usize = 100_000;

/// The change epoch of this process, shared by its caches.
pub struct Changes {
    epoch: AtomicU64,
    ttl: Duration,
    /// Where changes are announced to other replicas (PostgreSQL only).
    announce_to: Option<DatabaseConnection>,
    /// Whether the audit log is watched (then `own` is kept).
    watching: AtomicBool,
    /// Audit entries this process wrote that the watch has not seen yet:
    /// its own changes already moved the epoch, so seeing them in the log
    /// is no reason to drop the caches again.
    own: Mutex<BTreeSet<i64>>,
}

impl Changes {
    /// Changes for a database; announcements only on PostgreSQL.
    #[must_use]
    pub fn new(db: &DatabaseConnection, ttl: Duration) -> Arc<Self> {
        let announce_to = (db.get_database_backend() == DatabaseBackend::Postgres
            && !ttl.is_zero())
        .then(|| db.clone());
        Arc::new(Self {
            epoch: AtomicU64::new(0),
            ttl,
            announce_to,
            watching: AtomicBool::new(false),
            own: Mutex::default(),
        })
    }

    /// Changes that nothing else hears of (tests, tools).
    #[must_use]
    pub fn local(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            epoch: AtomicU64::new(0),
            ttl,
            announce_to: None,
            watching: AtomicBool::new(false),
            own: Mutex::default(),
        })
    }

    /// The current epoch: read it before reading the database.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Drops every cached entry of this process.
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Something changed in the database: drop this process's entries and
    /// tell the other replicas. Call it after the change is committed.
    pub async fn changed(&self) {
        self.invalidate();
        if let Some(db) = &self.announce_to
            && let Err(e) = db.execute_unprepared(&format!("NOTIFY {CHANNEL}")).await
        {
            tracing::warn!(error = %e, "could not announce a change to the other replicas");
        }
    }

    /// This process wrote audit entry `id`.
    pub fn wrote(&self, id: i64) {
        if self.watching.load(Ordering::Acquire) {
            self.own
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id);
        }
    }

    /// Whether every audit entry after `seen` up to `latest` was written by
    /// this process; forgets the entries up to `latest`. A gap in the ids
    /// (a rolled-back insert) counts as someone else's.
    fn only_own_since(&self, seen: Option<i64>, latest: Option<i64>) -> bool {
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        let Some(latest) = latest else {
            return false;
        };
        let from = seen.unwrap_or(0);
        let mine = own.range(from.saturating_add(1)..=latest).count();
        let newer = own.split_off(&latest.saturating_add(1));
        *own = newer;
        i64::try_from(mine).is_ok_and(|n| n == latest - from)
    }

    /// Follows changes made by other processes, until aborted: on
    /// PostgreSQL it listens for other replicas' announcements (a lost
    /// connection counts as a change, since announcements may have been
    /// missed meanwhile); on both databases it also watches the audit log,
    /// which every change writes to, every [`WATCH_EVERY`] (this is how a
    /// change made by the CLI on SQLite reaches a running server).
    pub fn follow(
        self: &Arc<Self>,
        db: &DatabaseConnection,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.ttl.is_zero() {
            return None;
        }
        let changes = Arc::clone(self);
        changes.watching.store(true, Ordering::Release);
        let db = db.clone();
        Some(tokio::spawn(async move {
            let listen = async {
                if changes.announce_to.is_some() {
                    changes.listen(&db).await;
                }
            };
            tokio::join!(changes.watch_audit_log(&db), listen);
        }))
    }

    async fn watch_audit_log(&self, db: &DatabaseConnection) {
        use sea_orm::Statement;
        let query = Statement::from_string(
            db.get_database_backend(),
            "SELECT MAX(id) AS latest FROM audit_log",
        );
        let mut seen: Option<Option<i64>> = None;
        let mut every = tokio::time::interval(WATCH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let latest = db
                .query_one_raw(query.clone())
                .await
                .and_then(|row| row.map_or(Ok(None), |r| r.try_get::<Option<i64>>("", "latest")));
            match latest {
                Ok(latest) => {
                    if let Some(before) = seen
                        && before != latest
                        && !self.only_own_since(before, latest)
                    {
                        self.invalidate();
                    }
                    seen = Some(latest);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the audit log for changes");
                    self.invalidate();
                }
            }
        }
    }

    async fn listen(&self, db: &DatabaseConnection) {
        use sea_orm::sqlx::postgres::PgListener;
        let pool = db.get_postgres_connection_pool().clone();
        loop {
            let listener = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                Ok::<_, sea_orm::sqlx::Error>(listener)
            };
            let mut listener = match listener.await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other replicas' changes; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            self.invalidate();
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => self.invalidate(),
                    // The connection was lost: whatever was announced
                    // meanwhile is gone, so start over.
                    Ok(None) => self.invalidate(),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the change listener; reconnecting");
                        self.invalidate();
                        break;
                    }
                }
            }
        }
    }
}

struct Entry<V> {
    value: V,
    epoch: u64,
    read_at: Instant,
}

/// A map whose entries last until the next change, and at most the TTL.
pub struct Cache<V, K = String> {
    changes: Arc<Changes>,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<V: Clone, K: Hash + Eq> Cache<V, K> {
    /// An empty cache following `changes`.
    #[must_use]
    pub fn new(changes: Arc<Changes>) -> Self {
        Self {
            changes,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The epoch to pass to [`Cache::put`]: read it before the database.
    pub fn epoch(&self) -> u64 {
        self.changes.epoch()
    }

    /// The entry for `key`, if it is still good.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.changes.ttl.is_zero() {
            return None;
        }
        let epoch = self.changes.epoch();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        (entry.epoch == epoch && entry.read_at.elapsed() < self.changes.ttl)
            .then(|| entry.value.clone())
    }

    /// Keeps `value`, read from the database under `epoch`.
    pub fn put<Q>(&self, key: &Q, value: V, epoch: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if self.changes.ttl.is_zero() || epoch != self.changes.epoch() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(
            key.to_owned(),
            Entry {
                value,
                epoch,
                read_at: Instant::now(),
            },
        );
    }

    /// Forgets `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_of_others_count_as_changes_made_elsewhere() {
        let changes = Changes::local(Duration::from_secs(60));
        changes.watching.store(true, Ordering::Release);
        changes.wrote(11);
        changes.wrote(12);
        assert!(changes.only_own_since(Some(10), Some(12)));
        // 13 is someone else's; 14 is ours.
        changes.wrote(14);
        assert!(!changes.only_own_since(Some(12), Some(14)));
        // Forgotten once seen.
        assert!(changes.own.lock().unwrap().is_empty());
        // Ours written after the look stays for the next one.
        changes.wrote(15);
        changes.wrote(16);
        assert!(changes.only_own_since(Some(14), Some(15)));
        assert!(changes.only_own_since(Some(15), Some(16)));
        // From an empty log, and a log that looks emptied.
        changes.wrote(1);
        assert!(changes.only_own_since(None, Some(1)));
        assert!(!changes.only_own_since(Some(1), None));
    }

    #[test]
    fn nothing_is_kept_unless_the_log_is_watched() {
        let changes = Changes::local(Duration::from_secs(60));
        changes.wrote(1);
        assert!(changes.own.lock().unwrap().is_empty());
    }

    #[test]
    fn a_change_drops_every_entry() {
        let changes = Changes::local(Duration::from_secs(60));
        let cache = Cache::new(Arc::clone(&changes));
        let epoch = cache.epoch();
        cache.put("a", 1, epoch);
        assert_eq!(cache.get("a"), Some(1));
        changes.invalidate();
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn a_value_read_before_a_change_is_not_kept() {
        let changes = Changes::local(Duration::from_secs(60));
        let cache = Cache::new(Arc::clone(&changes));
        let epoch = cache.epoch();
        changes.invalidate();
        cache.put("a", 1, epoch);
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn entries_expire_after_the_ttl_and_zero_turns_the_cache_off() {
        let cache = Cache::new(Changes::local(Duration::from_millis(30)));
        cache.put("a", 1, cache.epoch());
        assert_eq!(cache.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get("a"), None);

        let off = Cache::new(Changes::local(Duration::ZERO));
        off.put("a", 1, off.epoch());
        assert_eq!(off.get("a"), None);
    }

    #[test]
    fn remove_forgets_one_key() {
        let cache = Cache::new(Changes::local(Duration::from_secs(60)));
        let epoch = cache.epoch();
        cache.put("a", 1, epoch);
        cache.put("b", 2, epoch);
        cache.remove("a");
        assert_eq!((cache.get("a"), cache.get("b")), (None, Some(2)));
    }
}
