//! Applying an import plan: every row written in one transaction, in
//! batches, each bundle secret opened and sealed again for its column here.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, TransactionTrait,
};

use super::plan::{Action, ProviderPlan, TokenPlan};
use super::report::{ImportReport, warn};
use super::{BATCH, DUE_SPREAD, ImportError, ProgressFn, unknown_name};
use crate::db::entity::{provider, token};
use crate::oauth::url_policy;
use crate::seal::SealSlot;
use crate::tokens::TokenStatus;
use crate::tokens::renewal::due;
use crate::transfer::bundle::{
    Bundle, ProviderEntry, ProviderSecret, SealedValue, TokenEntry, TokenSecret,
};
use crate::transfer::entries::TokenPlace;
use crate::transfer::passphrase::{BundleKey, SecretSlot};
use crate::transfer::progress::Phase;
use crate::transfer::service::Transfer;

/// Copies a client's secret-rotation state (next secret, expiries, the
/// secret last accepted, expiries announced) from the stored row `$here`
/// to its replacement `$new`: the same columns on providers and tokens.
macro_rules! keep_rotation {
    ($new:ident, $here:ident) => {
        $new.next_client_secret = $here.next_client_secret.clone();
        $new.client_secret_expires_at = $here.client_secret_expires_at;
        $new.next_client_secret_expires_at = $here.next_client_secret_expires_at;
        $new.secret_in_use = $here.secret_in_use;
        $new.secret_in_use_since = $here.secret_in_use_since;
        $new.secret_expiry_announced_for = $here.secret_expiry_announced_for;
        $new.next_secret_expiry_announced_for = $here.next_secret_expiry_announced_for;
    };
}

