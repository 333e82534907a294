//! Import: a checked bundle into the database, previewed first, applied in
//! one transaction.
//!
//! The plan is made the same way for both modes: the bundle is read (every
//! structural and semantic problem with its JSON path), the passphrase is
//! checked on the bundle's check value before anything else, then the
//! whole content on its authentication code (an edited bundle is refused
//! whole), every sealed value is opened, and each entry is matched
//! against the instance (names of providers; owner and name of tokens)
//! under the conflict policy. A preview answers with that plan and every
//! host the bundle's endpoints name; apply writes it in one transaction,
//! rows in batches, and either all of it is stored or none.
//!
//! References between tokens and providers use the bundle's own ids and
//! are remapped to fresh ids (or to the existing provider a skipped or
//! overwritten entry stands for). Secrets are sealed again with this
//! instance's sealer. A token that arrives without an access token has the
//! status `needs_credentials`; an imported token whose renewal is already
//! due is spread over the next minutes, so an import never sends a burst
//! of refreshes to a provider.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::bundle::{Bundle, ProviderEntry, ProviderSecret, TokenEntry, TokenSecret};
use super::mac::{self, MacError};
use super::passphrase::{BundleKey, SecretSlot, TransferError};
use super::progress::{self, Phase, Tracker};
use super::reader::{BundleError, Limits, Problem, read_bundle};
use super::service::{Authorized, Transfer};
use crate::audit::Outcome;
use crate::db::entity::{provider, token};
use crate::oauth::client_auth::ClientAuthMethod;
use crate::oauth::signing_key::{SigningAlg, SigningKey};
use crate::oauth::url_policy;
use crate::seal::SealSlot;
use crate::secret::SecretString;
use crate::tokens::renewal::due;
use crate::tokens::{Flow, TokenStatus};

/// Rows per insert statement: far below the bound-parameter limits of
/// SQLite (32766) and PostgreSQL (65535) at about 33 columns a row.
pub const BATCH: usize = 500;

/// Longest provider or token name (the services' limit).
const MAX_NAME_CHARS: usize = 100;

/// Imported tokens already due for renewal are spread over this window.
pub const DUE_SPREAD: Duration = Duration::minutes(10);

/// Preview only, or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Report what would happen; write nothing.
    #[default]
    Preview,
    /// Write everything, in one transaction.
    Apply,
}

/// What to do when a name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Keep what is here; the bundle's entry is left out (a skipped
    /// provider's tokens use the existing provider).
    #[default]
    Skip,
    /// Replace the settings of what is here with the bundle's.
    Overwrite,
    /// Keep both: the bundle's entry gets a new name, `Name (2)`.
    Rename,
}

impl OnConflict {
    /// The policy named `name` (`skip`, `overwrite`, `rename`); an empty
    /// name is the default, `skip`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "" | "skip" => Some(Self::Skip),
            "overwrite" => Some(Self::Overwrite),
            "rename" => Some(Self::Rename),
            _ => None,
        }
    }

    /// Its name, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Overwrite => "overwrite",
            Self::Rename => "rename",
        }
    }
}

/// How to import.
#[derive(Clone, Default)]
pub struct ImportOptions {
    /// Preview or apply.
    pub mode: Mode,
    /// The conflict policy.
    pub on_conflict: OnConflict,
    /// Opens the bundle's secrets.
    pub passphrase: Option<SecretString>,
}

impl fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportOptions")
            .field("mode", &self.mode)
            .field("on_conflict", &self.on_conflict)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// One entry of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The entry in the bundle, e.g. `$.tokens[3]`.
    pub path: String,
    /// The bundle's id for it.
    pub bundle_id: String,
    /// Its name in the bundle.
    pub name: String,
    /// The name it gets here, when it is renamed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Tokens: the email of the account that owns it here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tokens: the status it arrives with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TokenStatus>,
    /// Its id here: the existing row (updated, skipped) or, after apply,
    /// the new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Items of one outcome, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Items {
    /// Providers.
    pub providers: Vec<Item>,
    /// Tokens.
    pub tokens: Vec<Item>,
}

/// Counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// New rows.
    pub created: u64,
    /// Rows whose settings are replaced.
    pub updated: u64,
    /// Entries left out.
    pub skipped: u64,
}

/// The counts of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Providers.
    pub providers: Counts,
    /// Tokens.
    pub tokens: Counts,
    /// Tokens that arrive without an access token (status
    /// `needs_credentials`).
    pub needs_credentials: u64,
}

/// A host named by the bundle's provider endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointHost {
    /// The host, with its port when the URL names one (`as.example`,
    /// `127.0.0.1:4011`).
    pub host: String,
    /// Where it is named, e.g. `$.providers[0].token_endpoint`.
    pub paths: Vec<String>,
}

/// The provider fields that hold a URL Quiver talks to (or, for
/// `assertion_audience`, a URL its client assertions are made for).
const ENDPOINT_FIELDS: [&str; 7] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "refresh_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "assertion_audience",
];

fn endpoint_value<'p>(p: &'p ProviderEntry, field: &str) -> Option<&'p str> {
    match field {
        "issuer" => p.issuer.as_deref(),
        "authorization_endpoint" => p.authorization_endpoint.as_deref(),
        "token_endpoint" => Some(&p.token_endpoint),
        "refresh_endpoint" => p.refresh_endpoint.as_deref(),
        "revocation_endpoint" => p.revocation_endpoint.as_deref(),
        "jwks_uri" => p.jwks_uri.as_deref(),
        "assertion_audience" => p.assertion_audience.as_deref(),
        _ => None,
    }
}

/// Every endpoint host of a bundle, by host name.
pub fn endpoint_hosts(bundle: &Bundle) -> Vec<EndpointHost> {
    let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, p) in bundle.providers.iter().enumerate() {
        for field in ENDPOINT_FIELDS {
            let Some(url) = endpoint_value(p, field).and_then(|v| url::Url::parse(v).ok()) else {
                continue;
            };
            let Some(host) = url.host_str() else { continue };
            let host = match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            hosts
                .entry(host)
                .or_default()
                .push(format!("$.providers[{i}].{field}"));
        }
    }
    hosts
        .into_iter()
        .map(|(host, paths)| EndpointHost { host, paths })
        .collect()
}

fn hosts_text(hosts: &[EndpointHost]) -> String {
    const SHOWN: usize = 10;
    let mut text = hosts
        .iter()
        .take(SHOWN)
        .map(|h| h.host.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if hosts.len() > SHOWN {
        text.push_str(&format!(" and {} more", hosts.len() - SHOWN));
    }
    if text.is_empty() {
        text.push_str("none");
    }
    text
}

/// What an import did, or (preview) would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// `preview` or `apply`.
    pub mode: Mode,
    /// The conflict policy used.
    pub on_conflict: OnConflict,
    /// Whether anything was written (apply, and it succeeded).
    pub applied: bool,
    /// Whether the bundle's secrets were opened (and, on apply, stored).
    pub secrets: bool,
    /// Whether the bundle's content was checked against its
    /// authentication code (only a bundle with secrets, previewed or
    /// applied with its passphrase, can be).
    pub authenticated: bool,
    /// Every host the bundle's provider endpoints would make Quiver talk
    /// to, with where each is named: what to check before applying a
    /// bundle that is not authenticated.
    pub endpoint_hosts: Vec<EndpointHost>,
    /// Counts.
    pub summary: Summary,
    /// New rows.
    pub created: Items,
    /// Rows replaced (overwrite).
    pub updated: Items,
    /// Entries left out (skip).
    pub skipped: Items,
    /// Things to know that do not stop the import (an unknown owner, a
    /// rename forced by a name taken within the bundle, a missing secret).
    pub warnings: Vec<Problem>,
    /// What stops the import; with any, nothing is written.
    pub problems: Vec<Problem>,
}

