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

mod plan;
mod report;
#[cfg(test)]
mod tests;
mod write;

use std::fmt;
use std::sync::Arc;

use chrono::Duration;
use sea_orm::{DbErr, EntityTrait};
use serde::{Deserialize, Serialize};

use super::bundle::Bundle;
use super::mac::{self, MacError};
use super::passphrase::{BundleKey, TransferError};
use super::progress::{self, Phase, Tracker};
use super::reader::{BundleError, Limits, Problem, read_bundle};
use super::service::{Authorized, Transfer};
use crate::audit::Outcome;
use crate::db::entity::provider;
use crate::secret::SecretString;

pub use plan::unique_name;
pub use report::{Counts, EndpointHost, ImportReport, Item, Items, Summary, endpoint_hosts};
use report::{hosts_text, warn};

/// Rows per insert statement: far below the bound-parameter limits of
/// SQLite (32766) and PostgreSQL (65535) at about 33 columns a row.
pub const BATCH: usize = 500;

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

/// A name of a closed set the reader has checked, refused all the same
/// with its path.
fn unknown_name(e: app::names::UnknownName, path: String) -> ImportError {
    ImportError::Bundle(BundleError::Invalid(vec![Problem {
        path,
        message: e.must_be(),
    }]))
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
}
