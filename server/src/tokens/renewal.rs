//! Renewal: the one path by which Quiver sends a refresh token to a
//! provider, or asks a provider again for a token it already holds
//! (Request again and Reset Client Credentials). Every caller goes through
//! it: the access-token endpoint, the scheduler, Refresh, Request and Reset
//! in the UI and the REST API, and scheduled jobs (imported tokens are
//! renewed by the scheduler).
//!
//! Providers that rotate refresh tokens with reuse detection (RFC 9700
//! §4.14.2: oidc-provider, Okta, Auth0, Entra ID for SPAs, Salesforce with
//! rotation on) revoke the whole grant when they see a refresh token a
//! second time. So a renewal:
//!
//! 1. joins a renewal of the same token already in flight in this process
//!    instead of starting another ([`Flights`]); a Request or Reset, which
//!    must make its own call, waits for that one to land first;
//! 2. claims the token in the database with a lease naming this claim (a
//!    random [`Claim`] id, never the replica), lasting longer than every
//!    provider call it may make plus a margin. While another claim holds
//!    the token (another replica), it waits for that renewal's result,
//!    bounded by [`WAIT_FOR_OTHER`], and answers with it;
//! 3. reads the row again once claimed, and renews from the refresh token
//!    stored now;
//! 4. stores the result, a rotated refresh token included, in the statement
//!    that releases the claim, and only while the claim is still its own;
//!    every release names its claim.
//!
//! One window remains: the provider answered and the process died before
//! its commit. The rotated refresh token is then lost with the process; the
//! lease lapses, and the next renewal sends the refresh token still stored.
//! A provider that did not receive the first request, or that allows a
//! short reuse interval (Okta, Auth0), answers it; one with strict reuse
//! detection refuses with `invalid_grant`, and the token is marked for
//! re-authorization (the grant was already lost with the answer). Quiver
//! logs a lapsed claim when it takes the token over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use app::error::AppError;
use app::tokens::{ResetInput, TokenError, TokenInput};
use chrono::{DateTime, Duration, Utc};
use sea_orm::QueryTrait as _;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter,
    TryIntoModel,
};
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::engine::{Mode, RequestValues, TokenEngine, token_error};
use super::{Flow, TokenStatus, db_error, open_secret};
use crate::audit::Actor;
use crate::db::entity::token;
use crate::events::EventKind;
use crate::oauth::grant::GrantError;
use crate::oauth::token_response::{ProviderFault, TokenSet};
use crate::providers::OpenedProvider;
use crate::schedule::due;
use crate::secret::SecretString;

/// Added to the longest time a renewal's provider calls may take to make
/// its lease: storing the outcome fits in it with room to spare.
pub const LEASE_MARGIN: Duration = Duration::seconds(15);
/// Longest a caller waits for another replica's renewal of the same token.
pub const WAIT_FOR_OTHER: StdDuration = StdDuration::from_secs(30);
/// How long a program asking for an access token waits for another
/// replica's renewal while the stored access token is still valid; then it
/// is served that one.
pub const FRESH_PATIENCE: StdDuration = StdDuration::from_secs(3);
/// How often a waiting caller looks at the row again.
const POLL: StdDuration = StdDuration::from_millis(50);
/// A failure recorded this recently is reported instead of retried.
pub const FAILURE_REUSE: Duration = Duration::seconds(2);

/// One claim on a token's renewal; the lease names its random id, so that
/// no other caller, in this process or another, mistakes it for its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim(String);

impl Claim {
    /// A new claim.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl Default for Claim {
    fn default() -> Self {
        Self::new()
    }
}

/// What a renewal does at the provider.
#[derive(Debug, Clone)]
pub enum Renewal {
    /// The refresh_token grant (Password falls back to its saved
    /// credentials when the refresh token is refused); Client Credentials
    /// and Password without a refresh token request anew.
    Refresh,
    /// Request again: Client Credentials and Password obtain a new token
    /// with their own grant.
    Request,
    /// Reset Client Credentials: revoke the current token, then obtain a
    /// new one, with the given overrides applied first.
    Reset(ResetInput),
}