impl ImportReport {
    fn new(options: &ImportOptions) -> Self {
        Self {
            mode: options.mode,
            on_conflict: options.on_conflict,
            applied: false,
            secrets: false,
            authenticated: false,
            endpoint_hosts: Vec::new(),
            summary: Summary::default(),
            created: Items::default(),
            updated: Items::default(),
            skipped: Items::default(),
            warnings: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn audit_detail(&self) -> String {
        let p = self.summary.providers;
        let t = self.summary.tokens;
        format!(
            "imported with on_conflict={}: providers {} created, {} updated, {} skipped; tokens {} created, {} updated, {} skipped ({} need credentials); secrets {}",
            self.on_conflict.as_str(),
            p.created,
            p.updated,
            p.skipped,
            t.created,
            t.updated,
            t.skipped,
            self.summary.needs_credentials,
            if self.secrets {
                "imported"
            } else {
                "not included"
            }
        )
    }
}

/// Why an import was refused or failed; in every case nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not a usable bundle (too large, not JSON, truncated,
    /// too deep, another format or version, wrong fields, bad references).
    #[error("{0}; nothing was imported")]
    Bundle(BundleError),
    /// The bundle reads, but cannot go into this instance as it is; the
    /// report lists every problem with its path.
    #[error("{}; nothing was imported", problems_summary(&.0.problems))]
    Invalid(Box<ImportReport>),
    /// The bundle holds secrets and no passphrase was given (apply).
    #[error(
        "this bundle holds sealed secrets: give the passphrase it was exported with; nothing was imported"
    )]
    PassphraseRequired,
    /// The passphrase does not open the bundle.
    #[error("wrong passphrase: it does not open this bundle's secrets; nothing was imported")]
    WrongPassphrase,
    /// The bundle's key parameters cannot be used.
    #[error("the bundle's secrets cannot be opened: {0}; nothing was imported")]
    Secrets(TransferError),
    /// The content does not match the bundle's authentication code: it
    /// was changed after it was exported.
    #[error(
        "the bundle was altered after it was exported: {0}, so none of it can be trusted (an endpoint may now point elsewhere); nothing was imported"
    )]
    Altered(&'static str),
    /// Sealed secrets without an authentication code.
    #[error(
        "this bundle holds sealed secrets but no authentication code ($.mac): it was written by a Quiver that did not authenticate bundles yet, or the code was removed, and an edit (such as a token endpoint moved to another host) cannot be detected without it. Export it again from its instance; or, after checking every endpoint host in a preview, remove $.secrets, $.mac and every sealed value to import it without secrets; nothing was imported"
    )]
    Unauthenticated,
    /// The import id is not 1 to 64 letters, digits, `-` or `_`.
    #[error("import_id must be 1 to 64 letters, digits, - or _")]
    BadImportId,
    /// The import id is in use by a running import.
    #[error(transparent)]
    Busy(#[from] progress::AlreadyRunning),
    /// The database failed; the transaction was rolled back.
    #[error("the import failed and was rolled back; nothing was imported")]
    Storage(#[from] DbErr),
}

/// A name of a closed set read from the bundle (the reader has checked it;
/// a refusal here names the path all the same).
fn wire_name<T>(text: &str, path: String) -> Result<T, ImportError>
where
    T: std::str::FromStr<Err = app::names::UnknownName>,
{
    text.parse().map_err(|e: app::names::UnknownName| {
        ImportError::Bundle(BundleError::Invalid(vec![Problem {
            path,
            message: e.must_be(),
        }]))
    })
}

impl ImportError {
    /// The problems with their JSON paths (empty when the error has none).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Self::Bundle(e) => e.problems(),
            Self::Invalid(report) => report.problems.clone(),
            Self::WrongPassphrase | Self::PassphraseRequired => vec![Problem {
                path: "$.secrets".into(),
                message: self.to_string(),
            }],
            Self::Secrets(e) => vec![Problem {
                path: "$.secrets".into(),
                message: e.to_string(),
            }],
            Self::Altered(_) | Self::Unauthenticated => vec![Problem {
                path: "$.mac".into(),
                message: self.to_string(),
            }],
            Self::BadImportId | Self::Busy(_) | Self::Storage(_) => Vec::new(),
        }
    }
}

