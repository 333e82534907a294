//! Export and import bundles (issue 7), the database-free core: the bundle
//! types ([`bundle`]), the passphrase key that seals their secrets
//! ([`passphrase`]) and the reader that checks untrusted bytes ([`reader`]).
//!
//! A bundle never holds a secret in clear: secret fields are sealed under a
//! key derived from the admin's passphrase, or left out.

pub mod bundle;
pub mod passphrase;
pub mod reader;

#[cfg(test)]
mod samples;
#[cfg(test)]
mod tests;

pub use bundle::{
    Bundle, ProviderEntry, ProviderSecret, SealedValue, SecretsHeader, Source, TokenEntry,
    TokenSecret,
};
pub use passphrase::{BundleKey, KdfParams, SecretSlot, TransferError};
pub use reader::{BundleError, Limits, Problem, read_bundle};
