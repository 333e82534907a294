//! The renewals in flight in this process, one per token: a caller either
//! leads the renewal of a token or joins the one in flight and is told its
//! outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use app::error::AppError;
use tokio::sync::watch;

use super::Renewed;

/// What a renewal in flight lands with; `None` when its leader could not
/// claim the token, so that those waiting on it try again.
pub(super) type Landing = Option<Result<Renewed, AppError>>;

struct Flight {
    serial: u64,
    joinable: bool,
    done: watch::Receiver<Option<Landing>>,
}

/// The renewals in flight in this process, one per token.
#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<String, Flight>>,
    serial: AtomicU64,
}

/// The right, and the duty, to renew one token in this process; those who
/// joined are told the outcome by [`Lead::land`]. Dropped without landing
/// (a panic), it tells them to try again.
pub struct Lead {
    flights: Arc<Flights>,
    pub(super) id: String,
    serial: u64,
    done: watch::Sender<Option<Landing>>,
}

pub(super) enum Entry {
    Lead(Lead),
    Join {
        done: watch::Receiver<Option<Landing>>,
        joinable: bool,
    },
}

impl Flights {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Flight>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(
        self: &Arc<Self>,
        map: &mut HashMap<String, Flight>,
        id: &str,
        joinable: bool,
    ) -> Lead {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let (done, receiver) = watch::channel(None);
        map.insert(
            id.to_owned(),
            Flight {
                serial,
                joinable,
                done: receiver,
            },
        );
        Lead {
            flights: Arc::clone(self),
            id: id.to_owned(),
            serial,
            done,
        }
    }

    /// Leads the renewal of `id`, or joins the one in flight.
    pub(super) fn enter(self: &Arc<Self>, id: &str, joinable: bool) -> Entry {
        let mut map = self.map();
        if let Some(f) = map.get(id) {
            return Entry::Join {
                done: f.done.clone(),
                joinable: f.joinable,
            };
        }
        Entry::Lead(self.start(&mut map, id, joinable))
    }

    /// Leads the renewal of `id` unless one is in flight (the scheduler
    /// leaves those be).
    pub fn try_lead(self: &Arc<Self>, id: &str) -> Option<Lead> {
        let mut map = self.map();
        if map.contains_key(id) {
            return None;
        }
        Some(self.start(&mut map, id, true))
    }

    /// Renewals in flight now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Lead {
    pub(super) fn subscribe(&self) -> watch::Receiver<Option<Landing>> {
        self.done.subscribe()
    }

    /// Ends the flight and tells everyone who joined it.
    pub fn land(self, landing: Option<Result<Renewed, AppError>>) {
        self.leave();
        self.done.send_replace(Some(landing));
    }

    fn leave(&self) {
        let mut map = self.flights.map();
        if map.get(&self.id).is_some_and(|f| f.serial == self.serial) {
            map.remove(&self.id);
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Waits for a flight to land; a flight whose leader vanished lands `None`.
pub(super) async fn landing(mut done: watch::Receiver<Option<Landing>>) -> Landing {
    match done.wait_for(Option::is_some).await {
        Ok(value) => value.clone().flatten(),
        Err(_) => None,
    }
}
