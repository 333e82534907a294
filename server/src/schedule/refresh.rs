//! Background refresh: each pass finds the tokens whose renewal is due,
//! claims each with a lease (so that among several replicas exactly one
//! renews it), calls the provider outside any transaction, and stores the
//! result in the update that releases the lease. Per provider, a replica
//! runs at most `refresh_concurrency` renewals at once and starts at most
//! `refresh_rate_per_minute` per minute.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use rand::seq::SliceRandom;
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::audit::Actor;
use crate::db::entity::{provider, token};
use crate::providers::OpenedProvider;
use crate::tokens::engine::{Mode, TokenEngine};
use crate::tokens::status;

/// Most tokens looked at in one pass.
const BATCH: u64 = 500;
/// Added to the provider's timeout to make a lease: long enough that a
/// live replica always finishes within its lease.
const LEASE_SLACK: chrono::Duration = chrono::Duration::seconds(10);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Renewed successfully.
    pub renewed: usize,
    /// The provider refused or did not answer (recorded on the token).
    pub failed: usize,
    /// Taken by another replica or caller, or no longer due.
    pub skipped: usize,
}

/// The outcome for one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Renewed.
    Renewed,
    /// Tried and failed.
    Failed,
    /// Not done here: someone else holds it, or it is no longer due.
    Skipped,
}

/// Limits for one provider within this replica.
struct Gate {
    concurrency: i32,
    per_minute: i32,
    running: Arc<Semaphore>,
    bucket: tokio::sync::Mutex<Bucket>,
}

/// A token bucket: `per_minute` starts per minute, bursts of `burst`.
struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl Gate {
    fn new(concurrency: i32, per_minute: i32) -> Self {
        let burst = f64::from(concurrency.max(1));
        Self {
            concurrency,
            per_minute,
            running: Arc::new(Semaphore::new(
                usize::try_from(concurrency.max(1)).unwrap_or(1),
            )),
            bucket: tokio::sync::Mutex::new(Bucket {
                tokens: burst,
                burst,
                per_second: f64::from(per_minute.max(0)) / 60.0,
                last: Instant::now(),
            }),
        }
    }

    /// Waits for a free slot and, when rate-limited, for the next start.
    async fn enter(&self) -> OwnedSemaphorePermit {
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .expect("the gate's semaphore is never closed");
        if self.per_minute > 0 {
            loop {
                let wait = {
                    let mut b = self.bucket.lock().await;
                    let now = Instant::now();
                    b.tokens =
                        (b.tokens + (now - b.last).as_secs_f64() * b.per_second).min(b.burst);
                    b.last = now;
                    if b.tokens >= 1.0 {
                        b.tokens -= 1.0;
                        break;
                    }
                    (1.0 - b.tokens) / b.per_second
                };
                tokio::time::sleep(StdDuration::from_secs_f64(wait.min(60.0))).await;
            }
        }
        permit
    }
}

/// The background refresher of one replica.
pub struct RefreshScheduler {
    engine: TokenEngine,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl RefreshScheduler {
    /// A refresher over the engine's tokens.
    pub fn new(engine: TokenEngine) -> Arc<Self> {
        Arc::new(Self {
            engine,
            gates: Mutex::default(),
            in_flight: Arc::default(),
        })
    }

    fn gate(&self, p: &provider::Model) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        let current = gates.get(&p.id).filter(|g| {
            g.concurrency == p.refresh_concurrency && g.per_minute == p.refresh_rate_per_minute
        });
        match current {
            Some(g) => g.clone(),
            None => {
                let g = Arc::new(Gate::new(p.refresh_concurrency, p.refresh_rate_per_minute));
                gates.insert(p.id.clone(), g.clone());
                g
            }
        }
    }

