//! Progress of imports, so that a page can poll
//! `GET /api/v1/import/{import_id}/progress` while its `POST` runs.
//!
//! The registry lives in the process: a poll must reach the replica that
//! runs the import (with several replicas behind a balancer, the answer is
//! 404 on the others; the import itself is unaffected). Entries of finished
//! imports are kept for [`KEEP_FINISHED`], then dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How long the progress of a finished import can still be read.
pub const KEEP_FINISHED: Duration = Duration::from_secs(600);

/// Most imports tracked at once; older finished ones go first.
const MAX_ENTRIES: usize = 256;

/// What an import is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading and checking the bundle.
    Reading,
    /// Deriving the passphrase key and opening the secrets.
    Unlocking,
    /// Comparing with what the instance holds.
    Planning,
    /// Writing rows inside the transaction (`done` of `total`).
    Writing,
    /// Committing the transaction.
    Committing,
    /// Finished: everything was imported.
    Done,
    /// Failed: nothing was imported.
    Failed,
}

impl Phase {
    /// Its name, as `GET …/progress` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reading => "reading",
            Self::Unlocking => "unlocking",
            Self::Planning => "planning",
            Self::Writing => "writing",
            Self::Committing => "committing",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// One import's progress, as `GET …/progress` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The id the client chose.
    pub import_id: String,
    /// What it is doing.
    pub phase: Phase,
    /// Rows written so far.
    pub done: u64,
    /// Rows to write in all (0 until planned).
    pub total: u64,
    /// Whether it has ended (`done` or `failed`).
    pub finished: bool,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug)]
struct State {
    done: AtomicU64,
    total: AtomicU64,
    phase: Mutex<Phase>,
    error: Mutex<Option<String>>,
    finished_at: Mutex<Option<Instant>>,
}

impl State {
    fn snapshot(&self, id: &str) -> Snapshot {
        let phase = *lock(&self.phase);
        Snapshot {
            import_id: id.to_owned(),
            phase,
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            finished: matches!(phase, Phase::Done | Phase::Failed),
            error: lock(&self.error).clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere leaves plain numbers behind: still readable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The import ids of this process and their progress.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Arc<State>>>,
}

/// An import id that is already running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an import with the id {0:?} is running; choose another import_id")]
pub struct AlreadyRunning(pub String);

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);
    &REGISTRY
}

/// Whether `id` is acceptable as an import id: 1 to 64 letters, digits,
/// `-` or `_` (it appears in a URL path).
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Registry {
    /// Starts tracking `id`; refused while an import with that id runs.
    pub fn start(&self, id: &str) -> Result<Tracker, AlreadyRunning> {
        let mut entries = lock(&self.entries);
        let now = Instant::now();
        entries.retain(|_, s| lock(&s.finished_at).is_none_or(|at| now - at < KEEP_FINISHED));
        if let Some(existing) = entries.get(id)
            && lock(&existing.finished_at).is_none()
        {
            return Err(AlreadyRunning(id.to_owned()));
        }
        if entries.len() >= MAX_ENTRIES {
            let oldest = entries
                .iter()
                .filter_map(|(k, s)| lock(&s.finished_at).map(|at| (at, k.clone())))
                .min();
            if let Some((_, key)) = oldest {
                entries.remove(&key);
            }
        }
        let state = Arc::new(State {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            phase: Mutex::new(Phase::Reading),
            error: Mutex::new(None),
            finished_at: Mutex::new(None),
        });
        entries.insert(id.to_owned(), state.clone());
        Ok(Tracker { state: Some(state) })
    }

    /// The progress of `id`, if this process knows it.
    pub fn get(&self, id: &str) -> Option<Snapshot> {
        lock(&self.entries).get(id).map(|s| s.snapshot(id))
    }
}

/// Reports the progress of one import; an import that ends without
/// [`Tracker::finish`] (an error, a panic, a dropped request) is `failed`.
#[derive(Debug, Default)]
pub struct Tracker {
    state: Option<Arc<State>>,
}

impl Tracker {
    /// A tracker that records nothing (no import id was given).
    pub fn none() -> Self {
        Self { state: None }
    }

    /// Enters `phase`.
    pub fn phase(&self, phase: Phase) {
        if let Some(s) = &self.state {
            *lock(&s.phase) = phase;
        }
    }

    /// Rows written so far of `total`.
    pub fn progress(&self, done: u64, total: u64) {
        if let Some(s) = &self.state {
            s.total.store(total, Ordering::Relaxed);
            s.done.store(done, Ordering::Relaxed);
        }
    }

    /// Ends the import: `Ok` is done, `Err` names why nothing was imported.
    pub fn finish(mut self, outcome: Result<(), String>) {
        self.end(outcome);
    }

    fn end(&mut self, outcome: Result<(), String>) {
        if let Some(s) = self.state.take() {
            let phase = match outcome {
                Ok(()) => Phase::Done,
                Err(e) => {
                    *lock(&s.error) = Some(e);
                    Phase::Failed
                }
            };
            *lock(&s.phase) = phase;
            *lock(&s.finished_at) = Some(Instant::now());
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.end(Err(
            "the import stopped before it finished; nothing was imported".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_are_the_serialized_names() {
        for phase in [
            Phase::Reading,
            Phase::Unlocking,
            Phase::Planning,
            Phase::Writing,
            Phase::Committing,
            Phase::Done,
            Phase::Failed,
        ] {
            assert_eq!(
                serde_json::to_value(phase).unwrap(),
                serde_json::json!(phase.as_str())
            );
        }
    }

    #[test]
    fn a_running_id_cannot_be_reused_until_it_finishes() {
        let registry = Registry::default();
        let tracker = registry.start("a-1").unwrap();
        assert_eq!(
            registry.start("a-1").unwrap_err(),
            AlreadyRunning("a-1".into())
        );
        tracker.phase(Phase::Writing);
        tracker.progress(5, 10);
        let snap = registry.get("a-1").unwrap();
        assert_eq!((snap.phase, snap.done, snap.total), (Phase::Writing, 5, 10));
        assert!(!snap.finished);
        tracker.finish(Ok(()));
        let snap = registry.get("a-1").unwrap();
        assert_eq!(snap.phase, Phase::Done);
        assert!(snap.finished);
        // Finished: the id may be used again.
        registry.start("a-1").unwrap().finish(Ok(()));
    }

    #[test]
    fn a_dropped_tracker_reports_failure() {
        let registry = Registry::default();
        drop(registry.start("b").unwrap());
        let snap = registry.get("b").unwrap();
        assert_eq!(snap.phase, Phase::Failed);
        assert!(snap.error.unwrap().contains("nothing was imported"));
        assert!(registry.get("unknown").is_none());
    }

    #[test]
    fn ids_are_short_url_safe_words() {
        assert!(valid_id("import-2026_01"));
        for bad in ["", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }
}
