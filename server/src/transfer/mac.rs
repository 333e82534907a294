//! The bundle's authentication code (`mac`): HMAC-SHA256 over the whole
//! content of a bundle that carries secrets, under a key derived from the
//! passphrase ([`BundleKey`]), so that an edited bundle — a token endpoint
//! moved to another host, a name changed, an entry added or removed — is
//! refused before anything is imported. The sealed values alone could not
//! tell: each proves only itself.
//!
//! What is authenticated is what gets imported, not the file's bytes: the
//! header fields (`format`, `version`, `exported_at`, `source`, `secrets`)
//! and then each provider and each token in bundle order, each as the
//! canonical JSON of its parsed entry (fields in their fixed order, maps
//! sorted by key, no spaces, the sealed values that are present; the
//! serialisation of [`ProviderEntry`] and [`TokenEntry`]). A bundle that is
//! re-indented, or re-serialised by a client that parses it and posts it
//! inside an import request, keeps its code; a changed value does not.
//! The export computes the code from the entries it writes, one at a time,
//! so it streams as before; the code is written last.
//!
//! The input is `DOMAIN`, then one piece per part: a tag byte (`H` header,
//! `P` provider, `T` token), the length of the JSON as 8 bytes big-endian,
//! the JSON. Tags and lengths keep apart any two different sequences.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ring::hmac;
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::bundle::{Bundle, FORMAT, ProviderEntry, SecretsHeader, Source, TokenEntry};
use super::passphrase::BundleKey;

/// Length of the code in bytes.
pub const MAC_LEN: usize = 32;

/// What the code's input starts with.
const DOMAIN: &[u8] = b"quiver-export content mac v1\0";

/// Why a bundle's code does not stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacError {
    /// The bundle holds secrets but no code.
    Missing,
    /// The code is not standard base64 of 32 bytes.
    Malformed,
    /// The code does not match the content.
    Mismatch,
}

/// The header fields as authenticated.
#[derive(Serialize)]
struct Head<'a> {
    format: &'a str,
    version: u32,
    exported_at: &'a DateTime<Utc>,
    source: &'a Source,
    secrets: &'a SecretsHeader,
}

/// Computes a code one part at a time, in bundle order.
pub(crate) struct Authenticator {
    ctx: hmac::Context,
}

impl Authenticator {
    /// Starts with the header fields.
    pub(crate) fn new(
        key: &BundleKey,
        version: u32,
        exported_at: &DateTime<Utc>,
        source: &Source,
        secrets: &SecretsHeader,
    ) -> Self {
        let mut ctx = hmac::Context::with_key(key.mac_key());
        ctx.update(DOMAIN);
        let mut this = Self { ctx };
        this.piece(
            b'H',
            &Head {
                format: FORMAT,
                version,
                exported_at,
                source,
                secrets,
            },
        );
        this
    }

    /// Adds a provider entry.
    pub(crate) fn provider(&mut self, entry: &ProviderEntry) {
        self.piece(b'P', entry);
    }

    /// Adds a token entry (after every provider).
    pub(crate) fn token(&mut self, entry: &TokenEntry) {
        self.piece(b'T', entry);
    }

    /// The code, standard base64.
    pub(crate) fn finish(self) -> String {
        STANDARD.encode(self.ctx.sign().as_ref())
    }

    fn finish_raw(self) -> hmac::Tag {
        self.ctx.sign()
    }

    fn piece(&mut self, tag: u8, value: &impl Serialize) {
        let json =
            serde_json::to_vec(value).expect("bundle parts serialize: every map key is a string");
        self.ctx.update(&[tag]);
        self.ctx.update(&(json.len() as u64).to_be_bytes());
        self.ctx.update(&json);
    }
}

/// The code of a bundle's content as it stands; `None` without a secrets
/// header (such a bundle has no key to authenticate it).
fn compute(key: &BundleKey, bundle: &Bundle) -> Option<Authenticator> {
    let secrets = bundle.secrets.as_ref()?;
    let mut auth = Authenticator::new(
        key,
        bundle.version,
        &bundle.exported_at,
        &bundle.source,
        secrets,
    );
    for p in &bundle.providers {
        auth.provider(p);
    }
    for t in &bundle.tokens {
        auth.token(t);
    }
    Some(auth)
}

