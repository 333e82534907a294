//! Storing a renewal's outcome in the update that releases its claim: new
//! tokens on success; on failure the provider's words, the failure count
//! and the next attempt, the last good tokens kept.

use app::error::AppError;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveValue, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryTrait, TryIntoModel,
};

use super::Claim;
use super::decide::{FailureRecord, failure_row, on_failure};
use super::due;
use crate::db::entity::token;
use crate::events::EventKind;
use crate::oauth::grant::GrantError;
use crate::oauth::token_response::TokenSet;
use crate::providers::OpenedProvider;
use crate::tokens::engine::{Mode, RequestValues, TokenEngine, token_error};
use crate::tokens::lifetimes::{self, Issued, RefreshLifetime};
use crate::tokens::{TokenStatus, db_error};
use app::tokens::RenewalNote;

impl TokenEngine {
    /// Stores a successful response and releases `claim`, in one update;
    /// announces what a renewal newly left out.
    pub(super) async fn store_success(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        set: TokenSet,
        issued: Issued,
        claim: &Claim,
    ) -> Result<token::Model, AppError> {
        let mut active = self.success_row(t, provider, set, &Self::values(t), issued);
        leave_out_unchanged(&mut active, t);
        let recovered = t.status == TokenStatus::Failed && t.failure_count > 0;
        let stored = self.store_claimed(t, active, claim).await?;
        if issued == Issued::Refreshed {
            self.announce_new_notes(t, &stored).await;
        }
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
    pub(crate) fn success_row(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        set: TokenSet,
        values: &RequestValues,
        issued: Issued,
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
        let rotated_away = set.refresh_token.is_none()
            && provider.model.refresh_token_rotates
            && t.refresh_token.is_some();
        if let Some(refresh) = &set.refresh_token {
            active.refresh_token = Set(Some(self.seal(&t.id, "refresh_token", refresh.expose())));
        } else if rotated_away {
            // The provider ends a refresh token when it is used: one it did
            // not replace is no longer good, and sending it again would look
            // like reuse to a provider that detects it.
            active.refresh_token = Set(None);
        }
        if !set.fields.is_empty() {
            // A field this answer does not repeat keeps its earlier value
            // (one that came on the authorization redirect, say).
            let mut fields =
                super::super::response_fields(t.response_fields.as_deref()).unwrap_or_default();
            fields.extend(set.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            active.response_fields = Set(serde_json::to_string(&fields).ok());
        }
        let keeps_refresh =
            set.refresh_token.is_some() || (!rotated_away && t.refresh_token.is_some());
        active.refresh_token_expires_at = Set(lifetimes::refresh_token_expires_at(
            t,
            &set,
            keeps_refresh,
            RefreshLifetime::from(&provider.model),
            issued,
            now,
        ));
        active.renewal_notes = Set(lifetimes::notes_json(&lifetimes::renewal_notes(
            t,
            &set,
            issued,
            rotated_away,
            provider.model.default_lifetime_secs,
            &provider.model.scope_separator,
        )));
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
        } else if rotated_away {
            after.refresh_token = None;
        }
        active.refresh_due_at = Set(due::next_due(&after, self.settings.idle_refresh_interval));
        active
    }

    /// Raises an event for each note `stored` has that `before` had not:
    /// a renewal newly left something out.
    async fn announce_new_notes(&self, before: &token::Model, stored: &token::Model) {
        let had = lifetimes::stored_notes(before);
        for note in lifetimes::stored_notes(stored) {
            if had.iter().any(|h| h.kind() == note.kind()) {
                continue;
            }
            let kind = match note {
                RenewalNote::RefreshTokenDropped => EventKind::RefreshTokenDropped,
                RenewalNote::ScopeNarrowed { .. } => EventKind::ScopeNarrowed,
                RenewalNote::ExpiresInMissing { .. } => EventKind::ExpiresInMissing,
            };
            self.events
                .raise(
                    kind,
                    Some(&stored.id),
                    None,
                    format!("Token {}: {}", stored.name, note.explain()),
                    serde_json::json!({"token_name": stored.name, "note": note}),
                )
                .await;
        }
    }

    /// Writes `active` and releases the claim in one statement, only while
    /// `claim` still holds the token, and answers the token as stored. When
    /// the claim no longer holds (a new authorization, an import or a
    /// deletion replaced the row), what is stored stays and is answered.
    async fn store_claimed(
        &self,
        t: &token::Model,
        active: token::ActiveModel,
        claim: &Claim,
    ) -> Result<token::Model, AppError> {
        let mut update = token::Entity::update_many()
            .set(active.clone())
            .filter(token::Column::Id.eq(t.id.clone()))
            .filter(token::Column::LeaseOwner.eq(claim.0.clone()))
            .into_query();
        // Which of a token's own two client secrets the provider accepts is
        // recorded by the call itself when it had to switch: read back here,
        // so that the answer shows the switch. Only a token with a next
        // secret of its own can switch; the others are written without it.
        let switchable = t.next_client_secret.is_some();
        if switchable {
            update.returning(
                Query::returning()
                    .columns([token::Column::SecretInUse, token::Column::SecretInUseSince]),
            );
        }
        let statement = self.tokens.db.get_database_backend().build(&update);
        let (written, secret_in_use) = if switchable {
            let rows = self
                .tokens
                .writes
                .returning_rows(statement)
                .await
                .map_err(db_error)?;
            (rows.len() as u64, rows.into_iter().next())
        } else {
            let written = self
                .tokens
                .writes
                .execute(statement)
                .await
                .map_err(db_error)?;
            (written.rows_affected, None)
        };
        if written == 1 {
            let mut stored = active.try_into_model().map_err(db_error)?;
            if let Some(row) = secret_in_use {
                stored.secret_in_use = row.try_get("", "secret_in_use").map_err(db_error)?;
                stored.secret_in_use_since =
                    row.try_get("", "secret_in_use_since").map_err(db_error)?;
            }
            return Ok(stored);
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
    pub(super) async fn store_failure(
        &self,
        t: &token::Model,
        error: &GrantError,
        mode: Mode,
        claim: &Claim,
    ) -> Result<token::Model, AppError> {
        let now = self.tokens.clock.now();
        let stored_error = token_error(error);
        let record = on_failure(
            t,
            &stored_error,
            mode,
            self.settings.refresh_max_failures,
            now,
            &mut rand::thread_rng(),
        );
        let FailureRecord {
            failures,
            needs_person,
            give_up,
            ..
        } = record;
        let active = failure_row(t, &stored_error, &record, now);
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
    pub(super) async fn needs_person(
        &self,
        t: &token::Model,
        claim: &Claim,
    ) -> Result<(), AppError> {
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

/// Leaves out of a renewal's update the columns whose value stays, so that
/// SQLite rewrites no index for them (status, the refresh token's expiry).
/// `t` was read under the renewal's claim: it is what is stored now.
fn leave_out_unchanged(active: &mut token::ActiveModel, t: &token::Model) {
    fn keep<V>(value: &mut ActiveValue<V>, stored: &V)
    where
        V: PartialEq + Into<sea_orm::Value>,
    {
        if matches!(value, ActiveValue::Set(v) if v == stored)
            && let Some(v) = value.take()
        {
            *value = ActiveValue::Unchanged(v);
        }
    }
    keep(&mut active.status, &t.status);
    keep(&mut active.last_error, &t.last_error);
    keep(&mut active.failure_count, &t.failure_count);
    keep(
        &mut active.refresh_token_expires_at,
        &t.refresh_token_expires_at,
    );
    keep(&mut active.renewal_notes, &t.renewal_notes);
    keep(&mut active.response_fields, &t.response_fields);
    keep(&mut active.token_type, &t.token_type);
    keep(&mut active.granted_scope, &t.granted_scope);
}
