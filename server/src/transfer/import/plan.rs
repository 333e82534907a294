//! The plan of an import: what each entry of the bundle becomes here under
//! the conflict policy, and the checks only this instance can make (its
//! URL policy, whether every sealed value opens).

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::report::{ImportReport, item, problem, warn};
use super::{BATCH, OnConflict};
use crate::db::entity::{provider, token};
use crate::oauth::certificate::Certificate;
use crate::oauth::client_auth::ClientAuthMethod;
use crate::oauth::signing_key::{SigningAlg, SigningKey};
use crate::oauth::url_policy;
use crate::providers::{MAX_NAME_CHARS, Wording};
use crate::tokens::validation::{ProviderShape, check_own_keys, flow_misfits};
use crate::tokens::{Flow, TokenStatus};
use crate::transfer::bundle::{Bundle, ProviderSecret, TokenSecret};
use crate::transfer::passphrase::{BundleKey, SecretSlot};
use crate::transfer::service::{Authorized, Transfer};

/// The two kinds of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Provider,
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Create,
    Update,
    Skip,
}

/// What the bundle's provider entry becomes here.
pub(super) struct ProviderPlan {
    pub(super) index: usize,
    pub(super) action: Action,
    /// The row here: new, or the existing one.
    pub(super) id: String,
    pub(super) name: String,
}

/// What the bundle's token entry becomes here.
pub(super) struct TokenPlan {
    pub(super) index: usize,
    pub(super) action: Action,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) owner_id: String,
    pub(super) provider_id: String,
}

/// `Name (2)`, `Name (3)`, … : the first that `taken` does not hold,
/// shortened to fit the name limit.
pub fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    let base = base.trim();
    for n in 2u32.. {
        let suffix = format!(" ({n})");
        let room = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
        let stem: String = base.chars().take(room).collect();
        let candidate = format!("{}{suffix}", stem.trim_end());
        if !taken(&candidate) {
            return candidate;
        }
    }
    unreachable!("some numbered name is free")
}

