//! How tokens are used: every access token handed out is counted per token
//! and per caller (an API key, or a person's session) in memory, and the
//! counts are written in batches ([`Usage::write`], every
//! [`WRITE_USES_EVERY`] and when the server stops), so that handing out a
//! token never waits for a database write. Reads add the counts not written
//! yet, so that a view is exact on the replica that served the uses.
//!
//! Stored: each token's last use and its caller, and the uses per caller in
//! hourly buckets (kept [`HOURS_KEPT`] hours, for "uses in the last 24
//! hours") and daily buckets (kept [`DAYS_KEPT`] days, for the usage chart).
//! Renewals (calls to the provider that renew a token) are counted the same
//! way per token owner, for the overview's charts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QuerySelect, TransactionTrait,
};

use crate::auth::{Caller, Via};
use crate::clock::SharedClock;
use crate::db::entity::token_use::{self, Span, Via as UseVia};
use crate::db::entity::{renewal_count, token};

/// How often the server writes the counted uses.
pub const WRITE_USES_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Hourly buckets are kept this many hours.
pub const HOURS_KEPT: i64 = 48;
/// Daily buckets are kept this many days.
pub const DAYS_KEPT: i64 = 32;
/// Days the usage chart shows, today included.
pub const CHART_DAYS: i64 = 30;
/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 200;

/// A token's usage as shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// The last hand-out.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Its caller: an API key's name or a person's email.
    pub last_used_by: Option<String>,
    /// Hand-outs in the last 24 hours (the current hour and the 23 before).
    pub uses_24h: u64,
}

/// Uses of one token by one caller within one hour, not written yet.
#[derive(Debug, Clone)]
struct Count {
    caller_id: String,
    via: UseVia,
    /// Hours since the epoch.
    hour: i64,
    uses: u64,
}

/// Renewals of one owner's tokens, and how many of them failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenewalCount {
    pub renewals: u64,
    pub failures: u64,
}

impl RenewalCount {
    fn add(&mut self, other: RenewalCount) {
        self.renewals += other.renewals;
        self.failures += other.failures;
    }
}

/// Renewals per hour over the last 24 hours (current hour last) and per
/// day over the last [`CHART_DAYS`] days (today last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenewalHistory {
    pub hourly: Vec<(DateTime<Utc>, RenewalCount)>,
    pub daily: Vec<(NaiveDate, RenewalCount)>,
}

/// One token's uses not written yet.
#[derive(Debug, Clone)]
struct Pending {
    last_at: DateTime<Utc>,
    last_by: String,
    counts: Vec<Count>,
}

impl Pending {
    fn add(&mut self, caller_id: &str, via: UseVia, hour: i64, uses: u64) {
        match self
            .counts
            .iter_mut()
            .find(|c| c.hour == hour && c.caller_id == caller_id)
        {
            Some(count) => count.uses += uses,
            None => self.counts.push(Count {
                caller_id: caller_id.to_owned(),
                via,
                hour,
                uses,
            }),
        }
    }

    /// Adds `other`'s uses (a batch that could not be written).
    fn merge(&mut self, other: Pending) {
        if other.last_at > self.last_at {
            self.last_at = other.last_at;
            self.last_by = other.last_by;
        }
        for c in other.counts {
            self.add(&c.caller_id, c.via, c.hour, c.uses);
        }
    }
}

/// `SUM(column)` as a 64-bit integer on both databases (PostgreSQL sums a
/// `bigint` column as `numeric`).
fn summed(column: impl sea_orm::sea_query::IntoColumnRef) -> sea_orm::sea_query::SimpleExpr {
    Func::cast_as(Func::sum(Expr::col(column)), Alias::new("BIGINT")).into()
}

fn hour_start(hour: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(hour * 3600, 0)
        .single()
        .unwrap_or_default()
}

/// The first hour (since the epoch) of the day of `hour`.
fn day_hour(hour: i64) -> i64 {
    hour - hour.rem_euclid(24)
}

fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The first hour of the last 24, in hours since the epoch.
fn first_hour_of_24(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(3600) - 23
}

/// The usage counter and its store.
pub struct Usage {
    db: DatabaseConnection,
    clock: SharedClock,
    /// Token id → its uses not written yet.
    pending: Mutex<HashMap<String, Pending>>,
    /// Renewals not written yet: (owner id, hour) → counts.
    renewals: Mutex<HashMap<(String, i64), RenewalCount>>,
    /// When old buckets were last deleted (seconds since the epoch).
    pruned_at: AtomicI64,
}

