//! What a renewal decides without calling anyone: whether a result
//! another caller stored answers it, and the error a caller is given.

use std::time::Duration as StdDuration;

use app::error::AppError;
use app::tokens::TokenError;

use super::{FAILURE_REUSE, FRESH_PATIENCE, Need, Renewed};
use crate::db::entity::token;
use crate::tokens::TokenStatus;
use crate::tokens::engine::TokenEngine;

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
