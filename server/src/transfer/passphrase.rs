//! The bundle key: Argon2id from the admin's passphrase, then
//! XChaCha20-Poly1305 for every secret of the bundle, and HMAC-SHA256 over
//! its content under a second key expanded from the same derivation.
//!
//! The key is derived once per bundle (Argon2id is deliberately slow); each
//! value gets a fresh random nonce, and its associated data names the entry
//! and field it belongs to, so a value moved elsewhere in the bundle fails to
//! open. The header's `check` seals a known constant: opening it tells a
//! wrong passphrase apart from a tampered value, before anything is imported.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use super::bundle::{
    CIPHER, KDF_ALGORITHM, KdfHeader, ProviderSecret, SealedValue, SecretsHeader, TokenSecret,
};
use super::text::clip;
use crate::secret::{SecretBytes, SecretString};

/// Default memory cost in KiB (64 MiB): slow to guess, fine on two cores.
pub const DEFAULT_M_COST: u32 = 64 * 1024;
/// Default iterations.
pub const DEFAULT_T_COST: u32 = 3;
/// Default lanes: one, so a small server derives without contention.
pub const DEFAULT_P_COST: u32 = 1;
/// Largest memory cost accepted from a bundle (256 MiB): the parameters
/// come from an uploaded file, which must not make the server allocate
/// gigabytes.
pub const MAX_M_COST: u32 = 256 * 1024;
/// Largest iteration count accepted from a bundle (bounds the CPU time).
pub const MAX_T_COST: u32 = 16;
/// Largest lane count accepted from a bundle.
pub const MAX_P_COST: u32 = 8;
/// Length of a generated salt.
pub const SALT_LEN: usize = 16;
/// Salt lengths accepted from a bundle (Argon2 needs at least 8 bytes).
pub const SALT_LEN_RANGE: std::ops::RangeInclusive<usize> = 8..=64;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The plaintext of the header's `check`.
const CHECK_PLAINTEXT: &[u8] = b"quiver-export passphrase check";
/// The HKDF label of the authentication key.
const MAC_KEY_LABEL: &[u8] = b"quiver-export bundle authentication key (HMAC-SHA256)";

/// Why a key could not be made or a value not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The passphrase does not open the bundle's check value.
    #[error("wrong passphrase: it does not open this bundle's secrets; nothing was imported")]
    WrongPassphrase,
    /// An empty passphrase protects nothing.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// The bundle names a key derivation other than Argon2id.
    #[error("unsupported key derivation {0:?}: this Quiver reads only \"argon2id\"")]
    UnsupportedKdf(String),
    /// The bundle names a cipher other than XChaCha20-Poly1305.
    #[error("unsupported cipher {0:?}: this Quiver reads only \"xchacha20poly1305\"")]
    UnsupportedCipher(String),
    /// A cost parameter is outside what this code accepts.
    #[error("key derivation parameter {name} is {value}, outside the accepted {min} to {max}")]
    KdfParameter {
        /// `m_cost`, `t_cost` or `p_cost`.
        name: &'static str,
        /// The value found.
        value: u32,
        /// The smallest accepted.
        min: u32,
        /// The largest accepted.
        max: u32,
    },
    /// The salt is not base64 or has the wrong length.
    #[error("the key derivation salt {0}")]
    Salt(&'static str),
    /// Argon2 refused the parameters (not reached after validation).
    #[error("key derivation failed: {0}")]
    Kdf(String),
    /// A sealed value that is not base64 or too short to hold a nonce and tag.
    #[error("the sealed value of {slot} is malformed: {reason}")]
    Malformed {
        /// Where the value sits, e.g. `tokens/t1/refresh_token`.
        slot: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Authentication failed with the right key: the value was altered or
    /// copied from another entry or field.
    #[error(
        "the sealed value of {slot} does not open: it was altered, or copied from another entry or field"
    )]
    Tampered {
        /// Where the value sits.
        slot: String,
    },
}