fn problems_summary(problems: &[Problem]) -> String {
    let shown: Vec<String> = problems.iter().take(3).map(Problem::to_string).collect();
    let n = problems.len();
    let more = if n > 3 {
        format!("; and {} more", n - 3)
    } else {
        String::new()
    };
    format!(
        "the bundle cannot be imported here ({n} {}): {}{more}",
        if n == 1 { "problem" } else { "problems" },
        shown.join("; ")
    )
}

/// A progress callback: the phase, then rows written and rows in all.
pub type ProgressFn<'a> = &'a (dyn Fn(Phase, u64, u64) + Send + Sync);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Update,
    Skip,
}

/// What the bundle's provider entry becomes here.
struct ProviderPlan {
    index: usize,
    action: Action,
    /// The row here: new, or the existing one.
    id: String,
    name: String,
}

/// What the bundle's token entry becomes here.
struct TokenPlan {
    index: usize,
    action: Action,
    id: String,
    name: String,
    owner_id: String,
    provider_id: String,
}

/// The settings of a provider that decide which flows its tokens can use.
#[derive(Clone)]
struct ProviderShape {
    method: Option<ClientAuthMethod>,
    has_authorization_endpoint: bool,
    has_jwks_uri: bool,
}

impl ProviderShape {
    fn of_entry(p: &ProviderEntry) -> Self {
        Self {
            method: p.client_auth_method.parse().ok(),
            has_authorization_endpoint: p.authorization_endpoint.is_some(),
            has_jwks_uri: p.jwks_uri.is_some(),
        }
    }

    fn of_model(p: &provider::Model) -> Self {
        Self {
            method: Some(p.client_auth_method),
            has_authorization_endpoint: p.authorization_endpoint.is_some(),
            has_jwks_uri: p.jwks_uri.is_some(),
        }
    }

    /// Why `flow` cannot be used with this provider, if it cannot.
    fn refuses(&self, flow: Flow) -> Option<&'static str> {
        if self.method == Some(ClientAuthMethod::PrivateKeyJwt) && flow != Flow::ClientCredentials {
            Some(
                "the existing provider uses private_key_jwt, which works only with client_credentials",
            )
        } else if flow.is_interactive() && !self.has_authorization_endpoint {
            Some(
                "this flow needs a browser, but the existing provider has no authorization_endpoint",
            )
        } else if flow == Flow::OidcHybrid && !self.has_jwks_uri {
            Some("oidc_hybrid needs the existing provider's jwks_uri to check id_tokens")
        } else {
            None
        }
    }
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

fn item(path: String, bundle_id: &str, name: &str) -> Item {
    Item {
        path,
        bundle_id: bundle_id.to_owned(),
        name: name.to_owned(),
        new_name: None,
        owner: None,
        status: None,
        id: None,
        reason: None,
    }
}

fn warn(report: &mut ImportReport, path: impl Into<String>, message: impl Into<String>) {
    report.warnings.push(Problem {
        path: path.into(),
        message: message.into(),
    });
}

fn problem(report: &mut ImportReport, path: impl Into<String>, message: impl Into<String>) {
    report.problems.push(Problem {
        path: path.into(),
        message: message.into(),
    });
}

