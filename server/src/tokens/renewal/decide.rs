//! What a renewal decides without calling anyone: whether a result
//! another caller stored answers it, the error a caller is given, and what
//! a failure records (when the token is due is in `due`).

use std::time::Duration as StdDuration;

use app::error::AppError;
use app::tokens::TokenError;
use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::ActiveValue::Set;

use super::{FAILURE_REUSE, FRESH_PATIENCE, Need, Renewed, due};
use crate::db::entity::token;
use crate::tokens::TokenStatus;
use crate::tokens::engine::{Mode, TokenEngine};

impl TokenEngine {
    /// Whether a result stored by another caller answers `need`.
    pub(super) fn answered(
        &self,
        t: &token::Model,
        need: Need,
        waited: StdDuration,
    ) -> Option<Renewed> {
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
}

/// Why a token was not renewed, for the caller: its stored error (or
/// `error`, the one just met), as the one error the edges map to HTTP.
pub(crate) fn refusal(t: &token::Model, error: Option<&TokenError>) -> AppError {
    let stored: Option<TokenError> = t
        .last_error
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    let interactive = t.flow.needs_person();
    match error.cloned().or(stored) {
        Some(e) if e.error == "invalid_grant" && interactive => AppError::NeedsReauthorization {
            auth_link: crate::tokens::reauthorization_link(t),
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
                    .unwrap_or(crate::tokens::access::DEFAULT_RETRY_SECONDS),
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
            retry_after_seconds: crate::tokens::access::DEFAULT_RETRY_SECONDS,
        },
    }
}

/// What a failed renewal records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailureRecord {
    /// Failures in a row, this one included.
    pub(crate) failures: u32,
    /// An interactive token's grant was refused: only a person authorizing
    /// it again helps, so the scheduler stops trying.
    pub(crate) needs_person: bool,
    /// The token is marked `failed` now.
    pub(crate) give_up: bool,
    /// When the scheduler tries again; `None`: it does not.
    pub(crate) next_due: Option<DateTime<Utc>>,
}

/// What a failure of `t` records, `error` being the provider's words. A
/// failure someone asked for marks the token failed at once; background
/// failures do so after `max_failures` in a row, or at once when a person
/// must authorize again. The next background attempt waits (exponential
/// backoff with jitter, at least the provider's `Retry-After`).
pub(crate) fn on_failure(
    t: &token::Model,
    error: &TokenError,
    mode: Mode,
    max_failures: u32,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> FailureRecord {
    let failures = u32::try_from(t.failure_count)
        .unwrap_or(0)
        .saturating_add(1);
    let needs_person = t.flow.needs_person() && error.error == "invalid_grant";
    let give_up = mode == Mode::Asked || needs_person || failures >= max_failures;
    let next_due = if needs_person || !t.auto_refresh {
        None
    } else {
        Some(now + due::backoff(failures, error.retry_after_seconds, rng))
    };
    FailureRecord {
        failures,
        needs_person,
        give_up,
        next_due,
    }
}

/// The row after a failure: the provider's words, the failure count, the
/// next attempt, `failed` when giving up, and no lease. The stored access
/// and refresh tokens are left as they are.
pub(crate) fn failure_row(
    t: &token::Model,
    error: &TokenError,
    record: &FailureRecord,
    now: DateTime<Utc>,
) -> token::ActiveModel {
    let mut active: token::ActiveModel = t.clone().into();
    if record.give_up {
        active.status = Set(TokenStatus::Failed);
    }
    active.last_error = Set(Some(serde_json::to_string(error).unwrap_or_default()));
    active.failure_count = Set(i32::try_from(record.failures).unwrap_or(i32::MAX));
    active.refresh_due_at = Set(record.next_due);
    active.lease_owner = Set(None);
    active.lease_until = Set(None);
    active.updated_at = Set(now);
    active
}