/// Argon2id parameters with the decoded salt, checked against the bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdfParams {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: Vec<u8>,
}

impl KdfParams {
    /// The default costs with a fresh random salt: for a new export.
    pub fn generate() -> Self {
        Self::with_costs(DEFAULT_M_COST, DEFAULT_T_COST, DEFAULT_P_COST)
            .expect("the default costs are within the bounds")
    }

    /// Other costs with a fresh random salt (tests and benchmarks use cheap
    /// ones); the bounds still apply.
    pub fn with_costs(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, TransferError> {
        let mut salt = vec![0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let params = Self {
            m_cost,
            t_cost,
            p_cost,
            salt,
        };
        params.check_bounds()?;
        Ok(params)
    }

    /// Reads and checks the parameters stored in a bundle.
    pub fn from_header(header: &KdfHeader) -> Result<Self, TransferError> {
        if header.algorithm != KDF_ALGORITHM {
            return Err(TransferError::UnsupportedKdf(clip(&header.algorithm, 64)));
        }
        let salt = STANDARD
            .decode(&header.salt)
            .map_err(|_| TransferError::Salt("is not standard base64"))?;
        if !SALT_LEN_RANGE.contains(&salt.len()) {
            return Err(TransferError::Salt("must be 8 to 64 bytes"));
        }
        let params = Self {
            m_cost: header.m_cost,
            t_cost: header.t_cost,
            p_cost: header.p_cost,
            salt,
        };
        params.check_bounds()?;
        Ok(params)
    }

    /// The parameters as stored in a bundle.
    pub fn to_header(&self) -> KdfHeader {
        KdfHeader {
            algorithm: KDF_ALGORITHM.to_owned(),
            m_cost: self.m_cost,
            t_cost: self.t_cost,
            p_cost: self.p_cost,
            salt: STANDARD.encode(&self.salt),
        }
    }

    fn check_bounds(&self) -> Result<(), TransferError> {
        let bound = |name, value, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(TransferError::KdfParameter {
                    name,
                    value,
                    min,
                    max,
                })
            }
        };
        bound("p_cost", self.p_cost, Params::MIN_P_COST, MAX_P_COST)?;
        bound("t_cost", self.t_cost, Params::MIN_T_COST, MAX_T_COST)?;
        // Argon2 needs at least 8 KiB per lane.
        bound("m_cost", self.m_cost, 8 * self.p_cost, MAX_M_COST)
    }
}

/// Where a sealed value belongs; it becomes the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSlot<'a> {
    kind: &'static str,
    id: &'a str,
    field: &'static str,
}

impl<'a> SecretSlot<'a> {
    /// A secret field of the provider entry whose bundle id is `id`.
    pub fn provider(id: &'a str, field: ProviderSecret) -> Self {
        Self {
            kind: "providers",
            id,
            field: field.as_str(),
        }
    }

    /// A secret field of the token entry whose bundle id is `id`.
    pub fn token(id: &'a str, field: TokenSecret) -> Self {
        Self {
            kind: "tokens",
            id,
            field: field.as_str(),
        }
    }

    fn check() -> Self {
        Self {
            kind: "secrets",
            id: "",
            field: "check",
        }
    }

    fn associated_data(&self) -> Vec<u8> {
        let mut ad = Vec::with_capacity(64);
        for part in ["quiver-export", "v1", self.kind, self.id, self.field] {
            // Length-prefixed so that no two slots give the same bytes.
            ad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            ad.extend_from_slice(part.as_bytes());
        }
        ad
    }
}

impl fmt::Display for SecretSlot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.id.is_empty() {
            write!(f, "{}/{}", self.kind, self.field)
        } else {
            write!(f, "{}/{}/{}", self.kind, clip(self.id, 64), self.field)
        }
    }
}

/// The keys of one bundle: the one that seals and opens its secrets, and
/// the one that authenticates its content ([`super::mac`]).
pub struct BundleKey {
    // The cipher holds the only copy of the sealing key; the crate zeroes
    // it on drop.
    cipher: XChaCha20Poly1305,
    mac: ring::hmac::Key,
}

