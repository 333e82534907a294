//! Password hashing with Argon2id, and generated passwords.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;

use super::AccountError;
use crate::secret::SecretString;

/// Shortest password accepted.
pub const MIN_LEN: usize = 12;
/// Longest password accepted (hashing cost stays bounded).
pub const MAX_LEN: usize = 1024;

/// Checks a new password against the rules.
pub fn check_policy(password: &SecretString) -> Result<(), AccountError> {
    let len = password.expose().chars().count();
    if len < MIN_LEN {
        return Err(AccountError::Invalid {
            field: "password",
            message: format!("must be at least {MIN_LEN} characters long"),
        });
    }
    if len > MAX_LEN {
        return Err(AccountError::Invalid {
            field: "password",
            message: format!("must be at most {MAX_LEN} characters long"),
        });
    }
    Ok(())
}

/// Hashes a password into an Argon2id PHC string (random salt).
pub fn hash(password: &SecretString) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("Argon2id with default parameters cannot fail on a bounded password")
        .to_string()
}

/// Whether `password` matches the PHC string. A malformed hash never matches.
pub fn verify(password: &SecretString, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the time of one verification, so that a login for an unknown
/// email takes as long as one with a wrong password.
pub fn verify_dummy(password: &SecretString) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash(&SecretString::new("dummy password for timing")));
    let _ = verify(password, phc);
}

/// A random 20-character password, shown once to whoever asked for it.
pub fn generate() -> SecretString {
    SecretString::new(
        rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(20)
            .map(char::from)
            .collect::<String>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let pw = SecretString::new("correct horse battery staple");
        let phc = hash(&pw);
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(&pw, &phc));
        assert!(!verify(&SecretString::new("wrong password!"), &phc));
        assert!(!verify(&pw, "not a hash"));
        assert_ne!(phc, hash(&pw), "salts differ");
    }

    #[test]
    fn policy_and_generation() {
        assert!(check_policy(&SecretString::new("short")).is_err());
        assert!(check_policy(&SecretString::new("x".repeat(2000))).is_err());
        let generated = generate();
        assert_eq!(generated.expose().len(), 20);
        check_policy(&generated).unwrap();
    }
}
