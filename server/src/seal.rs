//! Sealing of secret columns: XChaCha20-Poly1305 under the master key.
//!
//! A sealed value is text, `qv1.<key id>.<base64url(nonce ‖ ciphertext)>`:
//! the version and key id let a later key rotation find the key that opens
//! it. The associated data binds the ciphertext to its table, row and column,
//! so a value copied into another row or column fails to open.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::master_key::{KeyId, MasterKey};
use crate::secret::SecretBytes;

/// The format version written by this code.
const VERSION_TAG: &str = "qv1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Where a sealed value lives; it becomes the associated data.
#[derive(Debug, Clone, Copy)]
pub struct SealSlot<'a> {
    /// Table name.
    pub table: &'a str,
    /// Primary key of the row, as text.
    pub row: &'a str,
    /// Column name.
    pub column: &'a str,
}

impl<'a> SealSlot<'a> {
    /// A slot for `table`.`column` in the row whose key is `row`.
    pub fn new(table: &'a str, row: &'a str, column: &'a str) -> Self {
        Self { table, row, column }
    }

    fn associated_data(&self, key_id: KeyId) -> Vec<u8> {
        let mut ad = Vec::with_capacity(64);
        for part in [
            "quiver-seal",
            VERSION_TAG,
            &key_id.to_hex(),
            self.table,
            self.row,
            self.column,
        ] {
            // Length-prefixed so that no two slots give the same bytes.
            ad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            ad.extend_from_slice(part.as_bytes());
        }
        ad
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The text is not a sealed value at all.
    #[error("sealed value is malformed: {0}")]
    Malformed(&'static str),
    /// Written by a newer or unknown format.
    #[error("sealed value has unsupported format version {0:?}")]
    UnsupportedVersion(String),
    /// Sealed under a key this instance does not hold.
    #[error("sealed value needs master key {0}, which this instance does not have")]
    UnknownKey(KeyId),
    /// Authentication failed: tampered, truncated, moved to another row or
    /// column, or sealed under another key with the same id.
    #[error("sealed value failed authentication (tampered, or moved from another row or column)")]
    Authentication,
}

/// Seals and opens secret columns with the instance's master keys.
#[derive(Clone)]
pub struct Sealer {
    current: KeyId,
    keys: HashMap<KeyId, XChaCha20Poly1305>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Sealer {
    /// A sealer that writes with `current` and opens values of that key.
    pub fn new(current: &MasterKey) -> Self {
        let mut sealer = Self {
            current: current.id(),
            keys: HashMap::new(),
        };
        sealer.add_key(current);
        sealer
    }

    /// Also open values sealed under `key` (for rotation).
    pub fn add_key(&mut self, key: &MasterKey) {
        let cipher = XChaCha20Poly1305::new(Key::from_slice(key.bytes()));
        self.keys.insert(key.id(), cipher);
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> KeyId {
        self.current
    }

    /// Seals `plaintext` for `slot` with the current key and a fresh nonce.
    pub fn seal(&self, slot: SealSlot<'_>, plaintext: &[u8]) -> String {
        let cipher = &self.keys[&self.current];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ad = slot.associated_data(self.current);
        let ciphertext = cipher
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
        format!(
            "{VERSION_TAG}.{}.{}",
            self.current.to_hex(),
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    /// The key id named by a sealed value, without opening it.
    pub fn key_id_of(sealed: &str) -> Result<KeyId, SealError> {
        parse(sealed).map(|(id, _)| id)
    }

    /// Opens a value sealed for `slot`.
    pub fn open(&self, slot: SealSlot<'_>, sealed: &str) -> Result<SecretBytes, SealError> {
        let (key_id, body) = parse(sealed)?;
        let cipher = self
            .keys
            .get(&key_id)
            .ok_or(SealError::UnknownKey(key_id))?;
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let ad = slot.associated_data(key_id);
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &ad,
                },
            )
            .map(SecretBytes::new)
            .map_err(|_| SealError::Authentication)
    }
}

fn parse(sealed: &str) -> Result<(KeyId, Vec<u8>), SealError> {
    let mut parts = sealed.splitn(3, '.');
    let version = parts.next().unwrap_or_default();
    let (Some(key_hex), Some(body_b64)) = (parts.next(), parts.next()) else {
        return Err(SealError::Malformed("expected three dot-separated parts"));
    };
    if version != VERSION_TAG {
        return Err(SealError::UnsupportedVersion(
            version.chars().take(16).collect(),
        ));
    }
    let key_id = KeyId::from_hex(key_hex).ok_or(SealError::Malformed("bad key id"))?;
    let body = URL_SAFE_NO_PAD
        .decode(body_b64)
        .map_err(|_| SealError::Malformed("body is not base64url"))?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Malformed("truncated"));
    }
    Ok((key_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(row: &str) -> SealSlot<'_> {
        SealSlot::new("providers", row, "client_secret")
    }

    #[test]
    fn round_trip() {
        let sealer = Sealer::new(&MasterKey::generate());
        let sealed = sealer.seal(slot("42"), b"s3cr3t");
        assert!(sealed.starts_with("qv1."));
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(
            sealer.open(slot("42"), &sealed).unwrap().expose(),
            b"s3cr3t"
        );
        assert_eq!(Sealer::key_id_of(&sealed).unwrap(), sealer.current_key_id());
    }

    #[test]
    fn every_write_uses_a_fresh_nonce() {
        let sealer = Sealer::new(&MasterKey::generate());
        assert_ne!(sealer.seal(slot("1"), b"x"), sealer.seal(slot("1"), b"x"));
    }

    #[test]
    fn tampered_byte_fails() {
        let sealer = Sealer::new(&MasterKey::generate());
        let sealed = sealer.seal(slot("1"), b"secret value");
        let (head, body) = sealed.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 0x01;
            let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(
                sealer.open(slot("1"), &tampered).unwrap_err(),
                SealError::Authentication
            );
            bytes[i] ^= 0x01;
        }
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = Sealer::new(&MasterKey::generate()).seal(slot("1"), b"x");
        let other = Sealer::new(&MasterKey::generate());
        assert!(matches!(
            other.open(slot("1"), &sealed).unwrap_err(),
            SealError::UnknownKey(_)
        ));
        // A forged header naming the other key's id still fails to open.
        let forged = format!(
            "qv1.{}.{}",
            other.current_key_id().to_hex(),
            sealed.rsplit_once('.').unwrap().1
        );
        assert_eq!(
            other.open(slot("1"), &forged).unwrap_err(),
            SealError::Authentication
        );
    }

    #[test]
    fn value_copied_to_another_row_or_column_fails() {
        let sealer = Sealer::new(&MasterKey::generate());
        let sealed = sealer.seal(slot("1"), b"x");
        assert_eq!(
            sealer.open(slot("2"), &sealed).unwrap_err(),
            SealError::Authentication
        );
        assert_eq!(
            sealer
                .open(SealSlot::new("providers", "1", "private_key"), &sealed)
                .unwrap_err(),
            SealError::Authentication
        );
        assert_eq!(
            sealer
                .open(SealSlot::new("tokens", "1", "client_secret"), &sealed)
                .unwrap_err(),
            SealError::Authentication
        );
    }

    #[test]
    fn truncated_or_malformed_input_fails_cleanly() {
        let sealer = Sealer::new(&MasterKey::generate());
        let sealed = sealer.seal(slot("1"), b"some secret");
        for cut in [0, 3, 4, 20, 21, 30, sealed.len() - 1] {
            assert!(
                sealer.open(slot("1"), &sealed[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            sealer.open(slot("1"), "qv9.00.AA").unwrap_err(),
            SealError::UnsupportedVersion("qv9".into())
        );
        assert!(matches!(
            sealer.open(slot("1"), "qv1.zz.AA").unwrap_err(),
            SealError::Malformed(_)
        ));
    }

    #[test]
    fn arbitrary_sealed_text_never_panics() {
        use rand::{Rng, SeedableRng};
        let sealer = Sealer::new(&MasterKey::generate());
        let genuine = sealer.seal(slot("1"), b"value");
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..20_000 {
            let mut text: Vec<char> = genuine.chars().collect();
            for _ in 0..rng.gen_range(1..6) {
                let at = rng.gen_range(0..text.len());
                match rng.gen_range(0..3) {
                    0 => text[at] = rng.gen_range(' '..='~'),
                    1 => text.truncate(at),
                    _ => text.insert(at, '.'),
                }
                if text.is_empty() {
                    break;
                }
            }
            let mutated: String = text.into_iter().collect();
            if mutated != genuine {
                assert!(sealer.open(slot("1"), &mutated).is_err(), "{mutated}");
            }
        }
    }

    #[test]
    fn rotation_opens_old_values_and_writes_new_ones() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let sealed_old = Sealer::new(&old).seal(slot("1"), b"x");
        let mut sealer = Sealer::new(&new);
        sealer.add_key(&old);
        assert_eq!(sealer.open(slot("1"), &sealed_old).unwrap().expose(), b"x");
        assert_eq!(
            Sealer::key_id_of(&sealer.seal(slot("1"), b"x")).unwrap(),
            new.id()
        );
    }
}