impl Renewal {
    /// Whether a caller may be answered by another renewal of the same
    /// token in flight: a refresh wants a renewed token, whoever renewed it;
    /// a request or reset asks for a call of its own.
    fn joinable(&self) -> bool {
        matches!(self, Self::Refresh)
    }

    /// The audit action.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Refresh => "token.refresh",
            Self::Request => "token.request",
            Self::Reset(_) => "token.reset",
        }
    }

    /// Most provider calls the renewal makes, each within the provider's
    /// timeout: a refresh and the Password fallback; two revocations and a
    /// request.
    fn calls(&self) -> i32 {
        match self {
            Self::Refresh => 2,
            Self::Request => 1,
            Self::Reset(_) => 3,
        }
    }
}

/// When a claimed renewal turns out not to be needed: a result another
/// caller stored meanwhile answers it.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// An access token to hand out: answered while the token is fresh, by
    /// any renewal stored since `seen` (the version the caller read), by a
    /// failure stored moments ago, and, after [`FRESH_PATIENCE`] waiting
    /// for another replica, by the stored access token while it is valid.
    Fresh {
        /// `last_refreshed_at` as the caller read it.
        seen: Option<DateTime<Utc>>,
    },
    /// A renewal someone asked for (Refresh, a job): answered by any
    /// renewal stored since the caller read the token, or by a failure
    /// stored since it asked.
    Since {
        /// `last_refreshed_at` as the caller read it.
        seen: Option<DateTime<Utc>>,
        /// When the caller asked.
        asked: DateTime<Utc>,
    },
    /// A call of its own (Request again, Reset).
    Always,
}

/// The outcome of a renewal.
#[derive(Debug, Clone)]
pub struct Renewed {
    /// The token as stored afterwards.
    pub model: token::Model,
    /// The provider's refusal or silence, when the renewal failed.
    pub failure: Option<TokenError>,
    /// For the audit log.
    pub detail: Option<String>,
    /// Whether this renewal called the provider (false: a result stored by
    /// another caller answered it).
    pub called: bool,
}

/// What a renewal in flight lands with; `None` when its leader could not
/// claim the token, so that those waiting on it try again.
type Landing = Option<Result<Renewed, AppError>>;

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
    id: String,
    serial: u64,
    done: watch::Sender<Option<Landing>>,
}

