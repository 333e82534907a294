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
//!
//! The in-process flights are in `flight`, the database claim in `claim`,
//! the provider call in `call`, storing the outcome in `store`, and what a
//! renewal decides (answered by another's result, the caller's error, what
//! a failure records, when the token is due next) in `decide` and `due`.

mod call;
mod claim;
mod decide;
pub mod due;
mod flight;
mod store;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use app::error::AppError;
use app::tokens::{ResetInput, TokenError};
use chrono::{DateTime, Duration, Utc};
use tokio::sync::OwnedSemaphorePermit;

use super::TokenStatus;
use super::engine::{Mode, TokenEngine};
use crate::audit::Actor;
use crate::db::entity::token;
use crate::providers::OpenedProvider;

pub use claim::Claim;
pub(crate) use decide::refusal;
use flight::{Entry, landing};
pub use flight::{Flights, Lead};

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
}
