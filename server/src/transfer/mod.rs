//! Export and import bundles: the bundle types ([`bundle`]), the
//! passphrase key that seals their secrets ([`passphrase`]) and
//! authenticates their content ([`mac`]), the reader that
//! checks untrusted bytes ([`reader`]), and the database side: streamed
//! export ([`export`]), preview and apply of an import in one transaction
//! ([`import`]), import progress ([`progress`]) and the access check and
//! audit entry around both ([`service`]).
//!
//! A bundle never holds a secret in clear: secret fields are sealed under a
//! key derived from the admin's passphrase, or left out. A bundle with
//! secrets is authenticated as a whole; one without cannot be, and its
//! preview lists every host it would write.

pub mod bundle;
pub mod entries;
mod errors;
pub mod export;
pub mod import;
pub mod mac;
pub mod passphrase;
pub mod progress;
pub mod reader;
pub mod service;
mod text;

#[cfg(test)]
mod samples;
#[cfg(test)]
mod tests;

pub use bundle::{
    Bundle, ProviderEntry, ProviderSecret, SealedValue, SecretsHeader, Source, TokenEntry,
    TokenSecret,
};
pub use export::{ExportError, ExportPlan, ExportRequest, ExportSummary};
pub use import::{ImportError, ImportOptions, ImportReport, Mode, OnConflict};
pub use passphrase::{BundleKey, KdfParams, SecretSlot, TransferError};
pub use reader::{BundleError, Limits, Problem, read_bundle};
pub use service::{Authorized, Transfer, TransferSettings};
