//! Background refresh: each pass finds the tokens whose renewal is due and
//! renews them through [`crate::tokens::renewal`]: tokens already renewing
//! in this process are left to that renewal, the others claimed up to 64 in
//! one statement (so that among several replicas exactly one renews each),
//! renewed outside any transaction, and stored in the update that releases
//! the claim. Per provider, a replica has at most `refresh_concurrency`
//! requests open at the provider and starts at most
//! `refresh_rate_per_minute` renewals per minute.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use rand::seq::SliceRandom;
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::db::entity::{provider, token};
use crate::providers::OpenedProvider;
use crate::tokens::TokenStatus;
use crate::tokens::engine::TokenEngine;

/// Due tokens listed at a time.
const BATCH: u64 = 500;
/// Most tokens claimed by one statement.
const CLAIM_AT_ONCE: usize = 64;

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
    batch: u64,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

impl RefreshScheduler {
    /// A refresher over the engine's tokens.
    pub fn new(engine: TokenEngine) -> Arc<Self> {
        Self::with_batch(engine, BATCH)
    }

    /// A refresher that lists `batch` due tokens at a time (tests use a
    /// small one).
    pub fn with_batch(engine: TokenEngine, batch: u64) -> Arc<Self> {
        Arc::new(Self {
            engine,
            batch: batch.max(1),
            gates: Mutex::default(),
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

    /// What makes a token due now: auto-refresh on, due, not pending, and
    /// no live lease.
    fn due_now(&self) -> Condition {
        let now = self.engine.tokens.clock.now();
        Condition::all()
            .add(token::Column::AutoRefresh.eq(true))
            .add(token::Column::RefreshDueAt.lte(now))
            .add(token::Column::Status.ne(TokenStatus::PendingAuthorization))
            .add(
                Condition::any()
                    .add(token::Column::LeaseUntil.is_null())
                    .add(token::Column::LeaseUntil.lt(now)),
            )
    }

    /// Up to one batch of a provider's due tokens, oldest due first: ids
    /// only, since the claim answers each row as it is when claimed.
    async fn due_ids(&self, provider_id: &str) -> Result<Vec<String>, sea_orm::DbErr> {
        token::Entity::find()
            .select_only()
            .column(token::Column::Id)
            .filter(self.due_now())
            .filter(token::Column::ProviderId.eq(provider_id))
            .order_by_asc(token::Column::RefreshDueAt)
            .limit(self.batch)
            .into_tuple()
            .all(&self.engine.tokens.db)
            .await
    }

    /// One pass: renews every token due now and waits for those renewals.
    /// Every provider with due tokens is fed at once, each within its own
    /// limits (so one with a large backlog holds up no other); its tokens
    /// are listed in batches, the next while the last one's renewals still
    /// run, until none is left. A token is tried at most once per pass.
    pub async fn pass(self: &Arc<Self>) -> PassReport {
        let providers: Vec<String> = match token::Entity::find()
            .select_only()
            .column(token::Column::ProviderId)
            .distinct()
            .filter(self.due_now())
            .into_tuple()
            .all(&self.engine.tokens.db)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "the scheduler cannot list due tokens");
                return PassReport::default();
            }
        };
        if providers.is_empty() {
            return PassReport::default();
        }
        let mut report = PassReport::default();
        let mut feeds = tokio::task::JoinSet::new();
        for provider_id in providers {
            // Each provider opened (secrets and all) once per pass.
            let provider = match self.engine.providers.open(&provider_id).await {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    tracing::error!(provider = %provider_id, error = %e, "the scheduler cannot open a provider");
                    continue;
                }
            };
            let this = Arc::clone(self);
            feeds.spawn(async move { this.renew_for(provider).await });
        }
        while let Some(done) = feeds.join_next().await {
            match done {
                Ok(r) => {
                    report.renewed += r.renewed;
                    report.failed += r.failed;
                    report.skipped += r.skipped;
                }
                Err(e) => tracing::error!(error = %e, "a background refresh feed panicked"),
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

    /// Renews the due tokens of one provider within its limits, a batch at
    /// a time: as slots free up, it claims as many tokens as there are free
    /// slots (up to [`CLAIM_AT_ONCE`]) in one statement and starts their
    /// renewals.
    async fn renew_for(self: Arc<Self>, p: Arc<OpenedProvider>) -> PassReport {
        let gate = self.gate(&p.model);
        let mut report = PassReport::default();
        let mut tasks = tokio::task::JoinSet::new();
        let mut tried: HashSet<String> = HashSet::new();
        loop {
            // Listed while the last batch's renewals still run: what they
            // claimed holds a lease and is not listed again.
            let mut ids = match self.due_ids(&p.model.id).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::error!(provider = %p.model.id, error = %e, "the scheduler cannot list due tokens");
                    break;
                }
            };
            let full = ids.len() as u64 == self.batch;
            ids.retain(|id| tried.insert(id.clone()));
            if ids.is_empty() {
                break;
            }
            // Replicas start in different places, so they rarely reach for
            // the same token at once.
            ids.shuffle(&mut rand::thread_rng());
            self.feed(&gate, &p, ids, &mut tasks, &mut report).await;
            if !full {
                break;
            }
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(true) => report.renewed += 1,
                Ok(false) => report.failed += 1,
                Err(e) => tracing::error!(error = %e, "a background renewal panicked"),
            }
        }
        report
    }

    /// Claims and starts the renewals of `ids` as the provider's slots
    /// free up; the renewals run on in `tasks`.
    async fn feed(
        &self,
        gate: &Gate,
        p: &Arc<OpenedProvider>,
        ids: Vec<String>,
        tasks: &mut tokio::task::JoinSet<bool>,
        report: &mut PassReport,
    ) {
        let mut ids = ids.into_iter().peekable();
        while ids.peek().is_some() {
            let mut permits = vec![gate.enter().await];
            // Without a rate limit, every free slot is taken at once.
            if gate.per_minute <= 0 {
                while permits.len() < CLAIM_AT_ONCE
                    && permits.len() < ids.len()
                    && let Ok(permit) = gate.running.clone().try_acquire_owned()
                {
                    permits.push(permit);
                }
            }
            let slots = permits.len();
            let mut leads = Vec::with_capacity(slots);
            let mut permits = permits.into_iter();
            while leads.len() < slots {
                let Some(id) = ids.next() else { break };
                // Already being renewed in this process (by an earlier pass,
                // a program or a person): that renewal serves.
                match self.engine.flights.try_lead(&id) {
                    Some(lead) => {
                        let permit = permits.next().expect("one permit per lead");
                        leads.push((lead, permit));
                    }
                    None => report.skipped += 1,
                }
            }
            let wanted = leads.len();
            let claimed = self.engine.renew_due(p, leads, tasks).await;
            report.skipped += wanted - claimed;
        }
    }
}
