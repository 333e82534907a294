//! The master key that seals every secret column, and where it comes from.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;

/// Identifies a master key without revealing it: the first 8 bytes of
/// SHA-256 over a domain label and the key. Stored in every sealed value so
/// that a later key rotation knows which key opens it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id as 16 lowercase hex digits.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Parses 16 lowercase hex digits (the one spelling `to_hex` writes,
    /// so a sealed value has exactly one valid text form).
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A 32-byte master key; zeroed on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

/// Why a master key could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MasterKeyError {
    /// The text is not valid base64.
    #[error("is not valid base64")]
    NotBase64,
    /// The decoded key has the wrong length.
    #[error("decodes to {0} bytes; a master key is exactly 32 bytes (44 base64 characters)")]
    WrongLength(usize),
}

impl MasterKey {
    /// Draws a new random key from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Builds a key from raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Reads a key from its base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        let mut decoded = STANDARD
            .decode(text.trim())
            .map_err(|_| MasterKeyError::NotBase64)?;
        if decoded.len() != KEY_LEN {
            let len = decoded.len();
            decoded.zeroize();
            return Err(MasterKeyError::WrongLength(len));
        }
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&decoded);
        decoded.zeroize();
        Ok(Self(bytes))
    }

    /// The key as base64, for writing a key file. The only place key
    /// material leaves memory in clear.
    pub fn to_base64(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(STANDARD.encode(self.0))
    }

    /// The raw bytes, for the cipher.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// This key's id.
    pub fn id(&self) -> KeyId {
        let mut hasher = Sha256::new();
        hasher.update(b"quiver master key id v1\0");
        hasher.update(self.0);
        let digest = hasher.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id {}, [redacted])", self.id())
    }
}

/// Writes a new key file readable by its owner only (mode 0600, whatever
/// the umask), refusing to overwrite an existing file.
pub fn write_new_key_file(path: &Path, key: &MasterKey) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(key.to_base64().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The default key file in a data directory.
pub fn default_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_errors() {
        let key = MasterKey::generate();
        let back = MasterKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(key.id(), back.id());
        assert_eq!(
            MasterKey::from_base64("not base64!").unwrap_err(),
            MasterKeyError::NotBase64
        );
        assert_eq!(
            MasterKey::from_base64("AAAA").unwrap_err(),
            MasterKeyError::WrongLength(3)
        );
    }

    #[test]
    fn debug_shows_the_id_only() {
        let key = MasterKey::from_bytes([7u8; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.id().to_hex()));
        assert!(!shown.contains(&*key.to_base64()));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = MasterKey::generate();
        write_new_key_file(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_new_key_file(&path, &MasterKey::generate()).is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(MasterKey::from_base64(&text).unwrap().id(), key.id());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_open_to_group_or_others_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_new_key_file(&path, &MasterKey::generate()).unwrap();
        assert!(load(&MasterKeySource::File(path.clone())).is_ok());
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let shown = path.display();
            let error = load(&MasterKeySource::File(path.clone()))
                .unwrap_err()
                .to_string();
            assert_eq!(
                error,
                format!(
                    "invalid setting QUIVER_MASTER_KEY_FILE: the master key file {shown} is not \
                     private (mode {mode:04o} lets group or others in): run `chmod 600 {shown}`"
                )
            );
            let error = load(&MasterKeySource::DataDirDefault(path.clone()))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("the master key file"), "{error}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(load(&MasterKeySource::File(path)).is_ok());
    }
}

/// Why the configured master key could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum LoadKeyError {
    /// The key file named by a setting cannot be read.
    #[error("invalid setting QUIVER_MASTER_KEY_FILE: cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file holds no valid key.
    #[error("the master key file {path} {problem}")]
    BadFile {
        /// The file.
        path: String,
        /// What is wrong with its content.
        problem: MasterKeyError,
    },
    /// A key file that group or others can open: whoever can read it can
    /// open every secret in the database.
    #[error(
        "{}the master key file {path} is not private (mode {mode:04o} lets group or others in): \
         run `chmod 600 {path}`",
        if *.configured { "invalid setting QUIVER_MASTER_KEY_FILE: " } else { "" }
    )]
    NotPrivate {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
        /// Named by `QUIVER_MASTER_KEY_FILE` (else the data folder's).
        configured: bool,
    },
    /// The default key file could not be created.
    #[error("cannot create the master key file {path}: {source}")]
    Create {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// How the key was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Read from the setting or an existing file.
    Configured,
    /// Generated now into this file.
    Generated(PathBuf),
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// Given inline (`QUIVER_MASTER_KEY`).
    Inline(MasterKey),
    /// Read from a file that must exist (`QUIVER_MASTER_KEY_FILE`).
    File(PathBuf),
    /// Neither was set: the key file in the data directory, generated on
    /// first start.
    DataDirDefault(PathBuf),
}

/// Obtains the master key from its configured source, generating the
/// default key file on first start.
pub fn load(source: &MasterKeySource) -> Result<(MasterKey, KeyOrigin), LoadKeyError> {
    let read = |path: &Path| -> Result<MasterKey, LoadKeyError> {
        let configured = matches!(source, MasterKeySource::File(_));
        if let Ok(Some(mode)) = crate::files::mode(path)
            && crate::files::open_to_others(mode)
        {
            return Err(LoadKeyError::NotPrivate {
                path: path.display().to_string(),
                mode,
                configured,
            });
        }
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            LoadKeyError::ReadFile {
                path: path.display().to_string(),
                source,
            }
        })?);
        MasterKey::from_base64(&text).map_err(|problem| LoadKeyError::BadFile {
            path: path.display().to_string(),
            problem,
        })
    };
    match source {
        MasterKeySource::Inline(key) => Ok((key.clone(), KeyOrigin::Configured)),
        MasterKeySource::File(path) => Ok((read(path)?, KeyOrigin::Configured)),
        MasterKeySource::DataDirDefault(path) => {
            if path.exists() {
                return Ok((read(path)?, KeyOrigin::Configured));
            }
            let key = MasterKey::generate();
            write_new_key_file(path, &key).map_err(|source| LoadKeyError::Create {
                path: path.display().to_string(),
                source,
            })?;
            Ok((key, KeyOrigin::Generated(path.clone())))
        }
    }
}