fn json_map(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

fn to_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl Transfer {
    /// Reads `bytes` as a bundle (with this instance's size limit) and
    /// imports it. `progress` follows the phases and the rows written.
    pub async fn import(
        &self,
        who: &Authorized,
        bytes: &[u8],
        options: ImportOptions,
        progress: ProgressFn<'_>,
    ) -> Result<ImportReport, ImportError> {
        progress(Phase::Reading, 0, 0);
        let read = read_bundle(bytes, &self.import_limits());
        self.import_read(who, read, options, progress).await
    }

    /// [`Self::import`], its progress published under `import_id` (when
    /// given) for `GET /api/v1/import/{import_id}/progress` and the page.
    pub async fn import_tracked(
        &self,
        who: &Authorized,
        bytes: &[u8],
        options: ImportOptions,
        import_id: Option<&str>,
    ) -> Result<ImportReport, ImportError> {
        let tracker = match import_id {
            Some(id) if !progress::valid_id(id) => return Err(ImportError::BadImportId),
            Some(id) => progress::registry().start(id)?,
            None => Tracker::none(),
        };
        let on_progress = |phase: Phase, done: u64, total: u64| {
            tracker.phase(phase);
            if phase == Phase::Writing || phase == Phase::Committing {
                tracker.progress(done, total);
            }
        };
        let result = self.import(who, bytes, options, &on_progress).await;
        tracker.finish(result.as_ref().map(|_| ()).map_err(ToString::to_string));
        result
    }

    /// What the reader accepts here: `QUIVER_IMPORT_MAX_BYTES`.
    pub fn import_limits(&self) -> Limits {
        Limits {
            max_bytes: self.settings.import_max_bytes,
            ..Limits::default()
        }
    }

    /// Imports what [`read_bundle`] made of a file (the CLI reads it first
    /// to learn whether a passphrase is needed). An apply, refused or not,
    /// leaves one audit entry.
    pub async fn import_read(
        &self,
        who: &Authorized,
        read: Result<Bundle, BundleError>,
        options: ImportOptions,
        progress: ProgressFn<'_>,
    ) -> Result<ImportReport, ImportError> {
        let mode = options.mode;
        let result = match read {
            Ok(bundle) => self.import_bundle(who, &bundle, options, progress).await,
            Err(e) => Err(ImportError::Bundle(e)),
        };
        if mode == Mode::Apply
            && let Err(e) = &result
        {
            self.record(who, "transfer.import", Outcome::Failure, e.to_string())
                .await;
        }
        result
    }

    /// Imports a bundle that [`read_bundle`] accepted.
    async fn import_bundle(
        &self,
        who: &Authorized,
        bundle: &Bundle,
        options: ImportOptions,
        progress: ProgressFn<'_>,
    ) -> Result<ImportReport, ImportError> {
        let mut report = ImportReport::new(&options);
        report.endpoint_hosts = endpoint_hosts(bundle);
        let key = self.unlock(bundle, &options, &mut report, progress).await?;
        if let Some(key) = &key {
            mac::verify(key, bundle).map_err(|e| match e {
                MacError::Missing => ImportError::Unauthenticated,
                MacError::Malformed => ImportError::Altered("its authentication code is malformed"),
                MacError::Mismatch => ImportError::Altered(
                    "its content (an endpoint, a name, a value, an entry added or removed) no longer matches its authentication code",
                ),
            })?;
            report.authenticated = true;
        } else {
            let why = if bundle.secrets.is_some() {
                "without its passphrase this preview cannot check that the bundle is as it was exported"
            } else {
                "this bundle holds no secrets, so nothing proves it is as it was exported"
            };
            let message = format!(
                "{why}: check the hosts it would write before applying it (endpoint_hosts): {}",
                hosts_text(&report.endpoint_hosts)
            );
            warn(&mut report, "$", message);
        }
        progress(Phase::Planning, 0, 0);
        self.check_against_instance(bundle, key.as_deref(), &mut report);
        let existing: Vec<provider::Model> = provider::Entity::find().all(&self.db).await?;
        let providers = self.plan_providers(
            bundle,
            &existing,
            options.on_conflict,
            key.is_some(),
            &mut report,
        );
        let tokens = self
            .plan_tokens(
                bundle,
                &existing,
                &providers,
                who,
                options.on_conflict,
                key.is_some(),
                &mut report,
            )
            .await?;
        if !report.problems.is_empty() {
            return Err(ImportError::Invalid(Box::new(report)));
        }
        if options.mode == Mode::Preview {
            return Ok(report);
        }
        self.apply(
            bundle,
            key.as_deref(),
            &existing,
            &providers,
            &tokens,
            &mut report,
            progress,
        )
        .await?;
        report.applied = true;
        self.record(
            who,
            "transfer.import",
            Outcome::Success,
            report.audit_detail(),
        )
        .await;
        Ok(report)
    }

    /// Derives the bundle key and checks it on the check value, before
    /// anything else is looked at.
    async fn unlock(
        &self,
        bundle: &Bundle,
        options: &ImportOptions,
        report: &mut ImportReport,
        progress: ProgressFn<'_>,
    ) -> Result<Option<Arc<BundleKey>>, ImportError> {
        match (&bundle.secrets, &options.passphrase) {
            (None, passphrase) => {
                if passphrase.as_ref().is_some_and(|p| !p.is_empty()) {
                    warn(
                        report,
                        "$.secrets",
                        "the bundle holds no secrets; the passphrase is not needed",
                    );
                }
                Ok(None)
            }
            (Some(_), None) if options.mode == Mode::Apply => Err(ImportError::PassphraseRequired),
            (Some(_), None) => {
                warn(
                    report,
                    "$.secrets",
                    "the bundle holds sealed secrets: give its passphrase to import them (apply needs it)",
                );
                Ok(None)
            }
            (Some(header), Some(passphrase)) => {
                progress(Phase::Unlocking, 0, 0);
                let (header, passphrase) = (header.clone(), passphrase.clone());
                // Argon2id is slow on purpose: keep it off the async workers.
                let key =
                    tokio::task::spawn_blocking(move || BundleKey::unlock(&passphrase, &header))
                        .await
                        .map_err(|e| ImportError::Secrets(TransferError::Kdf(e.to_string())))?
                        .map_err(|e| match e {
                            TransferError::WrongPassphrase | TransferError::EmptyPassphrase => {
                                ImportError::WrongPassphrase
                            }
                            other => ImportError::Secrets(other),
                        })?;
                report.secrets = true;
                Ok(Some(Arc::new(key)))
            }
        }
    }

    /// What the reader cannot know: this instance's URL policy, and
    /// whether every sealed value opens (and every private key parses).
    fn check_against_instance(
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
                        if let Err(e) = SigningKey::from_pem(pem.expose(), alg, p.key_id.as_deref())
                        {
                            problem(
                                report,
                                format!("$.providers[{i}].private_key"),
                                format!("the private key {e}"),
                            );
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

    fn plan_providers(
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
            let lacks_key = entry.client_auth_method.parse() == Ok(ClientAuthMethod::PrivateKeyJwt)
                && !(with_secrets && entry.private_key.is_some());
            let kept_key = action == Action::Update
                && !with_secrets
                && by_name.get(name).is_some_and(|h| h.private_key.is_some());
            if lacks_key && action != Action::Skip && !kept_key {
                warn(
                    report,
                    format!("{path}.private_key"),
                    "private_key_jwt without a private key: upload or generate one (PATCH the provider) before its tokens can be requested",
                );
            }
            match action {
                Action::Create => {
                    report.summary.providers.created += 1;
                    report.created.providers.push(it);
                }
                Action::Update => {
                    it.id = Some(id.clone());
                    report.summary.providers.updated += 1;
                    report.updated.providers.push(it);
                }
                Action::Skip => {
                    it.id = Some(id.clone());
                    it.reason = Some("a provider with this name exists; the bundle's tokens for it use the existing one".into());
                    report.summary.providers.skipped += 1;
                    report.skipped.providers.push(it);
                }
            }
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
    async fn plan_tokens(
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
                    .map(|m| ProviderShape::of_model(m))
                    .unwrap_or_else(|| ProviderShape::of_entry(entry)),
                _ => ProviderShape::of_entry(entry),
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
            if let Ok(flow) = t.flow.parse::<Flow>()
                && kept_provider
                && let Some(why) = shape.refuses(flow)
            {
                problem(report, format!("{path}.flow"), why);
            }
            if kept_provider
                && !t.use_default_keys
                && shape.method == Some(ClientAuthMethod::PrivateKeyJwt)
            {
                problem(
                    report,
                    format!("{path}.use_default_keys"),
                    "must be true: the existing provider uses private_key_jwt, whose key signs for the provider's client only",
                );
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
                Action::Create => {
                    it.status = Some(arriving);
                    report.summary.tokens.created += 1;
                    if arriving == TokenStatus::NeedsCredentials {
                        report.summary.needs_credentials += 1;
                    }
                    report.created.tokens.push(it);
                }
                Action::Update => {
                    // Without secrets an overwritten token keeps its own.
                    if with_secrets {
                        it.status = Some(arriving);
                        if arriving == TokenStatus::NeedsCredentials {
                            report.summary.needs_credentials += 1;
                        }
                    }
                    it.id = Some(id.clone());
                    report.summary.tokens.updated += 1;
                    report.updated.tokens.push(it);
                }
                Action::Skip => {
                    it.id = Some(id.clone());
                    it.reason = Some("this owner has a token with this name".into());
                    report.summary.tokens.skipped += 1;
                    report.skipped.tokens.push(it);
                }
            }
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

    /// Writes the plan in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
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
        sealed: Option<&super::bundle::SealedValue>,
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
        Ok(provider::Model {
            id: plan.id.clone(),
            name: plan.name.clone(),
            issuer: p.issuer.clone(),
            authorization_endpoint: p.authorization_endpoint.clone(),
            token_endpoint: p.token_endpoint.trim().to_owned(),
            refresh_endpoint: p.refresh_endpoint.clone(),
            revocation_endpoint: p.revocation_endpoint.clone(),
            jwks_uri: p.jwks_uri.clone(),
            client_id: p.client_id.clone(),
            client_secret: self.reseal(
                key,
                SecretSlot::provider(&p.id, ProviderSecret::ClientSecret),
                p.client_secret.as_ref(),
                "providers",
                &plan.id,
                "client_secret",
            )?,
            client_auth_method: wire_name(
                &p.client_auth_method,
                format!("$.providers[{}].client_auth_method", plan.index),
            )?,
            private_key: self.reseal(
                key,
                SecretSlot::provider(&p.id, ProviderSecret::PrivateKey),
                p.private_key.as_ref(),
                "providers",
                &plan.id,
                "private_key",
            )?,
            key_id: p.key_id.clone(),
            signing_alg: p.signing_alg.clone(),
            assertion_audience: p.assertion_audience.clone(),
            pkce: p.pkce,
            scope_separator: p.scope_separator.clone(),
            default_lifetime_secs: p.default_lifetime_secs,
            expires_in_millis: p.expires_in_millis,
            authorize_params: json_map(&p.authorize_params),
            token_params: json_map(&p.token_params),
            connect_timeout_ms: i32::try_from(p.connect_timeout_ms).unwrap_or(i32::MAX),
            timeout_ms: i32::try_from(p.timeout_ms).unwrap_or(i32::MAX),
            iss_parameter_supported: p.iss_parameter_supported,
            refresh_concurrency: i32::try_from(p.refresh_concurrency).unwrap_or(1),
            refresh_rate_per_minute: i32::try_from(p.refresh_rate_per_minute).unwrap_or(0),
            created_at: now,
            updated_at: now,
        })
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
                if here.private_key.is_some() && new.key_id.is_none() {
                    new.key_id = here.key_id.clone();
                    new.signing_alg = here.signing_alg.clone();
                }
            } else if here.client_secret.is_some() || here.private_key.is_some() {
                warn(
                    report,
                    format!("$.providers[{index}].token_endpoint"),
                    "the endpoints move to another origin: the stored client secret and private key are dropped; supply them again",
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
        let seal = |field: TokenSecret, column: &str| {
            self.reseal(
                key,
                SecretSlot::token(&t.id, field),
                t.sealed(field),
                "tokens",
                &plan.id,
                column,
            )
        };
        let access_token = seal(TokenSecret::AccessToken, "access_token")?;
        let has_access = access_token.is_some();
        let mut model = token::Model {
            id: plan.id.clone(),
            name: plan.name.clone(),
            owner_id: plan.owner_id.clone(),
            provider_id: plan.provider_id.clone(),
            flow: wire_name(&t.flow, format!("$.tokens[{}].flow", plan.index))?,
            use_default_keys: t.use_default_keys,
            client_id: t.client_id.clone(),
            client_secret: seal(TokenSecret::ClientSecret, "client_secret")?,
            username: t.username.clone(),
            password: seal(TokenSecret::Password, "password")?,
            resource: t.resource.clone(),
            scope: t.scope.clone(),
            additional_values: json_map(&t.additional_values),
            status: if has_access {
                TokenStatus::Active
            } else {
                TokenStatus::NeedsCredentials
            },
            access_token,
            refresh_token: seal(TokenSecret::RefreshToken, "refresh_token")?,
            token_type: t.token_type.clone().filter(|_| has_access),
            expires_at: t.expires_at.filter(|_| has_access),
            granted_scope: t.granted_scope.clone().filter(|_| has_access),
            identity: None,
            last_error: None,
            last_refreshed_at: None,
            refresh_margin_secs: to_i32(t.refresh_margin_secs),
            lease_owner: None,
            lease_until: None,
            auto_refresh: t.auto_refresh,
            refresh_lead_secs: to_i32(t.refresh_lead_secs),
            refresh_due_at: None,
            failure_count: 0,
            created_at: now,
            updated_at: now,
        };
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
            if here.provider_id == plan.provider_id {
                new.access_token = here.access_token.clone();
                new.refresh_token = here.refresh_token.clone();
                new.token_type = here.token_type.clone();
                new.expires_at = here.expires_at;
                new.granted_scope = here.granted_scope.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_count_up_and_fit_the_limit() {
        let taken: HashSet<String> = ["A", "A (2)"].into_iter().map(String::from).collect();
        assert_eq!(unique_name("A", |n| taken.contains(n)), "A (3)");
        assert_eq!(unique_name(" B ", |n| taken.contains(n)), "B (2)");
        let long = "x".repeat(100);
        let renamed = unique_name(&long, |_| false);
        assert_eq!(renamed.chars().count(), 100);
        assert!(renamed.ends_with(" (2)"));
    }

    #[test]
    fn modes_and_policies_read_their_wire_names() {
        let m: Mode = serde_json::from_str("\"apply\"").unwrap();
        assert_eq!(m, Mode::Apply);
        let c: OnConflict = serde_json::from_str("\"rename\"").unwrap();
        assert_eq!(c, OnConflict::Rename);
        assert!(serde_json::from_str::<OnConflict>("\"merge\"").is_err());
    }

    #[test]
    fn options_debug_hides_the_passphrase() {
        let options = ImportOptions {
            passphrase: Some(SecretString::new("hunter2-secret")),
            ..ImportOptions::default()
        };
        let text = format!("{options:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn an_existing_private_key_jwt_provider_refuses_other_flows() {
        let shape = ProviderShape {
            method: Some(ClientAuthMethod::PrivateKeyJwt),
            has_authorization_endpoint: true,
            has_jwks_uri: true,
        };
        assert!(shape.refuses(Flow::Password).is_some());
        assert!(shape.refuses(Flow::ClientCredentials).is_none());
        let no_browser = ProviderShape {
            method: Some(ClientAuthMethod::ClientSecretBasic),
            has_authorization_endpoint: false,
            has_jwks_uri: false,
        };
        assert!(no_browser.refuses(Flow::AuthorizationCode).is_some());
    }
}
