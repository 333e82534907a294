//! Export and import of providers and tokens (the Import/Export page):
//! wire types, server functions, and the service trait the server provides
//! through Leptos context. Admins only.

use serde::{Deserialize, Serialize};

/// Where the import server function is served. Its body is a file upload
/// (`multipart/form-data`), read by the service only once the caller is
/// known to be an admin; the server gives this path its own size limit.
pub const IMPORT_ENDPOINT: &str = "/rpc/import_bundle";

/// The parts of the import upload, sent in this order: the options first,
/// the bundle file last, so that a refused option costs no upload.
pub mod import_form {
    /// The bundle file (required; last).
    pub const BUNDLE: &str = "bundle";
    /// Opens the bundle's secrets, when it has some.
    pub const PASSPHRASE: &str = "passphrase";
    /// `skip` (the default), `overwrite` or `rename` (keep both).
    pub const ON_CONFLICT: &str = "on_conflict";
    /// `true`: apply (write) instead of preview.
    pub const APPLY: &str = "apply";
    /// Chosen by the page to follow the apply with
    /// [`import_progress`](super::import_progress).
    pub const IMPORT_ID: &str = "import_id";
}

/// What to export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// These providers with their tokens; empty: every provider.
    pub provider_ids: Vec<String>,
    /// Seal secrets (client secrets, keys, access and refresh tokens) into
    /// the bundle under `passphrase`.
    pub include_secrets: bool,
    /// Required with `include_secrets`; never stored.
    pub passphrase: Option<String>,
}

/// An export, ready to save.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFile {
    /// `quiver-export-<date>.json`.
    pub file_name: String,
    /// The bundle (JSON).
    pub content: String,
    /// Providers in it.
    pub providers: u64,
    /// Tokens in it.
    pub tokens: u64,
    /// Whether secrets are sealed in it.
    pub secrets: bool,
}

/// A problem or warning at a place in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProblem {
    /// A JSON path such as `$.tokens[3].provider_id`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// One entry of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportItem {
    /// The entry in the bundle, e.g. `$.tokens[3]`.
    pub path: String,
    /// Its name in the bundle.
    pub name: String,
    /// The name it gets here when it is renamed.
    #[serde(default)]
    pub new_name: Option<String>,
    /// Tokens: the status it arrives with.
    #[serde(default)]
    pub status: Option<crate::tokens::TokenStatus>,
    /// Why it is skipped.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Items of one outcome, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportItems {
    pub providers: Vec<ImportItem>,
    pub tokens: Vec<ImportItem>,
}

/// Counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
}

/// The counts of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub providers: ImportCounts,
    pub tokens: ImportCounts,
    /// Tokens that arrive without credentials (`needs_credentials`).
    pub needs_credentials: u64,
}

/// A host the bundle's provider endpoints name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportHost {
    /// `as.example`, or with a port `127.0.0.1:4011`.
    pub host: String,
    /// Where the bundle names it, e.g. `$.providers[0].token_endpoint`.
    pub paths: Vec<String>,
}

/// What an import did or (preview) would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReportView {
    /// Whether anything was written.
    pub applied: bool,
    /// Whether the bundle's secrets were opened.
    pub secrets: bool,
    /// Whether the content was checked against the bundle's
    /// authentication code (a bundle with secrets, with its passphrase).
    #[serde(default)]
    pub authenticated: bool,
    /// Every host the bundle's provider endpoints name.
    #[serde(default)]
    pub endpoint_hosts: Vec<ImportHost>,
    pub summary: ImportSummary,
    pub created: ImportItems,
    pub updated: ImportItems,
    pub skipped: ImportItems,
    /// Worth knowing; does not stop the import.
    pub warnings: Vec<ImportProblem>,
    /// Stops the import: with any, nothing is written.
    pub problems: Vec<ImportProblem>,
}

/// How far an apply has got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProgressView {
    /// `reading`, `unlocking`, `planning`, `writing`, `committing`, `done`
    /// or `failed`.
    pub phase: String,
    /// Rows written so far.
    pub done: u64,
    /// Rows to write (0 until planned).
    pub total: u64,
    /// Whether it has ended.
    pub finished: bool,
}

/// The server side of the Import/Export page.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait TransferService: Send + Sync + 'static {
    /// Admin: a bundle of the chosen providers (all by default).
    async fn export(&self, parts: &Parts, input: ExportInput) -> Result<ExportFile, AppError>;
    /// Admin: previews or applies the uploaded bundle (the parts of
    /// [`import_form`]). The upload is read only after the caller is known
    /// to be an admin, and no further than the instance's import limit.
    async fn import(
        &self,
        parts: &Parts,
        upload: leptos::server_fn::codec::MultipartData,
    ) -> Result<ImportReportView, AppError>;
    /// Admin: the progress of an apply started on this server.
    async fn progress(
        &self,
        parts: &Parts,
        import_id: String,
    ) -> Result<ImportProgressView, AppError>;
}

#[cfg(feature = "ssr")]
use crate::error::AppError;
#[cfg(feature = "ssr")]
use leptos::server_fn::http_export::request::Parts;

mod server_fns {
    use leptos::prelude::*;

    use super::*;
    use crate::error::AppError;

    /// Admin: exports providers and tokens as a bundle.
    #[server(prefix = "/rpc", output = crate::wire::JsonText, input = leptos::server_fn::codec::Json)]
    pub async fn export_bundle(input: ExportInput) -> Result<ExportFile, AppError> {
        let (s, p) = crate::service::<dyn TransferService>()?;
        crate::error::respond(s.export(&p, input).await)
    }

    /// Admin: previews or applies an import, sent as a file upload with
    /// the parts of [`import_form`](super::import_form).
    #[server(
        prefix = "/rpc",
        output = crate::wire::JsonText,
        endpoint = "import_bundle",
        input = leptos::server_fn::codec::MultipartFormData
    )]
    pub async fn import_bundle(
        upload: leptos::server_fn::codec::MultipartData,
    ) -> Result<ImportReportView, AppError> {
        let (s, p) = crate::service::<dyn TransferService>()?;
        crate::error::respond(s.import(&p, upload).await)
    }

    /// Admin: how far an apply has got.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn import_progress(import_id: String) -> Result<ImportProgressView, AppError> {
        let (s, p) = crate::service::<dyn TransferService>()?;
        crate::error::respond(s.progress(&p, import_id).await)
    }
}

pub use server_fns::*;