impl fmt::Debug for BundleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BundleKey([redacted])")
    }
}

impl BundleKey {
    /// Derives the key from `passphrase` with Argon2id; slow on purpose, so
    /// call it once per bundle.
    pub fn derive(passphrase: &SecretString, params: &KdfParams) -> Result<Self, TransferError> {
        if passphrase.is_empty() {
            return Err(TransferError::EmptyPassphrase);
        }
        params.check_bounds()?;
        let argon_params = Params::new(params.m_cost, params.t_cost, params.p_cost, Some(KEY_LEN))
            .map_err(|e| TransferError::Kdf(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(passphrase.expose().as_bytes(), &params.salt, &mut key[..])
            .map_err(|e| TransferError::Kdf(e.to_string()))?;
        // The authentication key comes from the same (slow) derivation,
        // expanded under its own label with HKDF-SHA256: a different key
        // from the sealing key, which stays the Argon2id output so that
        // bundles written before still open.
        let mac = ring::hkdf::Prk::new_less_safe(ring::hkdf::HKDF_SHA256, &key[..])
            .expand(&[MAC_KEY_LABEL], ring::hmac::HMAC_SHA256)
            .map(ring::hmac::Key::from)
            .map_err(|_| {
                TransferError::Kdf("the authentication key could not be expanded".into())
            })?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key[..])),
            mac,
        })
    }

    /// The key of the bundle's authentication code.
    pub(super) fn mac_key(&self) -> &ring::hmac::Key {
        &self.mac
    }

    /// For an export: derives a key under fresh `params` and returns the
    /// header to write into the bundle.
    pub fn create(
        passphrase: &SecretString,
        params: &KdfParams,
    ) -> Result<(Self, SecretsHeader), TransferError> {
        let key = Self::derive(passphrase, params)?;
        let header = SecretsHeader {
            kdf: params.to_header(),
            cipher: CIPHER.to_owned(),
            check: key.seal_raw(SecretSlot::check(), CHECK_PLAINTEXT),
        };
        Ok((key, header))
    }

    /// For an import: derives the key the bundle's header describes and
    /// verifies it on the check value, so a wrong passphrase is reported
    /// before any entry is touched.
    pub fn unlock(
        passphrase: &SecretString,
        header: &SecretsHeader,
    ) -> Result<Self, TransferError> {
        if header.cipher != CIPHER {
            return Err(TransferError::UnsupportedCipher(clip(&header.cipher, 64)));
        }
        let params = KdfParams::from_header(&header.kdf)?;
        let key = Self::derive(passphrase, &params)?;
        key.verify_check(&header.check)?;
        Ok(key)
    }

    /// Opens the header's check value: [`TransferError::WrongPassphrase`]
    /// when this key is not the one that sealed it.
    pub fn verify_check(&self, check: &SealedValue) -> Result<(), TransferError> {
        match self.open_raw(SecretSlot::check(), check) {
            Ok(plain) if plain.expose() == CHECK_PLAINTEXT => Ok(()),
            Ok(_) | Err(TransferError::Tampered { .. }) => Err(TransferError::WrongPassphrase),
            Err(other) => Err(other),
        }
    }

    /// Seals `plaintext` for `slot` with a fresh nonce.
    pub fn seal(&self, slot: SecretSlot<'_>, plaintext: &SecretString) -> SealedValue {
        self.seal_raw(slot, plaintext.expose().as_bytes())
    }

    /// Opens the value sealed for `slot`.
    pub fn open(
        &self,
        slot: SecretSlot<'_>,
        sealed: &SealedValue,
    ) -> Result<SecretString, TransferError> {
        self.open_raw(slot, sealed)?
            .into_secret_string()
            .map_err(|_| TransferError::Malformed {
                slot: slot.to_string(),
                reason: "the plaintext is not UTF-8",
            })
    }

    fn seal_raw(&self, slot: SecretSlot<'_>, plaintext: &[u8]) -> SealedValue {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ad = slot.associated_data();
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut body = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ciphertext);
        SealedValue::from_base64(STANDARD.encode(body))
    }

    fn open_raw(
        &self,
        slot: SecretSlot<'_>,
        sealed: &SealedValue,
    ) -> Result<SecretBytes, TransferError> {
        let malformed = |reason| TransferError::Malformed {
            slot: slot.to_string(),
            reason,
        };
        let body = decode_sealed(sealed).map_err(malformed)?;
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let ad = slot.associated_data();
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &ad,
                },
            )
            .map(SecretBytes::new)
            .map_err(|_| TransferError::Tampered {
                slot: slot.to_string(),
            })
    }
}