enum Entry {
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
    fn enter(self: &Arc<Self>, id: &str, joinable: bool) -> Entry {
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
    fn subscribe(&self) -> watch::Receiver<Option<Landing>> {
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
async fn landing(mut done: watch::Receiver<Option<Landing>>) -> Landing {
    match done.wait_for(Option::is_some).await {
        Ok(value) => value.clone().flatten(),
        Err(_) => None,
    }
}

impl Renewed {
    fn answered_by(model: token::Model) -> Self {
        let failure = model
            .last_error
            .as_deref()
            .filter(|_| model.status == TokenStatus::Failed)
            .and_then(|j| serde_json::from_str(j).ok());
        Self {
            model,
            failure,
            detail: Some("answered by a renewal stored meanwhile".into()),
            called: false,
        }
    }
}

impl TokenEngine {
    /// How long a claim on a token of `provider` lasts: every provider
    /// call of `renewal` within the provider's timeout, plus a margin.
    pub fn lease_for(provider: &OpenedProvider, renewal: &Renewal) -> Duration {
        Duration::milliseconds(i64::from(provider.model.timeout_ms.max(0))) * renewal.calls()
            + LEASE_MARGIN
    }

    pub(crate) async fn reload(&self, id: &str) -> Result<token::Model, AppError> {
        token::Entity::find_by_id(id.to_owned())
            .one(&self.tokens.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::NotFound("the token".into()))
    }

    /// Claims the token for `claim` unless another claim's lease is live.
    async fn claim(&self, id: &str, claim: &Claim, lease: Duration) -> Result<bool, AppError> {
        let now = self.tokens.clock.now();
        let statement = token::Entity::update_many()
            .col_expr(token::Column::LeaseOwner, Expr::value(claim.0.clone()))
            .col_expr(token::Column::LeaseUntil, Expr::value(now + lease))
            .filter(token::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(token::Column::LeaseUntil.is_null())
                    .add(token::Column::LeaseUntil.lt(now)),
            )
            .build(self.tokens.db.get_database_backend());
        let written = self
            .tokens
            .writes
            .execute(statement)
            .await
            .map_err(db_error)?;
        Ok(written.rows_affected == 1)
    }

    /// Claims, for `claim`, those of `ids` that are still due and free, in
    /// one statement, and answers the claimed rows as they are now.
    pub(crate) async fn claim_due(
        &self,
        ids: &[String],
        claim: &Claim,
        lease: Duration,
    ) -> Result<Vec<token::Model>, AppError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.tokens.clock.now();
        let mut statement = token::Entity::update_many()
            .col_expr(token::Column::LeaseOwner, Expr::value(claim.0.clone()))
            .col_expr(token::Column::LeaseUntil, Expr::value(now + lease))
            .filter(token::Column::Id.is_in(ids.iter().cloned()))
            .filter(token::Column::AutoRefresh.eq(true))
            .filter(token::Column::RefreshDueAt.lte(now))
            .filter(token::Column::Status.ne(TokenStatus::PendingAuthorization))
            .filter(
                Condition::any()
                    .add(token::Column::LeaseUntil.is_null())
                    .add(token::Column::LeaseUntil.lt(now)),
            )
            .into_query();
        statement.returning_all();
        let statement = self.tokens.db.get_database_backend().build(&statement);
        let rows = self
            .tokens
            .writes
            .returning_rows(statement)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| token::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)
    }

    /// Gives up `claim` on the token, if it still holds it.
    pub(crate) async fn release(&self, id: &str, claim: &Claim) {
        let statement = token::Entity::update_many()
            .col_expr(
                token::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                token::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(token::Column::Id.eq(id))
            .filter(token::Column::LeaseOwner.eq(claim.0.clone()))
            .build(self.tokens.db.get_database_backend());
        if let Err(e) = self.tokens.writes.execute(statement).await {
            tracing::warn!(token = id, error = %e, "cannot release a renewal claim; it lapses with its lease");
        }
    }

    /// Renews `t` (as the caller read it), joining a renewal of the same
    /// token in flight here. Answers the outcome and whether it came from
    /// a renewal another caller started.
    pub(crate) async fn renew(
        &self,
        t: &token::Model,
        renewal: Renewal,
        need: Need,
        actor: Actor,
        addr: Option<String>,
        mode: Mode,
    ) -> Result<(Renewed, bool), AppError> {
        let joinable = renewal.joinable();
        loop {
            match self.flights.enter(&t.id, joinable) {
                Entry::Lead(lead) => {
                    let done = lead.subscribe();
                    let engine = self.clone();
                    let (id, renewal, actor, addr) =
                        (t.id.clone(), renewal.clone(), actor.clone(), addr.clone());
                    // The renewal runs to its end even when this caller
                    // goes away (a closed connection): a refresh token sent
                    // is a refresh token whose answer must be stored.
                    tokio::spawn(async move {
                        let outcome =
                            Box::pin(engine.lead(&id, renewal, need, actor, addr, mode)).await;
                        lead.land(Some(outcome));
                    });
                    match landing(done).await {
                        Some(outcome) => return outcome.map(|r| (r, false)),
                        None => continue,
                    }
                }
                Entry::Join {
                    done,
                    joinable: theirs,
                } => match landing(done).await {
                    Some(Ok(r)) if joinable => return Ok((r, true)),
                    Some(Err(e)) if joinable && theirs => return Err(e),
                    // A request or reset makes its own call once the
                    // renewal in flight has landed.
                    _ => continue,
                },
            }
        }
    }

    /// Whether a result stored by another caller answers `need`.
    fn answered(&self, t: &token::Model, need: Need, waited: StdDuration) -> Option<Renewed> {
        let now = self.tokens.clock.now();
        match need {
            Need::Fresh { seen } => {
                let renewed_since = t.last_refreshed_at != seen;
                if self.is_fresh(t) || (renewed_since && self.just_renewed(t)) {
                    return Some(Renewed::answered_by(t.clone()));
                }
                // A refresh failed moments ago: report that failure rather
                // than send the provider one more request per caller.
                if t.status == TokenStatus::Failed
                    && now - t.updated_at < FAILURE_REUSE
                    && t.last_error.is_some()
                {
                    return Some(Renewed::answered_by(t.clone()));
                }
                if waited >= FRESH_PATIENCE
                    && t.access_token.is_some()
                    && t.expires_at.is_some_and(|e| e > now)
                {
                    return Some(Renewed::answered_by(t.clone()));
                }
                None
            }
            Need::Since { seen, asked } => {
                if t.last_refreshed_at != seen && t.status == TokenStatus::Active {
                    return Some(Renewed::answered_by(t.clone()));
                }
                if t.last_refreshed_at == seen && t.updated_at > asked && t.last_error.is_some() {
                    let mut answer = Renewed::answered_by(t.clone());
                    answer.failure = t
                        .last_error
                        .as_deref()
                        .and_then(|j| serde_json::from_str(j).ok());
                    return Some(answer);
                }
                None
            }
            Need::Always => None,
        }
    }

    /// Claims the token and renews it: the work of the caller that leads
    /// the flight.
    async fn lead(
        &self,
        id: &str,
        renewal: Renewal,
        need: Need,
        actor: Actor,
        addr: Option<String>,
        mode: Mode,
    ) -> Result<Renewed, AppError> {
        let t = self.reload(id).await?;
        let provider = self.providers.open(&t.provider_id).await?;
        let lease = Self::lease_for(&provider, &renewal);
        let claim = Claim::new();
        let started = tokio::time::Instant::now();
        loop {
            let before = self.tokens.clock.now();
            if self.claim(id, &claim, lease).await? {
                if t.lease_until.is_some_and(|until| until < before) {
                    // The claim before this one lapsed without storing a
                    // result: its process died or lost the database. If the
                    // provider answered it, the refresh token stored may be
                    // spent already.
                    tracing::warn!(
                        token = id,
                        "a renewal claimed earlier lapsed without storing its result; renewing from the refresh token stored"
                    );
                }
                break;
            }
            // Another claim holds the token: another replica is renewing
            // it. Its result answers this caller when it lands.
            let now = self.reload(id).await?;
            if let Some(answer) = self.answered(&now, need, started.elapsed()) {
                return Ok(answer);
            }
            if started.elapsed() >= WAIT_FOR_OTHER {
                return Err(AppError::ProviderUnavailable {
                    message: "another Quiver replica is still renewing this token".into(),
                    retry_after_seconds: super::access::DEFAULT_RETRY_SECONDS,
                });
            }
            tokio::time::sleep(POLL).await;
        }
        let result = async {
            let t = self.reload(id).await?;
            if let Some(answer) = self.answered(&t, need, StdDuration::ZERO) {
                return Ok(answer);
            }
            self.renew_claimed(t, &claim, renewal, actor, addr, mode, &provider, None)
                .await
        }
        .await;
        // Storing released the claim; an answer without a call, or a
        // refusal before storing, did not.
        if !matches!(&result, Ok(r) if r.called) {
            self.release(id, &claim).await;
        }
        result
    }

    /// Renews the claimed tokens of one scheduler round: `leads` are this
    /// process's flights for `ids`, claimed together under `claim`. Each
    /// renewal runs in `tasks`, answering whether it renewed.
    pub(crate) async fn renew_due(
        &self,
        provider: &Arc<OpenedProvider>,
        leads: Vec<(Lead, OwnedSemaphorePermit)>,
        tasks: &mut tokio::task::JoinSet<bool>,
    ) -> usize {
        let ids: Vec<String> = leads.iter().map(|(l, _)| l.id.clone()).collect();
        let claim = Claim::new();
        let lease = Self::lease_for(provider, &Renewal::Refresh);
        let claimed = match self.claim_due(&ids, &claim, lease).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "the scheduler could not claim due tokens");
                Vec::new()
            }
        };
        let mut rows: HashMap<String, token::Model> =
            claimed.into_iter().map(|t| (t.id.clone(), t)).collect();
        let count = rows.len();
        for (lead, slot) in leads {
            let Some(t) = rows.remove(&lead.id) else {
                // No longer due, or claimed elsewhere: whoever joined
                // meanwhile tries for themselves.
                lead.land(None);
                continue;
            };
            let (engine, provider, claim) = (self.clone(), provider.clone(), claim.clone());
            tasks.spawn(async move {
                let id = t.id.clone();
                // Boxed: the renewal's state is large, and is then moved
                // once rather than with every hand-over.
                let outcome = Box::pin(engine.renew_claimed(
                    t,
                    &claim,
                    Renewal::Refresh,
                    Actor::System("scheduler".into()),
                    None,
                    Mode::Background,
                    &provider,
                    Some(slot),
                ))
                .await;
                if !matches!(&outcome, Ok(r) if r.called) {
                    engine.release(&id, &claim).await;
                }
                let renewed = matches!(&outcome, Ok(r) if r.failure.is_none());
                lead.land(Some(outcome));
                renewed
            });
        }
        count
    }

    /// Renews `t`, whose row was read after `claim` was taken, at the
    /// provider, and stores the outcome in the update that releases the
    /// claim. `slot`, a place in the provider's concurrency limit, is given
    /// back as soon as the provider has answered.
    #[allow(clippy::too_many_arguments)]
    async fn renew_claimed(
        &self,
        t: token::Model,
        claim: &Claim,
        renewal: Renewal,
        actor: Actor,
        addr: Option<String>,
        mode: Mode,
        provider: &OpenedProvider,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<Renewed, AppError> {
        let started = std::time::Instant::now();
        let action = renewal.action();
        let flow = t.flow;
        let mut t = t;
        let mut revocation = None;
        let outcome = match renewal {
            Renewal::Refresh => {
                let refresh_token = open_secret(
                    &self.tokens.sealer,
                    &t.id,
                    "refresh_token",
                    &t.refresh_token,
                )?;
                match refresh_token {
                    Some(refresh) => self.refresh_grant(&t, provider, flow, refresh).await,
                    None if !flow.is_interactive() => {
                        self.obtain(&t, provider, &Self::values(&t)).await
                    }
                    None => {
                        if mode == Mode::Background {
                            self.needs_person(&t, claim).await?;
                        }
                        return self
                            .audited(
                                actor,
                                &addr,
                                action,
                                Some(t.id.clone()),
                                Err(AppError::NeedsReauthorization {
                                    auth_link: format!("/api/v1/tokens/{}/auth-link", t.id),
                                }),
                                Some("no refresh token".into()),
                            )
                            .await;
                    }
                }
            }
            Renewal::Request => self.obtain(&t, provider, &Self::values(&t)).await,
            Renewal::Reset(overrides) => {
                if overrides.scope.is_some()
                    || overrides.resource.is_some()
                    || overrides.additional_values.is_some()
                {
                    let input = TokenInput {
                        scope: overrides.scope.clone(),
                        resource: overrides.resource.clone(),
                        additional_values: overrides.additional_values.clone(),
                        ..Default::default()
                    };
                    let mut active: token::ActiveModel = t.clone().into();
                    self.apply_settings(
                        &t.id,
                        &mut active,
                        provider,
                        Flow::ClientCredentials,
                        &input,
                        false,
                    )?;
                    t = active.update(&self.tokens.db).await.map_err(db_error)?;
                }
                let (done, error) = self.revoke_at_provider(&t, provider).await;
                revocation = Some(format!(
                    "revocation: {done}{}",
                    error.map(|e| format!(" ({e})")).unwrap_or_default()
                ));
                self.obtain(&t, provider, &Self::values(&t)).await
            }
        };
        // The provider is done with: the next renewal may call it while
        // this one is stored.
        drop(slot);
        let failed = outcome.as_ref().err().map(|e| format!("failed: {e}"));
        let failure = outcome.as_ref().err().map(token_error);
        let stored = match outcome {
            Ok(set) => self.store_success(&t, provider, set, claim).await,
            Err(e) => self.store_failure(&t, &e, mode, claim).await,
        };
        if action == "token.refresh" {
            let trigger = match mode {
                Mode::Asked => "asked",
                Mode::Background => "background",
            };
            self.metrics.refresh(
                &provider.model.name,
                stored.is_ok() && failure.is_none(),
                trigger,
                started.elapsed(),
            );
        }
        let detail = match (failed, revocation) {
            (Some(f), Some(r)) => Some(format!("{f}; {r}")),
            (f, r) => f.or(r),
        };
        let model = self
            .audited(
                actor,
                &addr,
                action,
                Some(t.id.clone()),
                stored,
                detail.clone(),
            )
            .await?;
        Ok(Renewed {
            model,
            failure,
            detail,
            called: true,
        })
    }

    /// The refresh_token grant with the refresh token stored now. Scope is
    /// not sent again: the grant keeps it. Password falls back to its saved
    /// credentials when the refresh token is refused.
    async fn refresh_grant(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        flow: Flow,
        refresh: SecretString,
    ) -> Result<TokenSet, GrantError> {
        let values = Self::values(t);
        let grant = vec![
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), refresh.expose().to_owned()),
        ];
        let refresh_values = RequestValues {
            scope: None,
            resource: values.resource.clone(),
            additional: values.additional.clone(),
        };
        match self.call(t, provider, grant, &refresh_values, true).await {
            Err(GrantError::Provider(ProviderFault::Refused { ref error, .. }))
                if error == "invalid_grant" && flow == Flow::Password =>
            {
                self.obtain(t, provider, &values).await
            }
            other => other,
        }
    }

    /// Obtains a token with the flow's own grant (not a refresh).
    pub(super) async fn obtain(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        values: &RequestValues,
    ) -> Result<TokenSet, GrantError> {
        let grant = match t.flow {
            Flow::ClientCredentials => {
                vec![("grant_type".into(), "client_credentials".into())]
            }
            Flow::Password => {
                let password = open_secret(&self.tokens.sealer, &t.id, "password", &t.password)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| SecretString::new(""));
                vec![
                    ("grant_type".into(), "password".into()),
                    ("username".into(), t.username.clone().unwrap_or_default()),
                    ("password".into(), password.expose().to_owned()),
                ]
            }
            Flow::AuthorizationCode | Flow::OidcHybrid => {
                return Err(GrantError::ClientAuth(
                    crate::oauth::client_auth::ClientAuthError::Sign(
                        "this flow is authorized in a browser, with the token's auth link".into(),
                    ),
                ));
            }
        };
        self.call(t, provider, grant, values, false).await
    }

    /// Stores a successful response and releases `claim`, in one update.
    async fn store_success(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        set: TokenSet,
        claim: &Claim,
    ) -> Result<token::Model, AppError> {
        let active = self.success_row(t, provider, set, &Self::values(t));
        let recovered = t.status == TokenStatus::Failed && t.failure_count > 0;
        let stored = self.store_claimed(t, active, claim).await?;
        if recovered && stored.status == TokenStatus::Active {
            self.events
                .raise(
                    EventKind::TokenRecovered,
                    Some(&t.id),
                    None,
                    format!("Token {} works again", t.name),
                    serde_json::json!({"token_name": t.name}),
                )
                .await;
        }
        Ok(stored)
    }

    /// The row after a successful response: new tokens (a rotated refresh
    /// token replaces the old; without one the old is kept), expiry, status
    /// `active`, the next due time, and no lease.
    pub(super) fn success_row(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        set: TokenSet,
        values: &RequestValues,
    ) -> token::ActiveModel {
        let now = self.tokens.clock.now();
        let lifetime = set.expires_in.or_else(|| {
            provider
                .model
                .default_lifetime_secs
                .map(chrono::Duration::seconds)
        });
        let mut active: token::ActiveModel = t.clone().into();
        active.access_token = Set(Some(self.seal(
            &t.id,
            "access_token",
            set.access_token.expose(),
        )));
        if let Some(refresh) = &set.refresh_token {
            active.refresh_token = Set(Some(self.seal(&t.id, "refresh_token", refresh.expose())));
        }
        active.token_type = Set(Some(set.token_type.clone()));
        active.expires_at = Set(lifetime.map(|l| now + l));
        active.granted_scope = Set(set.scope.clone().or_else(|| values.scope.clone()));
        active.status = Set(TokenStatus::Active);
        active.last_error = Set(None);
        active.failure_count = Set(0);
        active.lease_owner = Set(None);
        active.lease_until = Set(None);
        active.last_refreshed_at = Set(Some(now));
        active.updated_at = Set(now);
        let mut after = t.clone();
        after.expires_at = lifetime.map(|l| now + l);
        after.last_refreshed_at = Some(now);
        after.status = TokenStatus::Active.to_owned();
        after.access_token = Some(String::new());
        if set.refresh_token.is_some() {
            after.refresh_token = Some(String::new());
        }
        active.refresh_due_at = Set(due::next_due(&after, self.config.idle_refresh_interval));
        active
    }

    /// Writes `active` and releases the claim in one statement, only while
    /// `claim` still holds the token. When it no longer does (a new
    /// authorization, an import or a deletion replaced the row), what is
    /// stored stays and is answered.
    async fn store_claimed(
        &self,
        t: &token::Model,
        active: token::ActiveModel,
        claim: &Claim,
    ) -> Result<token::Model, AppError> {
        let statement = token::Entity::update_many()
            .set(active.clone())
            .filter(token::Column::Id.eq(t.id.clone()))
            .filter(token::Column::LeaseOwner.eq(claim.0.clone()))
            .build(self.tokens.db.get_database_backend());
        let written = self
            .tokens
            .writes
            .execute(statement)
            .await
            .map_err(db_error)?;
        if written.rows_affected == 1 {
            return active.try_into_model().map_err(db_error);
        }
        tracing::warn!(
            token = %t.id,
            "the token was replaced while the provider answered this renewal; keeping what is stored"
        );
        self.reload(&t.id).await
    }

    /// Records a failure; the stored access and refresh tokens stay. The
    /// next background attempt waits (exponential backoff with jitter, at
    /// least the provider's `Retry-After`). A failure asked for by someone
    /// marks the token `failed` at once; background failures do so after
    /// `QUIVER_REFRESH_MAX_FAILURES` in a row, or at once when a person
    /// must authorize again. Entering `failed` raises an event.
    async fn store_failure(
        &self,
        t: &token::Model,
        error: &GrantError,
        mode: Mode,
        claim: &Claim,
    ) -> Result<token::Model, AppError> {
        let now = self.tokens.clock.now();
        let stored_error = token_error(error);
        let failures = u32::try_from(t.failure_count)
            .unwrap_or(0)
            .saturating_add(1);
        let interactive = t.flow.is_interactive();
        let needs_person = interactive && stored_error.error == "invalid_grant";
        let give_up =
            mode == Mode::Asked || needs_person || failures >= self.config.refresh_max_failures;
        let mut active: token::ActiveModel = t.clone().into();
        if give_up {
            active.status = Set(TokenStatus::Failed);
        }
        active.last_error = Set(Some(
            serde_json::to_string(&stored_error).unwrap_or_default(),
        ));
        active.failure_count = Set(i32::try_from(failures).unwrap_or(i32::MAX));
        active.refresh_due_at = Set(if needs_person || !t.auto_refresh {
            None
        } else {
            Some(
                now + due::backoff(
                    failures,
                    stored_error.retry_after_seconds,
                    &mut rand::thread_rng(),
                ),
            )
        });
        active.lease_owner = Set(None);
        active.lease_until = Set(None);
        active.updated_at = Set(now);
        let stored = self.store_claimed(t, active, claim).await?;
        if give_up && t.status != TokenStatus::Failed && stored.status == TokenStatus::Failed {
            let (kind, message) = if needs_person {
                (
                    EventKind::ReauthorizationNeeded,
                    format!("Token {} must be authorized again", t.name),
                )
            } else {
                (
                    EventKind::TokenFailed,
                    format!("Token {} could not be renewed", t.name),
                )
            };
            self.events
                .raise(
                    kind,
                    Some(&t.id),
                    None,
                    message,
                    serde_json::json!({
                        "token_name": t.name,
                        "failures": failures,
                        "error": stored_error,
                    }),
                )
                .await;
        }
        Ok(stored)
    }

    /// The scheduler found an interactive token it cannot renew: it stops
    /// trying and says that a person must authorize it again.
    async fn needs_person(&self, t: &token::Model, claim: &Claim) -> Result<(), AppError> {
        let mut active: token::ActiveModel = t.clone().into();
        active.refresh_due_at = Set(None);
        active.lease_owner = Set(None);
        active.lease_until = Set(None);
        self.store_claimed(t, active, claim).await?;
        self.events
            .raise(
                EventKind::ReauthorizationNeeded,
                Some(&t.id),
                None,
                format!("Token {} must be authorized again", t.name),
                serde_json::json!({"token_name": t.name, "reason": "no refresh token"}),
            )
            .await;
        Ok(())
    }
}