    /// One pass: renews every token due now (up to a batch) and waits for
    /// those renewals.
    pub async fn pass(self: &Arc<Self>) -> PassReport {
        let db = &self.engine.tokens.db;
        let now = self.engine.tokens.clock.now();
        // Whole rows: each renewal starts from the row read here (its claim
        // checks the row's version, so a row renewed since is skipped).
        let due: Vec<token::Model> = match token::Entity::find()
            .filter(token::Column::AutoRefresh.eq(true))
            .filter(token::Column::RefreshDueAt.lte(now))
            .filter(
                Condition::any()
                    .add(token::Column::LeaseUntil.is_null())
                    .add(token::Column::LeaseUntil.lt(now)),
            )
            .order_by_asc(token::Column::RefreshDueAt)
            .limit(BATCH)
            .all(db)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "the scheduler cannot list due tokens");
                return PassReport::default();
            }
        };
        if due.is_empty() {
            return PassReport::default();
        }
        // Each provider opened (secrets and all) once per pass.
        let provider_ids: HashSet<&String> = due.iter().map(|t| &t.provider_id).collect();
        let mut providers: HashMap<String, Arc<OpenedProvider>> = HashMap::new();
        for id in provider_ids {
            match self.engine.providers.open(id).await {
                Ok(p) => {
                    providers.insert(id.clone(), Arc::new(p));
                }
                Err(e) => {
                    tracing::error!(provider = %id, error = %e, "the scheduler cannot open a provider")
                }
            }
        }
        // Replicas start in different places, so they rarely reach for
        // the same token at once.
        let mut due = due;
        due.shuffle(&mut rand::thread_rng());
        let mut tasks = tokio::task::JoinSet::new();
        let mut report = PassReport::default();
        for t in due {
            let Some(p) = providers.get(&t.provider_id).cloned() else {
                continue;
            };
            let id = t.id.clone();
            if !self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone())
            {
                report.skipped += 1;
                continue;
            }
            let gate = self.gate(&p.model);
            let lease =
                chrono::Duration::milliseconds(i64::from(p.model.timeout_ms.max(0))) + LEASE_SLACK;
            let engine = self.engine.clone();
            let in_flight = self.in_flight.clone();
            tasks.spawn(async move {
                let outcome = {
                    let _permit = gate.enter().await;
                    renew_due(&engine, t, &p, lease).await
                };
                in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                outcome
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Renewal::Renewed) => report.renewed += 1,
                Ok(Renewal::Failed) => report.failed += 1,
                Ok(Renewal::Skipped) => report.skipped += 1,
                Err(e) => tracing::error!(error = %e, "a background renewal panicked"),
            }
        }
        if report.renewed + report.failed > 0 {
            tracing::info!(
                renewed = report.renewed,
                failed = report.failed,
                skipped = report.skipped,
                "background refresh pass"
            );
        }
        report
    }
}

/// Renews one due token, as read by the pass, if this replica can claim
/// it (the claim fails when the row changed since it was read).
pub async fn renew_due(
    engine: &TokenEngine,
    t: token::Model,
    provider: &OpenedProvider,
    lease: chrono::Duration,
) -> Renewal {
    let now = engine.tokens.clock.now();
    let id = t.id.clone();
    let id = id.as_str();
    let still_due = t.auto_refresh && t.refresh_due_at.is_some_and(|d| d <= now);
    if !still_due || t.status == status::PENDING {
        return Renewal::Skipped;
    }
    match engine.claim_row(&t, lease).await {
        Ok(true) => {}
        Ok(false) => return Renewal::Skipped,
        Err(_) => return Renewal::Skipped,
    }
    let result = engine
        .refresh_with(
            Actor::System("scheduler".into()),
            t,
            None,
            Mode::Background,
            provider,
        )
        .await;
    // Storing released the lease; a refusal before storing did not.
    if result.is_err() {
        engine.release(id).await;
    }
    match result {
        Ok(view) if view.error.is_none() => Renewal::Renewed,
        Ok(_) | Err(_) => Renewal::Failed,
    }
}
