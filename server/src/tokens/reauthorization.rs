//! Warning before a person must authorize a token again: once for each
//! re-authorization date that falls within `QUIVER_REAUTHORIZATION_NOTICE`
//! (or has passed), the `token.reauthorization_due` event.

use app::tokens::Flow;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};

use super::engine::TokenEngine;
use super::lifetimes::reauthorization_due_at;
use crate::account::ops::rfc3339;
use crate::db::entity::token;
use crate::events::EventKind;

/// At most this many tokens are announced per pass; the next pass goes on.
const ANNOUNCEMENTS_PER_PASS: u64 = 500;

impl TokenEngine {
    /// Raises `token.reauthorization_due` once per token and date for the
    /// tokens a person authorizes whose refresh token (or, without one,
    /// access token) expires within the notice. Replicas share the work:
    /// a date is announced by whichever marks it first. Returns how many
    /// were announced.
    pub async fn announce_reauthorization_due(&self) -> usize {
        let now = self.tokens.clock.now();
        let horizon = now + self.settings.reauthorization_notice;
        let candidates = token::Entity::find()
            .filter(due_candidates(horizon))
            .limit(ANNOUNCEMENTS_PER_PASS * 4)
            .all(&self.tokens.db)
            .await;
        let candidates = match candidates {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the tokens due for re-authorization");
                return 0;
            }
        };
        let mut announced = 0;
        for t in candidates {
            let Some(due) = reauthorization_due_at(&t) else {
                continue;
            };
            if t.reauthorization_announced_for == Some(due) {
                continue;
            }
            if !self.mark_announced(&t, due).await {
                continue;
            }
            self.events
                .raise(
                    EventKind::ReauthorizationDue,
                    Some(&t.id),
                    None,
                    message(&t.name, due, now),
                    serde_json::json!({
                        "token_name": t.name,
                        "reauthorization_due_at": rfc3339(due),
                        "reason": if t.refresh_token.is_some() {
                            "refresh_token_expires"
                        } else {
                            "access_token_expires_without_refresh_token"
                        },
                    }),
                )
                .await;
            announced += 1;
            if announced as u64 >= ANNOUNCEMENTS_PER_PASS {
                break;
            }
        }
        announced
    }

    /// Marks `due` announced on `t`, only where it is not announced yet.
    async fn mark_announced(&self, t: &token::Model, due: DateTime<Utc>) -> bool {
        let marked = token::Entity::update_many()
            .col_expr(token::Column::ReauthorizationAnnouncedFor, Expr::value(due))
            .filter(token::Column::Id.eq(t.id.clone()))
            .filter(
                Condition::any()
                    .add(token::Column::ReauthorizationAnnouncedFor.is_null())
                    .add(token::Column::ReauthorizationAnnouncedFor.ne(due)),
            )
            .exec(&self.tokens.db)
            .await;
        matches!(marked, Ok(r) if r.rows_affected == 1)
    }
}

/// Tokens a person authorizes whose re-authorization date may fall by
/// `horizon`: their refresh token (or, without one, their access token)
/// expires by then. [`reauthorization_due_at`] decides for each.
pub(crate) fn due_candidates(horizon: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(token::Column::Flow.is_in([
            Flow::AuthorizationCode,
            Flow::OidcHybrid,
            Flow::DeviceCode,
        ]))
        .add(token::Column::AccessToken.is_not_null())
        .add(
            Condition::any()
                .add(
                    Condition::all()
                        .add(token::Column::RefreshToken.is_not_null())
                        .add(token::Column::RefreshTokenExpiresAt.lte(horizon)),
                )
                .add(
                    Condition::all()
                        .add(token::Column::RefreshToken.is_null())
                        .add(token::Column::ExpiresAt.lte(horizon)),
                ),
        )
}

/// One sentence for people: by when, and what to do.
fn message(name: &str, due: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let date = due.format("%Y-%m-%d");
    if due <= now {
        format!(
            "Token {name} can no longer be renewed since {date}: open it and authorize it again."
        )
    } else {
        // Whole days left, counting a started day.
        let days = ((due - now).num_seconds() + 86_399) / 86_400;
        format!(
            "Token {name} must be authorized again within {days} days, by {date}: open it and choose Re-authorize before then."
        )
    }
}
