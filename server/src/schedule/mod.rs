//! The scheduler: the background work each `quiver serve` replica runs
//! (renewing tokens before they expire, running scheduled jobs,
//! delivering webhooks). Work is
//! claimed with database leases, so any number of replicas share it and a
//! replica that dies leaves nothing behind but leases that lapse.

pub mod jobs;
pub mod refresh;

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::startup::Instance;
use refresh::RefreshScheduler;

/// Passes that may overlap (a slow provider must not hold up the next).
const OVERLAPPING_PASSES: usize = 2;

/// Starts the background work unless `QUIVER_SCHEDULER` is off; it runs
/// until the process ends.
pub fn start(instance: &Instance) -> Option<tokio::task::JoinHandle<()>> {
    if !instance.config.scheduler {
        tracing::info!("QUIVER_SCHEDULER is off: this replica does no background work");
        return None;
    }
    let refresh = RefreshScheduler::new(instance.tokens.clone());
    let jobs = jobs::Jobs::new(instance.tokens.clone());
    let webhooks = crate::events::webhook::Deliverer::new(instance);
    let every = instance
        .config
        .scheduler_interval
        .to_std()
        .unwrap_or(std::time::Duration::from_secs(5));
    tracing::info!(interval_ms = every.as_millis() as u64, "scheduler started");
    // Renewals on one side, jobs and webhooks on the other: a long refresh
    // pass (a large backlog at a rate-limited provider) holds up neither.
    let refresh_passes = Arc::new(Semaphore::new(OVERLAPPING_PASSES));
    let other_passes = Arc::new(Semaphore::new(OVERLAPPING_PASSES));
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            if let Ok(permit) = refresh_passes.clone().try_acquire_owned() {
                let refresh = refresh.clone();
                tokio::spawn(async move {
                    refresh.pass().await;
                    drop(permit);
                });
            }
            if let Ok(permit) = other_passes.clone().try_acquire_owned() {
                let webhooks = webhooks.clone();
                let jobs = jobs.clone();
                tokio::spawn(async move {
                    jobs.pass().await;
                    if let Some(w) = &webhooks {
                        w.pass().await;
                    }
                    drop(permit);
                });
            }
        }
    }))
}