/// Decodes a sealed value's base64 and checks that it can hold a nonce and
/// a tag; the reader uses it to report malformed values without a key.
pub(crate) fn decode_sealed(sealed: &SealedValue) -> Result<Vec<u8>, &'static str> {
    let body = STANDARD
        .decode(sealed.as_str())
        .map_err(|_| "not standard base64")?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err("too short to hold a nonce and an authentication tag");
    }
    Ok(body)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    /// Cheap parameters: Argon2id at the default 64 MiB would make every
    /// test derive cost a noticeable fraction of a second.
    pub(crate) fn cheap_params() -> KdfParams {
        KdfParams::with_costs(1024, 1, 1).unwrap()
    }

    /// One key and its header, derived once for the whole test binary.
    pub(crate) fn shared_key() -> &'static (BundleKey, SecretsHeader) {
        static KEY: OnceLock<(BundleKey, SecretsHeader)> = OnceLock::new();
        KEY.get_or_init(|| {
            BundleKey::create(&SecretString::new("correct horse"), &cheap_params()).unwrap()
        })
    }

    #[test]
    fn seal_and_open_round_trip() {
        let (key, _) = shared_key();
        let slot = SecretSlot::token("t1", TokenSecret::RefreshToken);
        let sealed = key.seal(slot, &SecretString::new("rt-value"));
        assert!(!sealed.as_str().contains("rt-value"));
        assert_eq!(key.open(slot, &sealed).unwrap().expose(), "rt-value");
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let (key, _) = shared_key();
        let slot = SecretSlot::provider("p1", ProviderSecret::ClientSecret);
        let secret = SecretString::new("x");
        assert_ne!(key.seal(slot, &secret), key.seal(slot, &secret));
    }

    #[test]
    fn value_moved_to_another_entry_or_field_fails() {
        let (key, _) = shared_key();
        let sealed = key.seal(
            SecretSlot::token("t1", TokenSecret::RefreshToken),
            &SecretString::new("rt"),
        );
        for other in [
            SecretSlot::token("t2", TokenSecret::RefreshToken),
            SecretSlot::token("t1", TokenSecret::AccessToken),
            SecretSlot::provider("t1", ProviderSecret::ClientSecret),
        ] {
            assert!(
                matches!(
                    key.open(other, &sealed),
                    Err(TransferError::Tampered { .. })
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn unlock_with_the_right_passphrase_opens_values() {
        let (key, header) = shared_key();
        let slot = SecretSlot::provider("p1", ProviderSecret::PrivateKey);
        let sealed = key.seal(slot, &SecretString::new("-----BEGIN PRIVATE KEY-----"));
        let again = BundleKey::unlock(&SecretString::new("correct horse"), header).unwrap();
        assert_eq!(
            again.open(slot, &sealed).unwrap().expose(),
            "-----BEGIN PRIVATE KEY-----"
        );
    }

    #[test]
    fn wrong_passphrase_is_reported_as_such() {
        let (_, header) = shared_key();
        assert_eq!(
            BundleKey::unlock(&SecretString::new("correct horsE"), header).unwrap_err(),
            TransferError::WrongPassphrase
        );
    }

    #[test]
    fn check_value_moved_into_a_field_does_not_open() {
        let (key, header) = shared_key();
        let slot = SecretSlot::token("t1", TokenSecret::Password);
        assert!(matches!(
            key.open(slot, &header.check),
            Err(TransferError::Tampered { .. })
        ));
        // And a field value does not pass as the check.
        let sealed = key.seal(slot, &SecretString::new("x"));
        assert_eq!(
            key.verify_check(&sealed).unwrap_err(),
            TransferError::WrongPassphrase
        );
    }

    #[test]
    fn empty_passphrase_is_refused() {
        assert_eq!(
            BundleKey::derive(&SecretString::new(""), &cheap_params()).unwrap_err(),
            TransferError::EmptyPassphrase
        );
    }

    #[test]
    fn header_bounds_stop_hostile_parameters() {
        let good = cheap_params().to_header();
        let with = |f: &dyn Fn(&mut KdfHeader)| {
            let mut h = good.clone();
            f(&mut h);
            KdfParams::from_header(&h).unwrap_err()
        };
        assert!(matches!(
            with(&|h| h.m_cost = u32::MAX),
            TransferError::KdfParameter { name: "m_cost", .. }
        ));
        assert!(matches!(
            with(&|h| h.t_cost = 0),
            TransferError::KdfParameter { name: "t_cost", .. }
        ));
        assert!(matches!(
            with(&|h| h.p_cost = 1000),
            TransferError::KdfParameter { name: "p_cost", .. }
        ));
        assert!(matches!(
            with(&|h| h.algorithm = "scrypt".into()),
            TransferError::UnsupportedKdf(_)
        ));
        assert!(matches!(
            with(&|h| h.salt = "not base64!".into()),
            TransferError::Salt(_)
        ));
        assert!(matches!(
            with(&|h| h.salt = STANDARD.encode([0u8; 4])),
            TransferError::Salt(_)
        ));
        let (_, header) = shared_key();
        let mut other_cipher = header.clone();
        other_cipher.cipher = "aes-256-gcm".into();
        assert!(matches!(
            BundleKey::unlock(&SecretString::new("correct horse"), &other_cipher).unwrap_err(),
            TransferError::UnsupportedCipher(_)
        ));
    }

    #[test]
    fn default_parameters_are_within_the_bounds_and_salts_differ() {
        let a = KdfParams::generate();
        let b = KdfParams::generate();
        assert_eq!(a.to_header().m_cost, DEFAULT_M_COST);
        assert_ne!(a.salt, b.salt);
        assert_eq!(KdfParams::from_header(&a.to_header()).unwrap(), a);
    }

    #[test]
    fn key_debug_is_redacted() {
        let (key, _) = shared_key();
        assert_eq!(format!("{key:?}"), "BundleKey([redacted])");
    }

    #[test]
    fn malformed_values_fail_cleanly() {
        let (key, _) = shared_key();
        let slot = SecretSlot::token("t1", TokenSecret::AccessToken);
        for text in ["", "!!!", "QUJD", &STANDARD.encode([0u8; 39])] {
            assert!(
                matches!(
                    key.open(slot, &SealedValue::from_base64(text.to_owned())),
                    Err(TransferError::Malformed { .. })
                ),
                "{text:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            // PROPTEST_CASES raises this for a longer fuzzing run.
            cases: ProptestConfig::default().cases.max(512),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Arbitrary text in a sealed value never panics and never opens.
        #[test]
        fn arbitrary_sealed_text_never_panics(text in ".{0,200}") {
            let (key, _) = shared_key();
            let slot = SecretSlot::token("t1", TokenSecret::AccessToken);
            prop_assert!(key.open(slot, &SealedValue::from_base64(text)).is_err());
        }

        /// Arbitrary bytes, validly encoded, never open.
        #[test]
        fn arbitrary_sealed_bytes_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let (key, _) = shared_key();
            let slot = SecretSlot::token("t1", TokenSecret::AccessToken);
            let sealed = SealedValue::from_base64(STANDARD.encode(bytes));
            prop_assert!(key.open(slot, &sealed).is_err());
        }
    }
}