/// Why a token was not renewed, for the caller: its stored error (or
/// `error`, the one just met), as the one error the edges map to HTTP.
pub(crate) fn refusal(t: &token::Model, error: Option<&TokenError>) -> AppError {
    let stored: Option<TokenError> = t
        .last_error
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    let interactive = t.flow.is_interactive();
    match error.cloned().or(stored) {
        Some(e) if e.error == "invalid_grant" && interactive => AppError::NeedsReauthorization {
            auth_link: format!("/api/v1/tokens/{}/auth-link", t.id),
        },
        Some(e)
            if matches!(
                e.error.as_str(),
                "server_error"
                    | "temporarily_unavailable"
                    | "timeout"
                    | "unreachable"
                    | "invalid_response"
            ) || e.http_status.is_some_and(|s| s >= 500) =>
        {
            AppError::ProviderUnavailable {
                retry_after_seconds: e
                    .retry_after_seconds
                    .unwrap_or(super::access::DEFAULT_RETRY_SECONDS),
                message: e.error_description.unwrap_or(e.error),
            }
        }
        Some(e) => AppError::ProviderRefused {
            message: format!(
                "{}{}",
                e.error,
                e.error_description
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        },
        None => AppError::ProviderUnavailable {
            message: "the token could not be renewed".into(),
            retry_after_seconds: super::access::DEFAULT_RETRY_SECONDS,
        },
    }
}
