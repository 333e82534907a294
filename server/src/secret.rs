//! Types that hold secret values: their `Debug` and `Display` never show the
//! value, and the memory is zeroed when they are dropped.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const REDACTED: &str = "[redacted]";

/// A secret text value (client secret, password, token).
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value; the caller's copy should not outlive this one.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Reveals the value. Call it only where the value must leave Quiver's
    /// memory: a sealed column, an outbound OAuth request, a response that
    /// the caller is entitled to.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString({REDACTED})")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Secret bytes (key material, decrypted plaintext).
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps bytes; the caller's copy should not outlive this one.
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// Reveals the bytes; see [`SecretString::expose`] for when that is right.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Turns the bytes into a secret string when they are UTF-8.
    pub fn into_secret_string(self) -> Result<SecretString, std::str::Utf8Error> {
        let bytes = Zeroizing::new(self.0.clone());
        let text = std::str::from_utf8(&bytes)?;
        Ok(SecretString::new(text.to_owned()))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({REDACTED}, {} bytes)", self.0.len())
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::new("hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert!(!format!("{s:#?}").contains("hunter2"));
        let b = SecretBytes::new(b"hunter2-very-secret".to_vec());
        assert!(!format!("{b:?}").contains("hunter2"));
        assert!(!format!("{b}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn bytes_convert_to_string_only_when_utf8() {
        let ok = SecretBytes::new(b"abc".to_vec())
            .into_secret_string()
            .unwrap();
        assert_eq!(ok.expose(), "abc");
        assert!(
            SecretBytes::new(vec![0xff, 0xfe])
                .into_secret_string()
                .is_err()
        );
    }
}
