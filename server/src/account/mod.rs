//! Local accounts: users and their passwords, sessions, API keys, and the
//! login rate limiter.

pub mod api_keys;
pub mod ops;
pub mod password;
pub mod rate_limit;
pub mod sessions;
pub mod users;

use std::fmt;
use std::str::FromStr;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Providers, import/export, users, scheduled jobs, every token.
    Admin,
    /// Creates tokens, and sees, uses and acts on only its own.
    User,
}

impl Role {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            other => Err(AccountError::Invalid {
                field: "role",
                message: format!("{other:?} is not a role (expected admin or user)"),
            }),
        }
    }
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Input that breaks a rule.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The email is taken.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// No such account.
    #[error("no account with this email or id")]
    NotFound,
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
}

/// Normalises and checks an email address.
pub fn normalize_email(raw: &str) -> Result<String, AccountError> {
    let email = raw.trim().to_lowercase();
    let invalid = |message: &str| AccountError::Invalid {
        field: "email",
        message: message.to_owned(),
    };
    if email.is_empty() {
        return Err(invalid("is required"));
    }
    if email.len() > 254 {
        return Err(invalid("is longer than 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(invalid("must look like name@example.com"));
    };
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("must look like name@example.com"));
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email(" Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        for bad in ["", "alice", "@x", "a@", "a b@x", "a@b@c"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_parse() {
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }
}