/// The code a bundle should carry (for tests and tools that build
/// bundles in memory).
pub fn code_of(key: &BundleKey, bundle: &Bundle) -> Option<String> {
    compute(key, bundle).map(Authenticator::finish)
}

/// Whether `text` has the shape of a code (the reader checks it without a
/// key).
pub(crate) fn decode(text: &str) -> Result<[u8; MAC_LEN], MacError> {
    let bytes = STANDARD.decode(text).map_err(|_| MacError::Malformed)?;
    bytes.try_into().map_err(|_| MacError::Malformed)
}

/// Checks the code of a bundle whose key `key` opened its check value.
pub fn verify(key: &BundleKey, bundle: &Bundle) -> Result<(), MacError> {
    let given = decode(bundle.mac.as_deref().ok_or(MacError::Missing)?)?;
    let expected = compute(key, bundle).ok_or(MacError::Missing)?.finish_raw();
    if bool::from(expected.as_ref().ct_eq(&given[..])) {
        Ok(())
    } else {
        Err(MacError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::passphrase::tests::shared_key;
    use crate::transfer::reader::{Limits, read_bundle};
    use crate::transfer::samples;

    fn signed() -> Bundle {
        let (key, header) = shared_key();
        let mut b = samples::sealed_bundle(key, header);
        b.mac = code_of(key, &b);
        b
    }

    fn reread(b: &Bundle) -> Bundle {
        read_bundle(&serde_json::to_vec_pretty(b).unwrap(), &Limits::default()).unwrap()
    }

    #[test]
    fn an_unedited_bundle_verifies_however_it_is_indented() {
        let (key, _) = shared_key();
        let b = signed();
        verify(key, &b).unwrap();
        verify(key, &reread(&b)).unwrap();
        // Compact, with the keys of every object in another order.
        let v = serde_json::to_value(&b).unwrap();
        let compact = read_bundle(
            serde_json::to_string(&v).unwrap().as_bytes(),
            &Limits::default(),
        )
        .unwrap();
        verify(key, &compact).unwrap();
    }

    #[test]
    fn every_kind_of_edit_is_caught() {
        let (key, _) = shared_key();
        type Edit = (&'static str, Box<dyn Fn(&mut Bundle)>);
        let edits: Vec<Edit> = vec![
            (
                "token endpoint host",
                Box::new(|b| b.providers[0].token_endpoint = "https://evil.example/token".into()),
            ),
            (
                "token name",
                Box::new(|b| b.tokens[1].name = "Renamed".into()),
            ),
            ("removed token", Box::new(|b| drop(b.tokens.pop()))),
            (
                "removed provider",
                Box::new(|b| drop(b.providers.remove(1))),
            ),
            (
                "added value",
                Box::new(|b| {
                    b.tokens[0]
                        .additional_values
                        .insert("tenant".into(), "x".into());
                }),
            ),
            ("reordered", Box::new(|b| b.tokens.swap(0, 2))),
            (
                "dropped secret",
                Box::new(|b| b.tokens[0].refresh_token = None),
            ),
            (
                "source",
                Box::new(|b| b.source.instance = Some("https://other.example".into())),
            ),
            (
                "date",
                Box::new(|b| b.exported_at += chrono::Duration::seconds(1)),
            ),
        ];
        for (what, edit) in edits {
            let mut b = signed();
            edit(&mut b);
            assert_eq!(verify(key, &b), Err(MacError::Mismatch), "{what}");
        }
        let mut b = signed();
        b.mac = None;
        assert_eq!(verify(key, &b), Err(MacError::Missing));
        b.mac = Some("QUJD".into());
        assert_eq!(verify(key, &b), Err(MacError::Malformed));
    }

    #[test]
    fn another_passphrase_gives_another_code() {
        use crate::secret::SecretString;
        use crate::transfer::passphrase::tests::cheap_params;
        let (other, header) =
            BundleKey::create(&SecretString::new("another passphrase"), &cheap_params()).unwrap();
        let mut b = signed();
        b.secrets = Some(header);
        assert_eq!(verify(&other, &b), Err(MacError::Mismatch));
    }
}