impl Transfer {
    /// Writes the plan in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply(
        &self,
        bundle: &Bundle,
        key: Option<&BundleKey>,
        existing: &[provider::Model],
        providers: &[ProviderPlan],
        tokens: &[TokenPlan],
        report: &mut ImportReport,
        progress: ProgressFn<'_>,
    ) -> Result<(), ImportError> {
        let now = self.clock.now();
        let total = providers
            .iter()
            .filter(|p| p.action != Action::Skip)
            .count() as u64
            + tokens.iter().filter(|t| t.action != Action::Skip).count() as u64;
        let mut done = 0u64;
        progress(Phase::Writing, done, total);
        let existing_by_id: HashMap<&str, &provider::Model> =
            existing.iter().map(|p| (p.id.as_str(), p)).collect();
        let txn = self.db.begin().await?;

        let mut rows = Vec::new();
        for plan in providers {
            let entry = &bundle.providers[plan.index];
            match plan.action {
                Action::Skip => {}
                Action::Create => {
                    rows.push(self.new_provider(plan, entry, key, now)?);
                }
                Action::Update => {
                    let Some(here) = existing_by_id.get(plan.id.as_str()) else {
                        return Err(ImportError::Storage(DbErr::RecordNotFound(format!(
                            "provider {}",
                            plan.id
                        ))));
                    };
                    let mut active = (*here).clone().into_active_model();
                    self.overwrite_provider(
                        &mut active,
                        here,
                        entry,
                        key,
                        now,
                        report,
                        plan.index,
                    )?;
                    active.update(&txn).await?;
                    done += 1;
                }
            }
        }
        for chunk in rows.chunks(BATCH) {
            provider::Entity::insert_many(
                chunk
                    .iter()
                    .cloned()
                    .map(IntoActiveModel::into_active_model),
            )
            .exec_without_returning(&txn)
            .await?;
            done += chunk.len() as u64;
            progress(Phase::Writing, done, total);
        }
        drop(rows);

        let creates: Vec<&TokenPlan> = tokens
            .iter()
            .filter(|t| t.action == Action::Create)
            .collect();
        for chunk in creates.chunks(BATCH) {
            let mut models = Vec::with_capacity(chunk.len());
            for plan in chunk {
                models.push(self.new_token(plan, &bundle.tokens[plan.index], key, now)?);
            }
            token::Entity::insert_many(models.into_iter().map(IntoActiveModel::into_active_model))
                .exec_without_returning(&txn)
                .await?;
            done += chunk.len() as u64;
            progress(Phase::Writing, done, total);
        }
        let updates: Vec<&TokenPlan> = tokens
            .iter()
            .filter(|t| t.action == Action::Update)
            .collect();
        for chunk in updates.chunks(BATCH) {
            let ids: Vec<String> = chunk.iter().map(|p| p.id.clone()).collect();
            let found: HashMap<String, token::Model> = token::Entity::find()
                .filter(token::Column::Id.is_in(ids))
                .all(&txn)
                .await?
                .into_iter()
                .map(|t| (t.id.clone(), t))
                .collect();
            for plan in chunk {
                let Some(here) = found.get(&plan.id) else {
                    return Err(ImportError::Storage(DbErr::RecordNotFound(format!(
                        "token {}",
                        plan.id
                    ))));
                };
                let active =
                    self.overwrite_token(plan, here, &bundle.tokens[plan.index], key, now)?;
                active.update(&txn).await?;
            }
            done += chunk.len() as u64;
            progress(Phase::Writing, done, total);
        }
        progress(Phase::Committing, done, total);
        txn.commit().await?;
        // The new rows' ids, for the report.
        let new_ids: HashMap<(bool, usize), &str> = providers
            .iter()
            .filter(|p| p.action == Action::Create)
            .map(|p| ((true, p.index), p.id.as_str()))
            .chain(
                tokens
                    .iter()
                    .filter(|t| t.action == Action::Create)
                    .map(|t| ((false, t.index), t.id.as_str())),
            )
            .collect();
        let index_of = |path: &str| -> Option<usize> {
            path.rsplit_once('[')
                .and_then(|(_, rest)| rest.trim_end_matches(']').parse().ok())
        };
        for it in &mut report.created.providers {
            it.id = index_of(&it.path)
                .and_then(|i| new_ids.get(&(true, i)))
                .map(|s| (*s).to_owned());
        }
        for it in &mut report.created.tokens {
            it.id = index_of(&it.path)
                .and_then(|i| new_ids.get(&(false, i)))
                .map(|s| (*s).to_owned());
        }
        Ok(())
    }

    /// Opens a bundle secret and seals it for a column here.
    fn reseal(
        &self,
        key: Option<&BundleKey>,
        slot: SecretSlot<'_>,
        sealed: Option<&SealedValue>,
        table: &str,
        row: &str,
        column: &str,
    ) -> Result<Option<String>, ImportError> {
        let (Some(key), Some(sealed)) = (key, sealed) else {
            return Ok(None);
        };
        // Every value was opened once while planning; a failure now is not
        // expected, but still stops the import.
        let plain = key.open(slot, sealed).map_err(ImportError::Secrets)?;
        Ok(Some(self.sealer.seal(
            SealSlot::new(table, row, column),
            plain.expose().as_bytes(),
        )))
    }

    fn new_provider(
        &self,
        plan: &ProviderPlan,
        p: &ProviderEntry,
        key: Option<&BundleKey>,
        now: DateTime<Utc>,
    ) -> Result<provider::Model, ImportError> {
        let mut row = p.to_row(&plan.id, &plan.name, now).map_err(|e| {
            unknown_name(e, format!("$.providers[{}].client_auth_method", plan.index))
        })?;
        let seal = |field: ProviderSecret| {
            self.reseal(
                key,
                SecretSlot::provider(&p.id, field),
                p.sealed(field),
                "providers",
                &plan.id,
                field.as_str(),
            )
        };
        row.client_secret = seal(ProviderSecret::ClientSecret)?;
        row.private_key = seal(ProviderSecret::PrivateKey)?;
        row.next_client_secret = seal(ProviderSecret::NextClientSecret)?;
        // An expiry arrives with its secret; which of the two the provider
        // accepts is learnt again from the first request.
        if row.client_secret.is_some() {
            row.client_secret_expires_at = p.client_secret_expires_at;
        }
        if row.next_client_secret.is_some() {
            row.next_client_secret_expires_at = p.next_client_secret_expires_at;
        }
        Ok(row)
    }

    /// The bundle's settings over an existing provider. With secrets, the
    /// bundle's replace the stored ones; without, the stored ones stay,
    /// unless the endpoints move to another origin (they were meant for
    /// the old server, as when a provider is edited).
    #[allow(clippy::too_many_arguments)]
    fn overwrite_provider(
        &self,
        active: &mut provider::ActiveModel,
        here: &provider::Model,
        p: &ProviderEntry,
        key: Option<&BundleKey>,
        now: DateTime<Utc>,
        report: &mut ImportReport,
        index: usize,
    ) -> Result<(), ImportError> {
        let plan = ProviderPlan {
            index,
            action: Action::Update,
            id: here.id.clone(),
            name: here.name.clone(),
        };
        let mut new = self.new_provider(&plan, p, key, now)?;
        new.created_at = here.created_at;
        if key.is_none() {
            let origins = |urls: [Option<&String>; 5]| -> HashSet<String> {
                urls.into_iter()
                    .flatten()
                    .filter_map(|u| url_policy::origin(u))
                    .collect()
            };
            let old = origins([
                here.issuer.as_ref(),
                here.authorization_endpoint.as_ref(),
                Some(&here.token_endpoint),
                here.refresh_endpoint.as_ref(),
                here.revocation_endpoint.as_ref(),
            ]);
            let now_at = origins([
                new.issuer.as_ref(),
                new.authorization_endpoint.as_ref(),
                Some(&new.token_endpoint),
                new.refresh_endpoint.as_ref(),
                new.revocation_endpoint.as_ref(),
            ]);
            if now_at.is_subset(&old) {
                new.client_secret = here.client_secret.clone();
                new.private_key = here.private_key.clone();
                keep_rotation!(new, here);
                if here.private_key.is_some() && new.key_id.is_none() {
                    new.key_id = here.key_id.clone();
                    new.signing_alg = here.signing_alg.clone();
                    if new.certificate.is_none() {
                        new.certificate = here.certificate.clone();
                        new.send_sha1_thumbprint = here.send_sha1_thumbprint;
                    }
                }
            } else if here.client_secret.is_some()
                || here.next_client_secret.is_some()
                || here.private_key.is_some()
            {
                warn(
                    report,
                    format!("$.providers[{index}].token_endpoint"),
                    "the endpoints move to another origin: the stored client secrets and private key are dropped; supply them again",
                );
            }
        }
        // Every column is written again; the primary key stays.
        *active = new.into_active_model().reset_all();
        active.id = sea_orm::ActiveValue::Unchanged(here.id.clone());
        Ok(())
    }

    /// When the scheduler should first renew an imported token: as after
    /// a normal request, but never in a burst right after the import.
    fn first_due(&self, t: &token::Model, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let due = due::next_due(t, self.settings.idle_refresh_interval)?;
        if due > now + Duration::minutes(1) {
            return Some(due);
        }
        let window = DUE_SPREAD.num_milliseconds().max(60_000);
        let offset = rand::thread_rng().gen_range(60_000..=window);
        Some(now + Duration::milliseconds(offset))
    }

    fn new_token(
        &self,
        plan: &TokenPlan,
        t: &TokenEntry,
        key: Option<&BundleKey>,
        now: DateTime<Utc>,
    ) -> Result<token::Model, ImportError> {
        let place = TokenPlace {
            id: &plan.id,
            name: &plan.name,
            owner_id: &plan.owner_id,
            provider_id: &plan.provider_id,
        };
        let mut model = t
            .to_row(place, now)
            .map_err(|e| unknown_name(e, format!("$.tokens[{}].flow", plan.index)))?;
        let seal = |field: TokenSecret| {
            self.reseal(
                key,
                SecretSlot::token(&t.id, field),
                t.sealed(field),
                "tokens",
                &plan.id,
                field.as_str(),
            )
        };
        model.client_secret = seal(TokenSecret::ClientSecret)?;
        model.password = seal(TokenSecret::Password)?;
        model.refresh_token = seal(TokenSecret::RefreshToken)?;
        model.access_token = seal(TokenSecret::AccessToken)?;
        model.next_client_secret = seal(TokenSecret::NextClientSecret)?;
        if model.client_secret.is_some() {
            model.client_secret_expires_at = t.client_secret_expires_at;
        }
        if model.next_client_secret.is_some() {
            model.next_client_secret_expires_at = t.next_client_secret_expires_at;
        }
        if model.refresh_token.is_some() {
            model.refresh_token_expires_at = t.refresh_token_expires_at;
        }
        // The access token's facts arrive with it.
        if model.access_token.is_some() {
            model.status = TokenStatus::Active;
            model.token_type = t.token_type.clone();
            model.expires_at = t.expires_at;
            model.granted_scope = t.granted_scope.clone();
            model.response_fields = t
                .response_fields
                .as_ref()
                .and_then(|f| serde_json::to_string(f).ok());
        }
        model.refresh_due_at = self.first_due(&model, now);
        Ok(model)
    }

    /// The bundle's settings over an existing token. With secrets, its
    /// credentials and current tokens are the bundle's; without, it keeps
    /// its own, unless it moves to another provider (then its access and
    /// refresh tokens go and it needs credentials).
    fn overwrite_token(
        &self,
        plan: &TokenPlan,
        here: &token::Model,
        t: &TokenEntry,
        key: Option<&BundleKey>,
        now: DateTime<Utc>,
    ) -> Result<token::ActiveModel, ImportError> {
        let mut new = self.new_token(plan, t, key, now)?;
        new.created_at = here.created_at;
        new.identity = here.identity.clone();
        if key.is_none() {
            new.client_secret = here.client_secret.clone();
            new.password = here.password.clone();
            keep_rotation!(new, here);
            if here.provider_id == plan.provider_id {
                new.access_token = here.access_token.clone();
                new.refresh_token = here.refresh_token.clone();
                new.refresh_token_expires_at = here.refresh_token_expires_at;
                new.renewal_notes = here.renewal_notes.clone();
                new.token_type = here.token_type.clone();
                new.expires_at = here.expires_at;
                new.granted_scope = here.granted_scope.clone();
                new.response_fields = here.response_fields.clone();
                new.status = here.status;
                new.last_error = here.last_error.clone();
                new.last_refreshed_at = here.last_refreshed_at;
                new.failure_count = here.failure_count;
                new.refresh_due_at = if here.failure_count == 0 {
                    self.first_due(&new, now)
                } else {
                    here.refresh_due_at
                };
            } else {
                new.identity = None;
            }
        }
        // Every column is written again; the primary key stays.
        let mut active = new.into_active_model().reset_all();
        active.id = sea_orm::ActiveValue::Unchanged(here.id.clone());
        // A renewal in flight elsewhere keeps its lease.
        active.lease_owner = Set(here.lease_owner.clone());
        active.lease_until = Set(here.lease_until);
        Ok(active)
    }
}