impl Transfer {
    /// What the reader cannot know: this instance's URL policy, and
    /// whether every sealed value opens (and every private key parses).
    pub(super) fn check_against_instance(
        &self,
        bundle: &Bundle,
        key: Option<&BundleKey>,
        report: &mut ImportReport,
    ) {
        let loopback = self.settings.allow_insecure_loopback;
        for (i, p) in bundle.providers.iter().enumerate() {
            for (field, value) in [
                ("token_endpoint", Some(&p.token_endpoint)),
                ("issuer", p.issuer.as_ref()),
                ("authorization_endpoint", p.authorization_endpoint.as_ref()),
                ("refresh_endpoint", p.refresh_endpoint.as_ref()),
                ("revocation_endpoint", p.revocation_endpoint.as_ref()),
                ("jwks_uri", p.jwks_uri.as_ref()),
                (
                    "pushed_authorization_request_endpoint",
                    p.pushed_authorization_request_endpoint.as_ref(),
                ),
                (
                    "device_authorization_endpoint",
                    p.device_authorization_endpoint.as_ref(),
                ),
                ("test_request_url", p.test_request_url.as_ref()),
            ] {
                if let Some(value) = value
                    && let Err(message) = url_policy::check_url(value, loopback)
                {
                    problem(
                        report,
                        format!("$.providers[{i}].{field}"),
                        format!("{field} {message}"),
                    );
                }
            }
        }
        for (i, t) in bundle.tokens.iter().enumerate() {
            if let Some(value) = &t.test_request_url
                && let Err(message) = url_policy::check_url(value, loopback)
            {
                problem(
                    report,
                    format!("$.tokens[{i}].test_request_url"),
                    format!("test_request_url {message}"),
                );
            }
        }
        let Some(key) = key else { return };
        for (i, p) in bundle.providers.iter().enumerate() {
            for field in ProviderSecret::ALL {
                let Some(sealed) = p.sealed(field) else {
                    continue;
                };
                match key.open(SecretSlot::provider(&p.id, field), sealed) {
                    Err(e) => problem(
                        report,
                        format!("$.providers[{i}].{}", field.as_str()),
                        e.to_string(),
                    ),
                    Ok(pem) if field == ProviderSecret::PrivateKey => {
                        let alg = p.signing_alg.as_deref().and_then(SigningAlg::parse);
                        match SigningKey::from_pem(pem.expose(), alg, p.key_id.as_deref()) {
                            Err(e) => problem(
                                report,
                                format!("$.providers[{i}].private_key"),
                                format!("the private key {e}"),
                            ),
                            Ok(key) => {
                                let certificate = p.certificate.as_deref().map(|c| {
                                    Certificate::from_pem(c).and_then(|c| c.check_key(&key))
                                });
                                if let Some(Err(e)) = certificate {
                                    problem(
                                        report,
                                        format!("$.providers[{i}].certificate"),
                                        format!("the certificate {e}"),
                                    );
                                }
                            }
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
        for (i, t) in bundle.tokens.iter().enumerate() {
            for field in TokenSecret::ALL {
                if let Some(sealed) = t.sealed(field)
                    && let Err(e) = key.open(SecretSlot::token(&t.id, field), sealed)
                {
                    problem(
                        report,
                        format!("$.tokens[{i}].{}", field.as_str()),
                        e.to_string(),
                    );
                }
            }
        }
    }

    pub(super) fn plan_providers(
        &self,
        bundle: &Bundle,
        existing: &[provider::Model],
        policy: OnConflict,
        with_secrets: bool,
        report: &mut ImportReport,
    ) -> Vec<ProviderPlan> {
        let by_name: HashMap<&str, &provider::Model> =
            existing.iter().map(|p| (p.name.as_str(), p)).collect();
        let mut taken: HashSet<String> = existing.iter().map(|p| p.name.clone()).collect();
        let mut claimed: HashSet<&str> = HashSet::new();
        let mut plans = Vec::with_capacity(bundle.providers.len());
        for (index, entry) in bundle.providers.iter().enumerate() {
            let path = format!("$.providers[{index}]");
            let name = entry.name.trim();
            let mut it = item(path.clone(), &entry.id, name);
            let fresh_id = || uuid::Uuid::new_v4().to_string();
            let (action, id, final_name) = match by_name.get(name) {
                None if !taken.contains(name) => (Action::Create, fresh_id(), name.to_owned()),
                Some(here) if !claimed.contains(name) => match policy {
                    OnConflict::Skip => (Action::Skip, here.id.clone(), name.to_owned()),
                    OnConflict::Overwrite => (Action::Update, here.id.clone(), name.to_owned()),
                    OnConflict::Rename => (
                        Action::Create,
                        fresh_id(),
                        unique_name(name, |n| taken.contains(n)),
                    ),
                },
                _ => {
                    // Taken by an entry renamed earlier in this import.
                    let renamed = unique_name(name, |n| taken.contains(n));
                    warn(
                        report,
                        format!("{path}.name"),
                        format!(
                            "another entry of this import is named {name:?} here; this one becomes {renamed:?}"
                        ),
                    );
                    (Action::Create, fresh_id(), renamed)
                }
            };
            claimed.insert(name);
            taken.insert(final_name.clone());
            if final_name != name {
                it.new_name = Some(final_name.clone());
            }
            let lacks_key = entry
                .client_auth_method
                .parse::<ClientAuthMethod>()
                .is_ok_and(ClientAuthMethod::uses_provider_key)
                && !(with_secrets && entry.private_key.is_some());
            let kept_key = action == Action::Update
                && !with_secrets
                && by_name.get(name).is_some_and(|h| h.private_key.is_some());
            if lacks_key && action != Action::Skip && !kept_key {
                warn(
                    report,
                    format!("{path}.private_key"),
                    format!(
                        "{} without a private key: upload or generate one (PATCH the provider) before its tokens can be requested",
                        entry.client_auth_method
                    ),
                );
            }
            if action == Action::Skip {
                it.reason = Some("a provider with this name exists; the bundle's tokens for it use the existing one".into());
            }
            report.add(Kind::Provider, action, &id, it);
            plans.push(ProviderPlan {
                index,
                action,
                id,
                name: final_name,
            });
        }
        plans
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_tokens(
        &self,
        bundle: &Bundle,
        existing: &[provider::Model],
        providers: &[ProviderPlan],
        who: &Authorized,
        policy: OnConflict,
        with_secrets: bool,
        report: &mut ImportReport,
    ) -> Result<Vec<TokenPlan>, DbErr> {
        let existing_by_id: HashMap<&str, &provider::Model> =
            existing.iter().map(|p| (p.id.as_str(), p)).collect();
        // Bundle provider id → (provider here, the settings tokens depend on).
        let mut target: HashMap<&str, (String, ProviderShape)> = HashMap::new();
        for plan in providers {
            let entry = &bundle.providers[plan.index];
            let shape = match plan.action {
                Action::Skip => existing_by_id
                    .get(plan.id.as_str())
                    .map(|m| ProviderShape::from(*m))
                    .unwrap_or_else(|| ProviderShape::from(entry)),
                _ => ProviderShape::from(entry),
            };
            target.insert(entry.id.as_str(), (plan.id.clone(), shape));
        }
        let users = self.users_by_email().await?;
        let fallback = who.fallback_owner();
        // Owner of each token entry.
        let owners: Vec<(String, String)> = bundle
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let wanted = t.owner_email.as_deref().map(|e| e.trim().to_lowercase());
                match wanted.as_deref().and_then(|e| users.get(e)) {
                    Some(u) => (u.id.clone(), u.email.clone()),
                    None => {
                        if let Some(email) = &wanted {
                            warn(
                                report,
                                format!("$.tokens[{i}].owner_email"),
                                format!(
                                    "no account {email:?} here: the token goes to {}",
                                    fallback.email
                                ),
                            );
                        }
                        (fallback.id.clone(), fallback.email.clone())
                    }
                }
            })
            .collect();
        // Names the owners' tokens have here.
        let owner_ids: Vec<String> = owners
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut here: HashMap<(String, String), String> = HashMap::new();
        for chunk in owner_ids.chunks(BATCH) {
            let rows: Vec<(String, String, String)> = token::Entity::find()
                .select_only()
                .column(token::Column::Id)
                .column(token::Column::OwnerId)
                .column(token::Column::Name)
                .filter(token::Column::OwnerId.is_in(chunk.to_vec()))
                .into_tuple()
                .all(&self.db)
                .await?;
            for (id, owner, name) in rows {
                here.entry((owner, name)).or_insert(id);
            }
        }
        let mut taken: HashSet<(String, String)> = here.keys().cloned().collect();
        let mut claimed: HashSet<(String, String)> = HashSet::new();
        let mut plans = Vec::with_capacity(bundle.tokens.len());
        for (index, t) in bundle.tokens.iter().enumerate() {
            let path = format!("$.tokens[{index}]");
            let (owner_id, owner_email) = owners[index].clone();
            let Some((provider_id, shape)) = target.get(t.provider_id.as_str()).cloned() else {
                // The reader resolved every reference; kept for safety.
                problem(
                    report,
                    format!("{path}.provider_id"),
                    "no provider in this bundle has this id",
                );
                continue;
            };
            let kept_provider = providers
                .iter()
                .any(|p| p.id == provider_id && p.action == Action::Skip);
            if kept_provider {
                let misfit = t.flow.parse::<Flow>().ok().and_then(|flow| {
                    flow_misfits(flow, &shape, Wording::ExistingProvider)
                        .into_iter()
                        .next()
                });
                let keys = check_own_keys(t.use_default_keys, &shape, Wording::ExistingProvider);
                for e in misfit.into_iter().chain(keys.err()) {
                    problem(report, format!("{path}.{}", e.field), e.message);
                }
            }
            let name = t.name.trim().to_owned();
            let key = (owner_id.clone(), name.clone());
            let fresh_id = || uuid::Uuid::new_v4().to_string();
            let unique = |taken: &HashSet<(String, String)>| {
                unique_name(&name, |n| taken.contains(&(owner_id.clone(), n.to_owned())))
            };
            let (action, id, final_name) = match here.get(&key) {
                None if !taken.contains(&key) => (Action::Create, fresh_id(), name.clone()),
                Some(existing_id) if !claimed.contains(&key) => match policy {
                    OnConflict::Skip => (Action::Skip, existing_id.clone(), name.clone()),
                    OnConflict::Overwrite => (Action::Update, existing_id.clone(), name.clone()),
                    OnConflict::Rename => (Action::Create, fresh_id(), unique(&taken)),
                },
                _ => {
                    let renamed = unique(&taken);
                    warn(
                        report,
                        format!("{path}.name"),
                        format!(
                            "another token of this import is named {name:?} for {owner_email} here; this one becomes {renamed:?}"
                        ),
                    );
                    (Action::Create, fresh_id(), renamed)
                }
            };
            claimed.insert(key);
            taken.insert((owner_id.clone(), final_name.clone()));
            let mut it = item(path, &t.id, &name);
            it.owner = Some(owner_email);
            if final_name != name {
                it.new_name = Some(final_name.clone());
            }
            let arriving = if with_secrets && t.access_token.is_some() {
                TokenStatus::Active
            } else {
                TokenStatus::NeedsCredentials
            };
            match action {
                // Without secrets an overwritten token keeps its own.
                Action::Create => it.status = Some(arriving),
                Action::Update if with_secrets => it.status = Some(arriving),
                Action::Update => {}
                Action::Skip => it.reason = Some("this owner has a token with this name".into()),
            }
            if it.status == Some(TokenStatus::NeedsCredentials) {
                report.summary.needs_credentials += 1;
            }
            report.add(Kind::Token, action, &id, it);
            plans.push(TokenPlan {
                index,
                action,
                id,
                name: final_name,
                owner_id,
                provider_id,
            });
        }
        Ok(plans)
    }
}
