//! Export: providers and tokens from the database into a bundle, written
//! as it is read.
//!
//! The JSON goes to an async writer one page of rows at a time
//! ([`PAGE`] rows, then the buffer is written and reused), so memory stays
//! flat however many tokens there are. Secrets are left out unless asked
//! for; then each is opened with the instance's sealer and sealed again
//! under the key derived from the admin's passphrase, and the whole content
//! is authenticated as it is written, its code (`mac`) written last.
//! Access and refresh tokens (with their type, expiry and granted scope)
//! travel only with secrets.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::bundle::{
    FORMAT, ProviderEntry, ProviderSecret, SealedValue, SecretsHeader, Source, TokenEntry,
    TokenSecret, VERSION,
};
use super::mac::Authenticator;
use super::passphrase::{BundleKey, KdfParams, SecretSlot, TransferError};
use super::reader::Problem;
use super::service::{Authorized, Transfer};
use crate::audit::Outcome;
use crate::db::entity::{provider, token, user};
use crate::seal::SealSlot;
use crate::secret::SecretString;

/// Rows read, converted and written at a time.
pub const PAGE: usize = 500;

/// Shortest passphrase accepted for an export with secrets.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Most ids one request may list.
pub const MAX_IDS: usize = 100_000;

/// What to export.
#[derive(Debug, Default, Clone)]
pub struct ExportRequest {
    /// These providers (with all their tokens, unless `token_ids` is given).
    pub provider_ids: Option<Vec<String>>,
    /// These tokens (their providers come along).
    pub token_ids: Option<Vec<String>>,
    /// Seal secrets under `passphrase` into the bundle.
    pub include_secrets: bool,
    /// Required with `include_secrets`.
    pub passphrase: Option<SecretString>,
}

/// Why an export was refused or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Ids that name nothing; each problem's path is the id's place in the request.
    #[error("{}", unknown_summary(.0))]
    UnknownIds(Vec<Problem>),
    /// More ids than [`MAX_IDS`].
    #[error("at most {MAX_IDS} ids may be listed")]
    TooManyIds,
    /// `include_secrets` without a passphrase.
    #[error(
        "include_secrets needs a passphrase: secrets leave Quiver only sealed under a passphrase you choose"
    )]
    PassphraseRequired,
    /// A passphrase without `include_secrets`.
    #[error(
        "a passphrase was given but include_secrets is false: set include_secrets to export the secrets, or leave the passphrase out"
    )]
    PassphraseWithoutSecrets,
    /// A passphrase shorter than [`MIN_PASSPHRASE_CHARS`].
    #[error("the passphrase must be at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    /// A sealed column this instance cannot open (a damaged database).
    #[error(
        "the sealed {column} of {table} {row} cannot be opened with this instance's master key"
    )]
    Unsealable {
        /// `providers` or `tokens`.
        table: &'static str,
        /// The row id.
        row: String,
        /// The column.
        column: &'static str,
    },
    /// The passphrase key could not be derived.
    #[error("the passphrase key could not be derived: {0}")]
    Key(TransferError),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] DbErr),
    /// The writer failed (a full disk, a client that went away).
    #[error("writing the bundle failed: {0}")]
    Write(#[from] std::io::Error),
}

fn unknown_summary(problems: &[Problem]) -> String {
    let shown: Vec<String> = problems.iter().take(3).map(Problem::to_string).collect();
    let more = problems.len().saturating_sub(3);
    if more > 0 {
        format!("unknown ids: {}; and {more} more", shown.join("; "))
    } else {
        format!("unknown ids: {}", shown.join("; "))
    }
}

/// Which tokens go into the bundle.
#[derive(Debug, Clone)]
enum Tokens {
    All,
    OfProviders(Vec<String>),
    Ids(Vec<String>),
}

/// A checked export, ready to write: the selection is resolved and the
/// passphrase key derived, so nothing is written before every refusal.
pub struct ExportPlan {
    /// Provider ids in bundle order (by name).
    providers: Vec<String>,
    tokens: Tokens,
    key: Option<(Arc<BundleKey>, SecretsHeader)>,
    /// Providers to write.
    pub provider_count: u64,
    /// Tokens to write (at most; tokens deleted meanwhile are left out).
    pub token_count: u64,
    /// When the export was asked for.
    pub exported_at: DateTime<Utc>,
}

