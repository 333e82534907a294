//! The export bundle as it is written to JSON: `"format": "quiver-export"`,
//! `"version": 1`, a header for sealed secrets, then providers and tokens,
//! and, with secrets, the authentication code of all of it (`mac`).
//!
//! Entries carry the bundle's own ids, so the importer can resolve a token's
//! provider inside the bundle and remap both to fresh ids. Secret fields are
//! [`SealedValue`]s, never plain strings: a bundle cannot hold a secret in
//! clear, and a hand-written plain string is rejected without being echoed.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use super::entries::{ProviderEntry, TokenEntry};

/// The value of `format`.
pub const FORMAT: &str = "quiver-export";
/// The version this code writes.
pub const VERSION: u32 = 1;
/// The versions this code reads.
pub const SUPPORTED_VERSIONS: &[u32] = &[VERSION];
/// The only key derivation a bundle may name.
pub const KDF_ALGORITHM: &str = "argon2id";
/// The only cipher a bundle may name.
pub const CIPHER: &str = "xchacha20poly1305";

/// A whole bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// One of [`SUPPORTED_VERSIONS`].
    pub version: u32,
    /// When the bundle was written.
    pub exported_at: DateTime<Utc>,
    /// Which instance wrote it.
    pub source: Source,
    /// Key derivation and cipher of the sealed values; `null` when the
    /// bundle carries no secrets.
    #[serde(default)]
    pub secrets: Option<SecretsHeader>,
    /// Providers, in export order.
    #[serde(default)]
    pub providers: Vec<ProviderEntry>,
    /// Tokens, in export order.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// With secrets: the HMAC-SHA256 of the bundle's content under the
    /// passphrase's authentication key, standard base64 ([`super::mac`]).
    /// Written last, once every entry is out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl Bundle {
    /// An empty bundle of the current format and version.
    pub fn new(exported_at: DateTime<Utc>, source: Source) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            exported_at,
            source,
            secrets: None,
            providers: Vec::new(),
            tokens: Vec::new(),
            mac: None,
        }
    }

    /// Every sealed value of the entries with its JSON path (the header's
    /// `check` is not included).
    pub fn sealed_values(&self) -> impl Iterator<Item = (String, &SealedValue)> {
        let providers = self.providers.iter().enumerate().flat_map(|(i, p)| {
            ProviderSecret::ALL.into_iter().filter_map(move |f| {
                p.sealed(f)
                    .map(|v| (format!("$.providers[{i}].{}", f.as_str()), v))
            })
        });
        let tokens = self.tokens.iter().enumerate().flat_map(|(i, t)| {
            TokenSecret::ALL.into_iter().filter_map(move |f| {
                t.sealed(f)
                    .map(|v| (format!("$.tokens[{i}].{}", f.as_str()), v))
            })
        });
        providers.chain(tokens)
    }
}

/// The instance that wrote the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Its public URL, when one is configured.
    #[serde(default)]
    pub instance: Option<String>,
    /// The Quiver version that wrote the bundle.
    pub quiver_version: String,
}

/// How the sealed values were encrypted; the passphrase itself is not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsHeader {
    /// The key derivation.
    pub kdf: KdfHeader,
    /// Always [`CIPHER`].
    pub cipher: String,
    /// A known constant sealed under the key: it tells a wrong passphrase
    /// apart from a tampered value before anything is imported.
    pub check: SealedValue,
}

/// Argon2id parameters as stored in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfHeader {
    /// Always [`KDF_ALGORITHM`].
    pub algorithm: String,
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
    /// The salt, standard base64.
    pub salt: String,
}

/// An encrypted value: standard base64 of nonce ‖ ciphertext ‖ tag, written
/// as `{"sealed": "…"}` so it can never be mistaken for a plain secret.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SealedValue {
    sealed: String,
}

impl SealedValue {
    /// Wraps base64 text produced by the sealing code.
    pub(crate) fn from_base64(sealed: String) -> Self {
        Self { sealed }
    }

    /// The base64 text.
    pub fn as_str(&self) -> &str {
        &self.sealed
    }
}

impl fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ciphertext is not secret, but it is long and says nothing useful.
        write!(f, "SealedValue({} chars)", self.sealed.len())
    }
}

impl<'de> Deserialize<'de> for SealedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            sealed: String,
        }

        struct SealedVisitor;

        impl<'de> Visitor<'de> for SealedVisitor {
            type Value = SealedValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a sealed value {"sealed": "<base64>"}"#)
            }

            // A plain string here is most likely a secret in clear: refuse
            // it without repeating it into an error message or a log.
            fn visit_str<E: de::Error>(self, _value: &str) -> Result<SealedValue, E> {
                Err(E::custom(
                    r#"a secret must be sealed as {"sealed": "<base64>"}, never a plain string (the value is not shown)"#,
                ))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SealedValue, A::Error> {
                let wire = Wire::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SealedValue {
                    sealed: wire.sealed,
                })
            }
        }

        deserializer.deserialize_any(SealedVisitor)
    }
}

/// The secret fields of a provider entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderSecret {
    /// The default client secret.
    ClientSecret,
    /// The PKCS#8 PEM for `private_key_jwt`.
    PrivateKey,
    /// The next default client secret (rotation).
    NextClientSecret,
}

impl ProviderSecret {
    /// Every field, in bundle order.
    pub const ALL: [Self; 3] = [Self::ClientSecret, Self::PrivateKey, Self::NextClientSecret];

    /// The JSON field name (also the column's).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::PrivateKey => "private_key",
            Self::NextClientSecret => "next_client_secret",
        }
    }
}

/// The secret fields of a token entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSecret {
    /// The token's own client secret.
    ClientSecret,
    /// The resource owner's password (Password flow).
    Password,
    /// The current access token.
    AccessToken,
    /// The current refresh token.
    RefreshToken,
    /// The next client secret of the token's own client (rotation).
    NextClientSecret,
}

impl TokenSecret {
    /// Every field, in bundle order.
    pub const ALL: [Self; 5] = [
        Self::ClientSecret,
        Self::Password,
        Self::AccessToken,
        Self::RefreshToken,
        Self::NextClientSecret,
    ];

    /// The JSON field name (also the column's).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::Password => "password",
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
            Self::NextClientSecret => "next_client_secret",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_serializes_as_an_object() {
        let v = SealedValue::from_base64("QUJD".into());
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"sealed":"QUJD"}"#);
        let back: SealedValue = serde_json::from_str(r#"{"sealed":"QUJD"}"#).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn plain_string_secret_is_refused_without_echoing_it() {
        let err = serde_json::from_str::<SealedValue>(r#""hunter2-plain""#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("must be sealed"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn sealed_value_rejects_extra_fields_and_other_types() {
        assert!(serde_json::from_str::<SealedValue>(r#"{"sealed":"QUJD","x":1}"#).is_err());
        assert!(serde_json::from_str::<SealedValue>(r#"{}"#).is_err());
        assert!(serde_json::from_str::<SealedValue>("42").is_err());
        assert!(serde_json::from_str::<SealedValue>("null").is_err());
    }

    #[test]
    fn debug_does_not_print_the_ciphertext() {
        let v = SealedValue::from_base64("QUJDREVGR0hJSktM".into());
        assert_eq!(format!("{v:?}"), "SealedValue(16 chars)");
    }
}
