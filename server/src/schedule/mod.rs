//! The scheduler: the background work each `quiver serve` replica runs
//! (renewing tokens before they expire, running scheduled jobs,
//! delivering webhooks, announcing provider certificates about to expire
//! and tokens due for re-authorization, polling device codes waiting for
//! their person).
//! Work is
//! claimed with database leases, so any number of replicas share it and a
//! replica that dies leaves nothing behind but leases that lapse.

pub mod jobs;
pub mod refresh;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::events::webhook::Deliverer;
use crate::tokens::engine::TokenEngine;
use refresh::RefreshScheduler;

/// Passes that may overlap (a slow provider must not hold up the next).
const OVERLAPPING_PASSES: usize = 2;

/// How often provider certificates and re-authorization dates are looked
/// at: their warnings are days ahead.
const CERTIFICATE_CHECK_EVERY: Duration = Duration::from_secs(3600);

/// The background work of one replica: renewals, scheduled jobs and
/// webhook deliveries, one pass of each every `every`; certificate
/// expiries hourly.
pub struct Scheduler {
    refresh: Arc<RefreshScheduler>,
    devices: TokenEngine,
    jobs: jobs::Jobs,
    webhooks: Option<Deliverer>,
    certificates: Arc<CertificateWatch>,
    every: Duration,
}

/// Announces provider certificates about to expire, at most once per
/// [`CERTIFICATE_CHECK_EVERY`].
struct CertificateWatch {
    tokens: TokenEngine,
    last: Mutex<Option<Instant>>,
}

impl CertificateWatch {
    async fn pass(&self) {
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < CERTIFICATE_CHECK_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.tokens
            .providers
            .announce_expiring_certificates(&self.tokens.events)
            .await;
        self.tokens
            .providers
            .announce_expiring_secrets(&self.tokens.events)
            .await;
        self.tokens.announce_reauthorization_due().await;
        self.tokens.announce_unused().await;
    }
}

impl Scheduler {
    /// The scheduler of `tokens` (renewals and jobs) and `webhooks` (none
    /// when no webhook is configured), passing every `interval`.
    pub fn new(
        tokens: TokenEngine,
        webhooks: Option<Deliverer>,
        interval: chrono::Duration,
    ) -> Self {
        Self {
            refresh: RefreshScheduler::new(tokens.clone()),
            devices: tokens.clone(),
            certificates: Arc::new(CertificateWatch {
                tokens: tokens.clone(),
                last: Mutex::new(None),
            }),
            jobs: jobs::Jobs::new(tokens),
            webhooks,
            every: interval.to_std().unwrap_or(Duration::from_secs(5)),
        }
    }

    /// Starts the background work; it runs until the process ends.
    pub fn start(self) -> tokio::task::JoinHandle<()> {
        let Self {
            refresh,
            devices,
            jobs,
            webhooks,
            certificates,
            every,
        } = self;
        tracing::info!(interval_ms = every.as_millis() as u64, "scheduler started");
        // Renewals on one side, jobs and webhooks on the other: a long refresh
        // pass (a large backlog at a rate-limited provider) holds up neither.
        let refresh_passes = Arc::new(Semaphore::new(OVERLAPPING_PASSES));
        let other_passes = Arc::new(Semaphore::new(OVERLAPPING_PASSES));
        // Device polls on their own: a person waits on them, and each code
        // is polled by one pass at a time anyway.
        let device_passes = Arc::new(Semaphore::new(1));
        tokio::spawn(async move {
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
                if let Ok(permit) = device_passes.clone().try_acquire_owned() {
                    let devices = devices.clone();
                    tokio::spawn(async move {
                        devices.poll_devices().await;
                        drop(permit);
                    });
                }
                if let Ok(permit) = other_passes.clone().try_acquire_owned() {
                    let webhooks = webhooks.clone();
                    let jobs = jobs.clone();
                    let certificates = certificates.clone();
                    tokio::spawn(async move {
                        jobs.pass().await;
                        certificates.pass().await;
                        if let Some(w) = &webhooks {
                            w.pass().await;
                        }
                        drop(permit);
                    });
                }
            }
        })
    }
}