impl std::fmt::Debug for ExportPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportPlan")
            .field("providers", &self.provider_count)
            .field("tokens", &self.token_count)
            .field("secrets", &self.key.is_some())
            .finish()
    }
}

impl ExportPlan {
    /// The download's file name, `quiver-export-<date>.json`.
    pub fn file_name(&self) -> String {
        format!("quiver-export-{}.json", self.exported_at.format("%Y-%m-%d"))
    }

    /// Whether secrets are sealed into the bundle.
    pub fn includes_secrets(&self) -> bool {
        self.key.is_some()
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Providers written.
    pub providers: u64,
    /// Tokens written.
    pub tokens: u64,
    /// Whether secrets were sealed in.
    pub secrets: bool,
    /// Bytes written.
    pub bytes: u64,
}

/// Sorts ids, drops duplicates and checks the count.
fn unique_ids(ids: &[String]) -> Result<Vec<String>, ExportError> {
    if ids.len() > MAX_IDS {
        return Err(ExportError::TooManyIds);
    }
    let mut ids: Vec<String> = ids.iter().map(|s| s.trim().to_owned()).collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

impl Transfer {
    /// Checks an export and derives its key; writes nothing.
    pub async fn plan_export(
        &self,
        _who: &Authorized,
        request: ExportRequest,
    ) -> Result<ExportPlan, ExportError> {
        let passphrase = match (request.include_secrets, request.passphrase) {
            (true, None) => return Err(ExportError::PassphraseRequired),
            (true, Some(p)) if p.is_empty() => return Err(ExportError::PassphraseRequired),
            (true, Some(p)) if p.expose().chars().count() < MIN_PASSPHRASE_CHARS => {
                return Err(ExportError::WeakPassphrase);
            }
            (true, Some(p)) => Some(p),
            (false, Some(p)) if !p.is_empty() => return Err(ExportError::PassphraseWithoutSecrets),
            (false, _) => None,
        };
        let mut problems = Vec::new();
        let mut provider_set: HashSet<String> = HashSet::new();
        if let Some(ids) = &request.provider_ids {
            let wanted = unique_ids(ids)?;
            let found = self.existing_providers(&wanted).await?;
            for (i, id) in ids.iter().enumerate() {
                if !found.contains(id.trim()) {
                    problems.push(Problem {
                        path: format!("$.provider_ids[{i}]"),
                        message: format!("no provider has the id {:?}", clip(id)),
                    });
                }
            }
            provider_set.extend(found);
        }
        let tokens = match (&request.token_ids, &request.provider_ids) {
            (Some(ids), _) => {
                let wanted = unique_ids(ids)?;
                let mut found = HashSet::with_capacity(wanted.len());
                for chunk in wanted.chunks(PAGE) {
                    let rows: Vec<(String, String)> = token::Entity::find()
                        .select_only()
                        .column(token::Column::Id)
                        .column(token::Column::ProviderId)
                        .filter(token::Column::Id.is_in(chunk.to_vec()))
                        .into_tuple()
                        .all(&self.db)
                        .await?;
                    for (id, provider_id) in rows {
                        found.insert(id);
                        provider_set.insert(provider_id);
                    }
                }
                for (i, id) in ids.iter().enumerate() {
                    if !found.contains(id.trim()) {
                        problems.push(Problem {
                            path: format!("$.token_ids[{i}]"),
                            message: format!("no token has the id {:?}", clip(id)),
                        });
                    }
                }
                Tokens::Ids(wanted.into_iter().filter(|id| found.contains(id)).collect())
            }
            (None, Some(_)) => {
                let mut ids: Vec<String> = provider_set.iter().cloned().collect();
                ids.sort();
                Tokens::OfProviders(ids)
            }
            (None, None) => Tokens::All,
        };
        if !problems.is_empty() {
            return Err(ExportError::UnknownIds(problems));
        }
        // Providers in bundle order: by name.
        let mut named: Vec<(String, String)> = Vec::new();
        if matches!(tokens, Tokens::All) && request.provider_ids.is_none() {
            named = provider::Entity::find()
                .select_only()
                .column(provider::Column::Name)
                .column(provider::Column::Id)
                .into_tuple()
                .all(&self.db)
                .await?;
        } else {
            let ids: Vec<String> = provider_set.into_iter().collect();
            for chunk in ids.chunks(PAGE) {
                let rows: Vec<(String, String)> = provider::Entity::find()
                    .select_only()
                    .column(provider::Column::Name)
                    .column(provider::Column::Id)
                    .filter(provider::Column::Id.is_in(chunk.to_vec()))
                    .into_tuple()
                    .all(&self.db)
                    .await?;
                named.extend(rows);
            }
        }
        named.sort();
        let providers: Vec<String> = named.into_iter().map(|(_, id)| id).collect();
        let token_count = match &tokens {
            Tokens::All => token::Entity::find().count(&self.db).await?,
            Tokens::OfProviders(ids) => {
                let mut n = 0;
                for chunk in ids.chunks(PAGE) {
                    n += token::Entity::find()
                        .filter(token::Column::ProviderId.is_in(chunk.to_vec()))
                        .count(&self.db)
                        .await?;
                }
                n
            }
            Tokens::Ids(ids) => ids.len() as u64,
        };
        let key = match passphrase {
            None => None,
            Some(passphrase) => {
                // Argon2id is slow on purpose: keep it off the async workers.
                let derived = tokio::task::spawn_blocking(move || {
                    BundleKey::create(&passphrase, &KdfParams::generate())
                })
                .await
                .map_err(|e| ExportError::Key(TransferError::Kdf(e.to_string())))?
                .map_err(ExportError::Key)?;
                Some((Arc::new(derived.0), derived.1))
            }
        };
        Ok(ExportPlan {
            provider_count: providers.len() as u64,
            providers,
            tokens,
            key,
            token_count,
            exported_at: self.clock.now(),
        })
    }

    async fn existing_providers(&self, ids: &[String]) -> Result<HashSet<String>, DbErr> {
        let mut found = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(PAGE) {
            let rows: Vec<String> = provider::Entity::find()
                .select_only()
                .column(provider::Column::Id)
                .filter(provider::Column::Id.is_in(chunk.to_vec()))
                .into_tuple()
                .all(&self.db)
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Writes the planned bundle to `out`, a page at a time, and records
    /// the export in the audit log. `progress(done, total)` follows the
    /// rows written.
    pub async fn write_export<W>(
        &self,
        who: &Authorized,
        plan: ExportPlan,
        out: &mut W,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<ExportSummary, ExportError>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let secrets = plan.key.is_some();
        let result = self.write_bundle(plan, out, progress).await;
        let (outcome, detail) = match &result {
            Ok(s) => (
                Outcome::Success,
                format!(
                    "exported {} providers and {} tokens{}",
                    s.providers,
                    s.tokens,
                    if s.secrets {
                        ", secrets sealed under a passphrase"
                    } else {
                        ", without secrets"
                    }
                ),
            ),
            Err(e) => (
                Outcome::Failure,
                format!(
                    "export{} stopped: {e}",
                    if secrets { " with secrets" } else { "" }
                ),
            ),
        };
        self.record(who, "transfer.export", outcome, detail).await;
        result
    }

    async fn write_bundle<W>(
        &self,
        plan: ExportPlan,
        out: &mut W,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<ExportSummary, ExportError>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let total = plan.provider_count + plan.token_count;
        let key = plan.key.as_ref().map(|(k, _)| k.as_ref());
        let mut sink = Sink {
            out,
            buf: Vec::with_capacity(256 * 1024),
            bytes: 0,
        };
        let source = Source {
            instance: Some(self.settings.public_url.clone()),
            quiver_version: crate::VERSION.to_owned(),
        };
        sink.head(&plan, &source)?;
        // With secrets, the content is authenticated as it is written.
        let mut mac = plan.key.as_ref().map(|(key, header)| {
            Authenticator::new(key, VERSION, &plan.exported_at, &source, header)
        });
        let mut written_providers: HashSet<String> = HashSet::with_capacity(plan.providers.len());
        let mut done = 0u64;
        let mut first = true;
        for chunk in plan.providers.chunks(PAGE) {
            let mut rows = provider::Entity::find()
                .filter(provider::Column::Id.is_in(chunk.to_vec()))
                .all(&self.db)
                .await?;
            // Keep the plan's order (by name).
            let order: HashMap<&str, usize> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect();
            rows.sort_by_key(|p| order.get(p.id.as_str()).copied().unwrap_or(usize::MAX));
            for p in &rows {
                let entry = self.provider_entry(p, key)?;
                if let Some(mac) = &mut mac {
                    mac.provider(&entry);
                }
                sink.item(&mut first, &entry)?;
                written_providers.insert(p.id.clone());
            }
            done += rows.len() as u64;
            sink.flush_page().await?;
            progress(done, total);
        }
        sink.raw(b"\n],\n\"tokens\": [")?;
        let mut owners: HashMap<String, String> = HashMap::new();
        let mut tokens_written = 0u64;
        let mut first = true;
        let mut after: Option<String> = None;
        let mut id_chunks = match &plan.tokens {
            Tokens::Ids(ids) => Some(ids.chunks(PAGE)),
            _ => None,
        };
        loop {
            let page: Vec<token::Model> = match (&plan.tokens, id_chunks.as_mut()) {
                (Tokens::Ids(_), Some(chunks)) => match chunks.next() {
                    Some(chunk) => {
                        token::Entity::find()
                            .filter(token::Column::Id.is_in(chunk.to_vec()))
                            .order_by_asc(token::Column::Id)
                            .all(&self.db)
                            .await?
                    }
                    None => break,
                },
                (selection, _) => {
                    // Keyset paging: no OFFSET scans, stable under inserts.
                    let mut query = token::Entity::find();
                    if let Tokens::OfProviders(ids) = selection {
                        query = query.filter(token::Column::ProviderId.is_in(ids.clone()));
                    }
                    if let Some(last) = &after {
                        query = query.filter(token::Column::Id.gt(last.clone()));
                    }
                    let page = query
                        .order_by_asc(token::Column::Id)
                        .limit(PAGE as u64)
                        .all(&self.db)
                        .await?;
                    if page.is_empty() {
                        break;
                    }
                    after = page.last().map(|t| t.id.clone());
                    page
                }
            };
            let missing: Vec<String> = page
                .iter()
                .map(|t| t.owner_id.clone())
                .filter(|o| !owners.contains_key(o))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            if !missing.is_empty() {
                let found: Vec<(String, String)> = user::Entity::find()
                    .select_only()
                    .column(user::Column::Id)
                    .column(user::Column::Email)
                    .filter(user::Column::Id.is_in(missing))
                    .into_tuple()
                    .all(&self.db)
                    .await?;
                owners.extend(found);
            }
            for t in &page {
                // A token whose provider was created after the providers
                // were written would dangle: leave it out.
                if !written_providers.contains(&t.provider_id) {
                    tracing::warn!(token = %t.id, "token left out of the export: its provider is not in the bundle");
                    continue;
                }
                let entry = self.token_entry(t, owners.get(&t.owner_id).cloned(), key)?;
                if let Some(mac) = &mut mac {
                    mac.token(&entry);
                }
                sink.item(&mut first, &entry)?;
                tokens_written += 1;
            }
            done += page.len() as u64;
            sink.flush_page().await?;
            progress(done.min(total), total);
        }
        match mac {
            Some(mac) => {
                sink.raw(b"\n],\n\"mac\": ")?;
                sink.json(&mac.finish())?;
                sink.raw(b"\n}\n")?;
            }
            None => sink.raw(b"\n]\n}\n")?,
        }
        sink.flush_page().await?;
        sink.out.flush().await?;
        Ok(ExportSummary {
            providers: written_providers.len() as u64,
            tokens: tokens_written,
            secrets: key.is_some(),
            bytes: sink.bytes,
        })
    }

    fn open(
        &self,
        table: &'static str,
        row: &str,
        column: &'static str,
        sealed: &Option<String>,
    ) -> Result<Option<SecretString>, ExportError> {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let unsealable = || ExportError::Unsealable {
            table,
            row: row.to_owned(),
            column,
        };
        self.sealer
            .open(SealSlot::new(table, row, column), sealed)
            .map_err(|e| {
                tracing::error!(table, row, column, error = %e, "cannot open a sealed column for export");
                unsealable()
            })?
            .into_secret_string()
            .map(Some)
            .map_err(|_| unsealable())
    }

    fn provider_entry(
        &self,
        p: &provider::Model,
        key: Option<&BundleKey>,
    ) -> Result<ProviderEntry, ExportError> {
        let mut entry = ProviderEntry::from(p);
        if let Some(key) = key {
            let seal = |field: ProviderSecret, plain: Option<SecretString>| {
                plain.map(|v| key.seal(SecretSlot::provider(&p.id, field), &v))
            };
            entry.client_secret = seal(
                ProviderSecret::ClientSecret,
                self.open("providers", &p.id, "client_secret", &p.client_secret)?,
            );
            entry.private_key = seal(
                ProviderSecret::PrivateKey,
                self.open("providers", &p.id, "private_key", &p.private_key)?,
            );
            entry.next_client_secret = seal(
                ProviderSecret::NextClientSecret,
                self.open(
                    "providers",
                    &p.id,
                    "next_client_secret",
                    &p.next_client_secret,
                )?,
            );
            // A secret's expiry at the provider travels with the secret.
            if entry.client_secret.is_some() {
                entry.client_secret_expires_at = p.client_secret_expires_at;
            }
            if entry.next_client_secret.is_some() {
                entry.next_client_secret_expires_at = p.next_client_secret_expires_at;
            }
        }
        Ok(entry)
    }

    fn token_entry(
        &self,
        t: &token::Model,
        owner_email: Option<String>,
        key: Option<&BundleKey>,
    ) -> Result<TokenEntry, ExportError> {
        let mut entry = TokenEntry {
            owner_email,
            ..TokenEntry::from(t)
        };
        if let Some(key) = key {
            let seal = |field: TokenSecret, plain: Option<SecretString>| -> Option<SealedValue> {
                plain.map(|v| key.seal(SecretSlot::token(&t.id, field), &v))
            };
            entry.client_secret = seal(
                TokenSecret::ClientSecret,
                self.open("tokens", &t.id, "client_secret", &t.client_secret)?,
            );
            entry.password = seal(
                TokenSecret::Password,
                self.open("tokens", &t.id, "password", &t.password)?,
            );
            entry.access_token = seal(
                TokenSecret::AccessToken,
                self.open("tokens", &t.id, "access_token", &t.access_token)?,
            );
            entry.refresh_token = seal(
                TokenSecret::RefreshToken,
                self.open("tokens", &t.id, "refresh_token", &t.refresh_token)?,
            );
            entry.next_client_secret = seal(
                TokenSecret::NextClientSecret,
                self.open("tokens", &t.id, "next_client_secret", &t.next_client_secret)?,
            );
            if entry.client_secret.is_some() {
                entry.client_secret_expires_at = t.client_secret_expires_at;
            }
            if entry.next_client_secret.is_some() {
                entry.next_client_secret_expires_at = t.next_client_secret_expires_at;
            }
            // The access token's facts travel with it.
            if entry.access_token.is_some() {
                entry.token_type = t.token_type.clone();
                entry.expires_at = t.expires_at;
                entry.granted_scope = t.granted_scope.clone();
                entry.response_fields =
                    crate::tokens::response_fields(t.response_fields.as_deref());
            }
            if entry.refresh_token.is_some() {
                entry.refresh_token_expires_at = t.refresh_token_expires_at;
            }
        }
        Ok(entry)
    }
}

/// The JSON text of a bundle, collected a page at a time.
struct Sink<'w, W> {
    out: &'w mut W,
    buf: Vec<u8>,
    bytes: u64,
}

impl<W: AsyncWrite + Unpin + Send> Sink<'_, W> {
    fn raw(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn json(&mut self, value: &impl Serialize) -> Result<(), ExportError> {
        serde_json::to_writer(&mut self.buf, value).map_err(std::io::Error::from)?;
        Ok(())
    }

    /// The header fields, then the opening of `providers`.
    fn head(&mut self, plan: &ExportPlan, source: &Source) -> Result<(), ExportError> {
        self.raw(b"{\n\"format\": ")?;
        self.json(&FORMAT)?;
        self.raw(b",\n\"version\": ")?;
        self.json(&VERSION)?;
        self.raw(b",\n\"exported_at\": ")?;
        self.json(&plan.exported_at)?;
        self.raw(b",\n\"source\": ")?;
        self.json(source)?;
        self.raw(b",\n\"secrets\": ")?;
        self.json(&plan.key.as_ref().map(|(_, header)| header))?;
        self.raw(b",\n\"providers\": [")
    }

    /// One array element: entries sit on lines of their own.
    fn item(&mut self, first: &mut bool, value: &impl Serialize) -> Result<(), ExportError> {
        self.raw(if *first { b"\n" } else { b",\n" })?;
        *first = false;
        self.json(value)
    }

    async fn flush_page(&mut self) -> Result<(), ExportError> {
        self.out.write_all(&self.buf).await?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}