impl Usage {
    /// An empty counter over `db`.
    pub fn new(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self {
            db,
            clock,
            pending: Mutex::default(),
            renewals: Mutex::default(),
            pruned_at: AtomicI64::new(i64::MIN),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one hand-out of token `token_id` to `caller`: one short lock,
    /// no allocation but for a token's or caller's first use in an hour.
    pub fn note(&self, token_id: &str, caller: &Caller) {
        let now = self.clock.now();
        let (caller_id, via, label) = match &caller.via {
            Via::ApiKey(key) => (key.id.as_str(), UseVia::ApiKey, key.name.as_str()),
            Via::Session { .. } => (
                caller.user.id.as_str(),
                UseVia::Session,
                caller.user.email.as_str(),
            ),
        };
        let hour = now.timestamp().div_euclid(3600);
        let mut pending = self.pending();
        if let Some(p) = pending.get_mut(token_id) {
            if now >= p.last_at {
                p.last_at = now;
                if p.last_by != label {
                    label.clone_into(&mut p.last_by);
                }
            }
            p.add(caller_id, via, hour, 1);
            return;
        }
        let mut p = Pending {
            last_at: now,
            last_by: label.to_owned(),
            counts: Vec::with_capacity(1),
        };
        p.add(caller_id, via, hour, 1);
        pending.insert(token_id.to_owned(), p);
    }

    /// Counts one renewal of a token of `owner_id` (a call to the provider
    /// that renews it), failed or not.
    pub fn note_renewal(&self, owner_id: &str, ok: bool) {
        let hour = self.clock.now().timestamp().div_euclid(3600);
        let mut renewals = self.renewals.lock().unwrap_or_else(|e| e.into_inner());
        renewals
            .entry((owner_id.to_owned(), hour))
            .or_default()
            .add(RenewalCount {
                renewals: 1,
                failures: u64::from(!ok),
            });
    }

    /// Writes the uses counted since the last write, in one transaction:
    /// each token's last use (never moved back, so that replicas agree;
    /// at the same instant the later write wins)
    /// and its buckets, added to what other replicas wrote. Uses of tokens
    /// deleted meanwhile are dropped. When the write fails the uses are
    /// kept for the next one.
    pub async fn write(&self) -> Result<(), DbErr> {
        let batch = std::mem::take(&mut *self.pending());
        let renewals =
            std::mem::take(&mut *self.renewals.lock().unwrap_or_else(|e| e.into_inner()));
        if (!batch.is_empty() || !renewals.is_empty())
            && let Err(e) = self.store(&batch, &renewals).await
        {
            let mut pending = self.pending();
            for (id, p) in batch {
                match pending.get_mut(&id) {
                    Some(newer) => newer.merge(p),
                    None => {
                        pending.insert(id, p);
                    }
                }
            }
            drop(pending);
            let mut kept = self.renewals.lock().unwrap_or_else(|e| e.into_inner());
            for (key, count) in renewals {
                kept.entry(key).or_default().add(count);
            }
            return Err(e);
        }
        self.prune().await
    }

    async fn store(
        &self,
        batch: &HashMap<String, Pending>,
        renewals: &HashMap<(String, i64), RenewalCount>,
    ) -> Result<(), DbErr> {
        // Read before the transaction: on SQLite a transaction that reads
        // before it writes cannot wait for another writer, only fail.
        let ids: Vec<&String> = batch.keys().collect();
        let mut existing: HashSet<String> = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let found: Vec<String> = token::Entity::find()
                .select_only()
                .column(token::Column::Id)
                .filter(token::Column::Id.is_in(chunk.iter().map(|id| id.as_str())))
                .into_tuple()
                .all(&self.db)
                .await?;
            existing.extend(found);
        }
        let txn = self.db.begin().await?;
        let mut counts: BTreeMap<(String, i64, bool), RenewalCount> = BTreeMap::new();
        for ((owner, hour), count) in renewals {
            let day = day_hour(*hour);
            for (at, daily) in [(*hour, false), (day, true)] {
                counts
                    .entry((owner.clone(), at, daily))
                    .or_default()
                    .add(*count);
            }
        }
        let rows: Vec<renewal_count::ActiveModel> = counts
            .into_iter()
            .map(|((owner_id, hour, daily), c)| renewal_count::ActiveModel {
                owner_id: sea_orm::Set(owner_id),
                span: sea_orm::Set(if daily { Span::Day } else { Span::Hour }),
                starts_at: sea_orm::Set(hour_start(hour)),
                renewals: sea_orm::Set(i64::try_from(c.renewals).unwrap_or(i64::MAX)),
                failures: sea_orm::Set(i64::try_from(c.failures).unwrap_or(i64::MAX)),
            })
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let added = |column: renewal_count::Column| {
                Expr::col((renewal_count::Entity, column))
                    .add(Expr::col((Alias::new("excluded"), column)))
            };
            renewal_count::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        renewal_count::Column::OwnerId,
                        renewal_count::Column::Span,
                        renewal_count::Column::StartsAt,
                    ])
                    .value(
                        renewal_count::Column::Renewals,
                        added(renewal_count::Column::Renewals),
                    )
                    .value(
                        renewal_count::Column::Failures,
                        added(renewal_count::Column::Failures),
                    )
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        // Hourly and daily buckets, summed per key.
        let mut buckets: BTreeMap<(String, String, i64, bool), (UseVia, u64)> = BTreeMap::new();
        for (id, p) in batch.iter().filter(|(id, _)| existing.contains(*id)) {
            for c in &p.counts {
                let day = day_hour(c.hour);
                for (hour, daily) in [(c.hour, false), (day, true)] {
                    buckets
                        .entry((id.clone(), c.caller_id.clone(), hour, daily))
                        .or_insert((c.via, 0))
                        .1 += c.uses;
                }
            }
            token::Entity::update_many()
                .col_expr(token::Column::LastUsedAt, Expr::value(p.last_at))
                .col_expr(token::Column::LastUsedBy, Expr::value(p.last_by.clone()))
                .filter(token::Column::Id.eq(id.as_str()))
                .filter(
                    Condition::any()
                        .add(token::Column::LastUsedAt.is_null())
                        .add(token::Column::LastUsedAt.lte(p.last_at)),
                )
                .exec(&txn)
                .await?;
        }
        let rows: Vec<token_use::ActiveModel> = buckets
            .into_iter()
            .map(
                |((token_id, caller_id, hour, daily), (via, uses))| token_use::ActiveModel {
                    token_id: sea_orm::Set(token_id),
                    caller_id: sea_orm::Set(caller_id),
                    via: sea_orm::Set(via),
                    span: sea_orm::Set(if daily { Span::Day } else { Span::Hour }),
                    starts_at: sea_orm::Set(hour_start(hour)),
                    uses: sea_orm::Set(i64::try_from(uses).unwrap_or(i64::MAX)),
                },
            )
            .collect();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
            token_use::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([
                        token_use::Column::TokenId,
                        token_use::Column::CallerId,
                        token_use::Column::Span,
                        token_use::Column::StartsAt,
                    ])
                    .value(
                        token_use::Column::Uses,
                        Expr::col((token_use::Entity, token_use::Column::Uses))
                            .add(Expr::col((Alias::new("excluded"), token_use::Column::Uses))),
                    )
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await
    }

    /// Deletes buckets older than they are kept, at most once an hour.
    async fn prune(&self) -> Result<(), DbErr> {
        let now = self.clock.now();
        let last = self.pruned_at.load(Ordering::Relaxed);
        if now.timestamp().saturating_sub(last) < 3600
            || self
                .pruned_at
                .compare_exchange(last, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        token_use::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(token_use::Column::Span.eq(Span::Hour))
                            .add(token_use::Column::StartsAt.lt(now - Duration::hours(HOURS_KEPT))),
                    )
                    .add(
                        Condition::all()
                            .add(token_use::Column::Span.eq(Span::Day))
                            .add(token_use::Column::StartsAt.lt(now - Duration::days(DAYS_KEPT))),
                    ),
            )
            .exec(&self.db)
            .await?;
        renewal_count::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(renewal_count::Column::Span.eq(Span::Hour))
                            .add(
                                renewal_count::Column::StartsAt
                                    .lt(now - Duration::hours(HOURS_KEPT)),
                            ),
                    )
                    .add(
                        Condition::all()
                            .add(renewal_count::Column::Span.eq(Span::Day))
                            .add(
                                renewal_count::Column::StartsAt.lt(now - Duration::days(DAYS_KEPT)),
                            ),
                    ),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Renewals of the tokens of `owner` (all owners: `None`) per hour and
    /// per day, stored and counted since.
    pub async fn renewals(&self, owner: Option<&str>) -> Result<RenewalHistory, DbErr> {
        let now = self.clock.now();
        let first_hour = first_hour_of_24(now);
        let today = day_of(now);
        let first_day = today - Duration::days(CHART_DAYS - 1);
        let mut query = renewal_count::Entity::find()
            .select_only()
            .column(renewal_count::Column::Span)
            .column(renewal_count::Column::StartsAt)
            .column_as(summed(renewal_count::Column::Renewals), "renewals")
            .column_as(summed(renewal_count::Column::Failures), "failures")
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(renewal_count::Column::Span.eq(Span::Hour))
                            .add(renewal_count::Column::StartsAt.gte(hour_start(first_hour))),
                    )
                    .add(
                        Condition::all()
                            .add(renewal_count::Column::Span.eq(Span::Day))
                            .add(renewal_count::Column::StartsAt.gte(day_start(first_day))),
                    ),
            )
            .group_by(renewal_count::Column::Span)
            .group_by(renewal_count::Column::StartsAt);
        if let Some(owner) = owner {
            query = query.filter(renewal_count::Column::OwnerId.eq(owner));
        }
        let rows: Vec<(Span, DateTime<Utc>, i64, i64)> = query.into_tuple().all(&self.db).await?;
        let mut hourly: BTreeMap<i64, RenewalCount> = (first_hour..first_hour + 24)
            .map(|h| (h, RenewalCount::default()))
            .collect();
        let mut daily: BTreeMap<NaiveDate, RenewalCount> = (0..CHART_DAYS)
            .map(|d| (first_day + Duration::days(d), RenewalCount::default()))
            .collect();
        let count = |r: i64, f: i64| RenewalCount {
            renewals: u64::try_from(r).unwrap_or(0),
            failures: u64::try_from(f).unwrap_or(0),
        };
        for (span, starts_at, r, f) in rows {
            match span {
                Span::Hour => {
                    if let Some(c) = hourly.get_mut(&(starts_at.timestamp().div_euclid(3600))) {
                        c.add(count(r, f));
                    }
                }
                Span::Day => {
                    if let Some(c) = daily.get_mut(&day_of(starts_at)) {
                        c.add(count(r, f));
                    }
                }
            }
        }
        for ((who, hour), c) in self
            .renewals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if owner.is_some_and(|o| o != who) {
                continue;
            }
            if let Some(h) = hourly.get_mut(hour) {
                h.add(*c);
            }
            if let Some(d) = daily.get_mut(&day_of(hour_start(*hour))) {
                d.add(*c);
            }
        }
        Ok(RenewalHistory {
            hourly: hourly
                .into_iter()
                .map(|(h, c)| (hour_start(h), c))
                .collect(),
            daily: daily.into_iter().collect(),
        })
    }

    /// Writes the counted uses every [`WRITE_USES_EVERY`], until aborted.
    pub fn write_regularly(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let usage = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WRITE_USES_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(e) = usage.write().await {
                    tracing::warn!(error = %e, "could not store how tokens were used");
                }
            }
        })
    }

    /// The usage of `tokens`, by id: stored and counted since.
    pub async fn of(
        &self,
        db: &impl ConnectionTrait,
        tokens: &[token::Model],
    ) -> Result<HashMap<String, TokenUsage>, DbErr> {
        let now = self.clock.now();
        let first_hour = first_hour_of_24(now);
        let mut usage: HashMap<String, TokenUsage> = tokens
            .iter()
            .map(|t| {
                (
                    t.id.clone(),
                    TokenUsage {
                        last_used_at: t.last_used_at,
                        last_used_by: t.last_used_by.clone(),
                        uses_24h: 0,
                    },
                )
            })
            .collect();
        let ids: Vec<&str> = tokens.iter().map(|t| t.id.as_str()).collect();
        for chunk in ids.chunks(500) {
            let sums: Vec<(String, i64)> = token_use::Entity::find()
                .select_only()
                .column(token_use::Column::TokenId)
                .column_as(summed(token_use::Column::Uses), "uses")
                .filter(token_use::Column::TokenId.is_in(chunk.iter().copied()))
                .filter(token_use::Column::Span.eq(Span::Hour))
                .filter(token_use::Column::StartsAt.gte(hour_start(first_hour)))
                .group_by(token_use::Column::TokenId)
                .into_tuple()
                .all(db)
                .await?;
            for (id, uses) in sums {
                if let Some(u) = usage.get_mut(&id) {
                    u.uses_24h = u64::try_from(uses).unwrap_or(0);
                }
            }
        }
        let pending = self.pending();
        for (id, u) in &mut usage {
            let Some(p) = pending.get(id) else { continue };
            if u.last_used_at.is_none_or(|stored| p.last_at >= stored) {
                u.last_used_at = Some(p.last_at);
                u.last_used_by = Some(p.last_by.clone());
            }
            u.uses_24h += p
                .counts
                .iter()
                .filter(|c| c.hour >= first_hour)
                .map(|c| c.uses)
                .sum::<u64>();
        }
        Ok(usage)
    }

    /// Hand-outs in the last 24 hours to each of `callers` (API key or
    /// user ids), over all tokens: stored and counted since.
    pub async fn by_callers_24h(&self, callers: &[&str]) -> Result<HashMap<String, u64>, DbErr> {
        let first_hour = first_hour_of_24(self.clock.now());
        let mut uses: HashMap<String, u64> = HashMap::new();
        for chunk in callers.chunks(500) {
            let sums: Vec<(String, i64)> = token_use::Entity::find()
                .select_only()
                .column(token_use::Column::CallerId)
                .column_as(summed(token_use::Column::Uses), "uses")
                .filter(token_use::Column::CallerId.is_in(chunk.iter().copied()))
                .filter(token_use::Column::Span.eq(Span::Hour))
                .filter(token_use::Column::StartsAt.gte(hour_start(first_hour)))
                .group_by(token_use::Column::CallerId)
                .into_tuple()
                .all(&self.db)
                .await?;
            for (id, n) in sums {
                *uses.entry(id).or_default() += u64::try_from(n).unwrap_or(0);
            }
        }
        for p in self.pending().values() {
            for c in p.counts.iter().filter(|c| c.hour >= first_hour) {
                if callers.contains(&c.caller_id.as_str()) {
                    *uses.entry(c.caller_id.clone()).or_default() += c.uses;
                }
            }
        }
        Ok(uses)
    }

    /// Fills in each key's hand-outs of the last 24 hours.
    pub async fn count_key_uses(
        &self,
        keys: &mut [app::accounts::ApiKeyView],
    ) -> Result<(), DbErr> {
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        let uses = self.by_callers_24h(&ids).await?;
        for k in keys {
            k.access_tokens_24h = uses.get(&k.id).copied().unwrap_or(0);
        }
        Ok(())
    }

    /// Uses of token `id` per day over the last [`CHART_DAYS`] days, oldest
    /// first, today last; days without use count zero.
    pub async fn daily(&self, id: &str) -> Result<Vec<(NaiveDate, u64)>, DbErr> {
        let today = day_of(self.clock.now());
        let first = today - Duration::days(CHART_DAYS - 1);
        let rows: Vec<(DateTime<Utc>, i64)> = token_use::Entity::find()
            .select_only()
            .column(token_use::Column::StartsAt)
            .column_as(summed(token_use::Column::Uses), "uses")
            .filter(token_use::Column::TokenId.eq(id))
            .filter(token_use::Column::Span.eq(Span::Day))
            .filter(token_use::Column::StartsAt.gte(day_start(first)))
            .group_by(token_use::Column::StartsAt)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut days: BTreeMap<NaiveDate, u64> = (0..CHART_DAYS)
            .map(|d| (first + Duration::days(d), 0))
            .collect();
        for (starts_at, uses) in rows {
            if let Some(n) = days.get_mut(&day_of(starts_at)) {
                *n += u64::try_from(uses).unwrap_or(0);
            }
        }
        if let Some(p) = self.pending().get(id) {
            for c in &p.counts {
                if let Some(n) = days.get_mut(&day_of(hour_start(c.hour))) {
                    *n += c.uses;
                }
            }
        }
        Ok(days.into_iter().collect())
    }
}
