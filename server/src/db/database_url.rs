//! A database URL: which database it names, and a `Debug` and `Display`
//! that never show its password.

use std::fmt;
use std::path::{Path, PathBuf};

use url::Url;

/// The kind of database behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl DatabaseKind {
    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A database URL whose `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    /// Parses and classifies a database URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let kind = if text.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let parsed = Url::parse(text).map_err(|e| format!("is not a valid URL ({e})"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err("has no host (expected postgres://USER@HOST:PORT/DATABASE)".into());
            }
            DatabaseKind::Postgres
        } else {
            return Err(
                "must start with sqlite: or postgres:// (for example sqlite://./data/quiver.db)"
                    .into(),
            );
        };
        Ok(Self {
            url: text.to_owned(),
            kind,
        })
    }

    /// A SQLite URL for a file.
    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            url: format!("sqlite://{}", path.display()),
            kind: DatabaseKind::Sqlite,
        }
    }

    /// The kind of database.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The full URL, password included: only for opening the connection.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The SQLite file path, for a SQLite URL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.kind != DatabaseKind::Sqlite {
            return None;
        }
        let rest = self.url.trim_start_matches("sqlite:");
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("redacted"));
                f.write_str(url.as_str())
            }
            _ => f.write_str(&self.url),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_hides_its_password() {
        let url = DatabaseUrl::parse("postgres://quiver:pa55word@db:5432/q").unwrap();
        assert_eq!(url.kind(), DatabaseKind::Postgres);
        assert!(!format!("{url:?}").contains("pa55word"));
        assert!(!format!("{url}").contains("pa55word"));
        assert!(url.expose().contains("pa55word"));
    }
}
