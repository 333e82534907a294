//! Quiver's settings: `QUIVER_*` environment variables over an optional TOML
//! file, validated once at start with messages that name the setting.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use url::Url;

use crate::master_key::{MasterKey, MasterKeyError};

/// Every setting: its TOML key; the environment variable is `QUIVER_` plus
/// the key in capitals. Keep the README's table in step.
pub const SETTINGS: &[&str] = &[
    "data_dir",
    "database_url",
    "listen",
    "public_url",
    "master_key",
    "master_key_file",
    "site_dir",
    "log",
    "log_format",
    "session_idle_timeout",
    "session_max_age",
    "allow_insecure_loopback",
    "scheduler",
    "scheduler_interval",
    "idle_refresh_interval",
    "refresh_max_failures",
    "webhook_url",
    "webhook_secret",
    "cache_ttl",
    "import_max_bytes",
    "trusted_proxies",
    "outbound_proxy",
];

/// Variables the export and import commands read their passphrase from:
/// not settings, but not unknown either.
pub const PASSPHRASE_VARIABLES: &[&str] = &["QUIVER_EXPORT_PASSPHRASE", "QUIVER_IMPORT_PASSPHRASE"];

/// A setting that is wrong, with where it came from and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid setting {setting}: {problem}")]
pub struct ConfigError {
    /// `QUIVER_LISTEN`, or `listen (in /etc/quiver.toml)`.
    pub setting: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

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

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where Quiver keeps its files; created if absent.
    pub data_dir: PathBuf,
    /// The database.
    pub database_url: DatabaseUrl,
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Externally visible base URL, without a trailing slash.
    pub public_url: Url,
    /// Where the master key comes from.
    pub master_key: MasterKeySource,
    /// Explicit site folder (pkg/, CSS), else found next to the binary.
    pub site_dir: Option<PathBuf>,
    /// `tracing` filter directives.
    pub log_filter: String,
    /// Log output format.
    pub log_format: LogFormat,
    /// A session unused this long ends.
    pub session_idle_timeout: chrono::Duration,
    /// A session ends this long after login.
    pub session_max_age: chrono::Duration,
    /// Provider URLs on loopback hosts may use plain http (tests).
    pub allow_insecure_loopback: bool,
    /// Whether this process runs the background work (refresh, jobs, webhooks).
    pub scheduler: bool,
    /// How often the scheduler looks for due work.
    pub scheduler_interval: chrono::Duration,
    /// Tokens with a refresh token but no expiry are renewed this often.
    pub idle_refresh_interval: chrono::Duration,
    /// Failed background renewals in a row before a token is marked failed.
    pub refresh_max_failures: u32,
    /// Where events are POSTed, if anywhere.
    pub webhook_url: Option<Url>,
    /// The HMAC-SHA256 key webhook bodies are signed with.
    pub webhook_secret: Option<crate::secret::SecretString>,
    /// How long a replica may reuse a verified API key or a fresh access
    /// token without reading the database again (0 turns the cache off).
    pub cache_ttl: std::time::Duration,
    /// Largest import bundle accepted, in bytes (the REST body and the CLI file).
    pub import_max_bytes: usize,
    /// Peers whose `X-Forwarded-For` / `Forwarded` is believed.
    pub trusted_proxies: crate::http::client_addr::TrustedProxies,
    /// The proxy every provider call goes through; none: direct, whatever
    /// the proxy environment variables say.
    pub outbound_proxy: Option<crate::oauth::outbound::OutboundProxy>,
}

/// The raw settings file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<String>,
    database_url: Option<String>,
    listen: Option<String>,
    public_url: Option<String>,
    master_key: Option<String>,
    master_key_file: Option<String>,
    site_dir: Option<String>,
    log: Option<String>,
    log_format: Option<String>,
    session_idle_timeout: Option<String>,
    session_max_age: Option<String>,
    allow_insecure_loopback: Option<String>,
    scheduler: Option<String>,
    scheduler_interval: Option<String>,
    idle_refresh_interval: Option<String>,
    refresh_max_failures: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    cache_ttl: Option<String>,
    import_max_bytes: Option<String>,
    trusted_proxies: Option<String>,
    outbound_proxy: Option<String>,
}

/// One raw value with the place it came from, for messages.
struct Raw {
    value: String,
    origin: String,
}

/// Collects the raw values: the environment wins over the file.
struct Sources {
    values: BTreeMap<&'static str, Raw>,
}

impl Sources {
    fn get(&self, key: &str) -> Option<&Raw> {
        self.values.get(key)
    }

    fn error(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        let setting = self
            .get(key)
            .map_or_else(|| env_name(key), |raw| raw.origin.clone());
        ConfigError {
            setting,
            problem: problem.into(),
        }
    }
}

/// The environment variable for a setting key.
pub fn env_name(key: &str) -> String {
    format!("QUIVER_{}", key.to_ascii_uppercase())
}

impl Config {
    /// Loads settings from `env` (the process environment in production)
    /// over the optional TOML file. Reads no other file.
    pub fn load(
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut values = BTreeMap::new();
        if let Some(path) = config_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                setting: format!("--config {}", path.display()),
                problem: format!("cannot read the file: {e}"),
            })?;
            let file: FileSettings = toml::from_str(&text).map_err(|e| ConfigError {
                setting: format!("--config {}", path.display()),
                problem: format!("is not a valid Quiver settings file: {}", e.message()),
            })?;
            let origin = |key: &str| format!("{key} (in {})", path.display());
            let fields = [
                ("data_dir", file.data_dir),
                ("database_url", file.database_url),
                ("listen", file.listen),
                ("public_url", file.public_url),
                ("master_key", file.master_key),
                ("master_key_file", file.master_key_file),
                ("site_dir", file.site_dir),
                ("log", file.log),
                ("log_format", file.log_format),
                ("session_idle_timeout", file.session_idle_timeout),
                ("session_max_age", file.session_max_age),
                ("allow_insecure_loopback", file.allow_insecure_loopback),
                ("scheduler", file.scheduler),
                ("scheduler_interval", file.scheduler_interval),
                ("idle_refresh_interval", file.idle_refresh_interval),
                ("refresh_max_failures", file.refresh_max_failures),
                ("webhook_url", file.webhook_url),
                ("webhook_secret", file.webhook_secret),
                ("cache_ttl", file.cache_ttl),
                ("import_max_bytes", file.import_max_bytes),
                ("trusted_proxies", file.trusted_proxies),
                ("outbound_proxy", file.outbound_proxy),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    values.insert(
                        key,
                        Raw {
                            value,
                            origin: origin(key),
                        },
                    );
                }
            }
        }
        let mut warnings = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("QUIVER_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            match SETTINGS.iter().find(|key| **key == lower) {
                Some(key) => {
                    values.insert(
                        key,
                        Raw {
                            value,
                            origin: name,
                        },
                    );
                }
                None if rest.starts_with("TEST_")
                    || PASSPHRASE_VARIABLES.contains(&name.as_str()) => {}
                None => warnings.push(format!(
                    "unknown setting {name} is ignored (known: {})",
                    SETTINGS
                        .iter()
                        .map(|k| env_name(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        let sources = Sources { values };
        Self::validate(&sources).map(|config| (config, warnings))
    }

    fn validate(src: &Sources) -> Result<Self, ConfigError> {
        let text = |key: &str| src.get(key).map(|raw| raw.value.trim().to_owned());
        let non_empty = |key: &str| -> Result<Option<String>, ConfigError> {
            match text(key) {
                Some(v) if v.is_empty() => Err(src.error(key, "is empty")),
                other => Ok(other),
            }
        };

        let data_dir = PathBuf::from(non_empty("data_dir")?.unwrap_or_else(|| "./data".into()));
        let data_dir = std::path::absolute(&data_dir)
            .map_err(|e| src.error("data_dir", format!("cannot be made absolute: {e}")))?;

        let database_url = match non_empty("database_url")? {
            Some(url) => {
                DatabaseUrl::parse(&url).map_err(|problem| src.error("database_url", problem))?
            }
            None => DatabaseUrl::sqlite_file(&data_dir.join("quiver.db")),
        };

        let listen = match non_empty("listen")? {
            Some(addr) => SocketAddr::from_str(&addr).map_err(|_| {
                src.error(
                    "listen",
                    format!("{addr:?} is not an address and port (expected e.g. 127.0.0.1:3000)"),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };

        let public_url = parse_public_url(
            &non_empty("public_url")?.unwrap_or_else(|| "http://127.0.0.1:3000".into()),
        )
        .map_err(|problem| src.error("public_url", problem))?;

        let master_key = match (non_empty("master_key")?, non_empty("master_key_file")?) {
            (Some(_), Some(_)) => {
                return Err(src.error(
                    "master_key",
                    format!(
                        "is set together with {}; set only one of them",
                        src.get("master_key_file")
                            .map_or("QUIVER_MASTER_KEY_FILE".into(), |r| r.origin.clone())
                    ),
                ));
            }
            (Some(inline), None) => MasterKeySource::Inline(
                MasterKey::from_base64(&inline)
                    .map_err(|e: MasterKeyError| src.error("master_key", e.to_string()))?,
            ),
            (None, Some(file)) => MasterKeySource::File(PathBuf::from(file)),
            (None, None) => {
                MasterKeySource::DataDirDefault(crate::master_key::default_key_file(&data_dir))
            }
        };

        let site_dir = non_empty("site_dir")?.map(PathBuf::from);

        let log_filter = non_empty("log")?.unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| src.error("log", format!("is not a valid log filter: {e}")))?;

        let log_format = match non_empty("log_format")?.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(src.error(
                    "log_format",
                    format!("{other:?} is not a log format (expected text or json)"),
                ));
            }
        };

        let duration = |key: &str, default: &str| -> Result<chrono::Duration, ConfigError> {
            let text = non_empty(key)?.unwrap_or_else(|| default.to_owned());
            parse_duration(&text).ok_or_else(|| {
                src.error(
                    key,
                    format!(
                        "{text:?} is not a duration (expected a number and s, m, h or d, e.g. 12h)"
                    ),
                )
            })
        };
        let session_idle_timeout = duration("session_idle_timeout", "12h")?;
        let session_max_age = duration("session_max_age", "7d")?;
        if session_idle_timeout > session_max_age {
            return Err(src.error(
                "session_idle_timeout",
                "is longer than QUIVER_SESSION_MAX_AGE; it must not be",
            ));
        }

        let flag = |key: &str, default: bool| -> Result<bool, ConfigError> {
            match non_empty(key)?.as_deref() {
                None => Ok(default),
                Some("false" | "0" | "no" | "off") => Ok(false),
                Some("true" | "1" | "yes" | "on") => Ok(true),
                Some(other) => Err(src.error(
                    key,
                    format!("{other:?} is not a yes/no value (expected true or false)"),
                )),
            }
        };
        let allow_insecure_loopback = flag("allow_insecure_loopback", false)?;
        let scheduler = flag("scheduler", true)?;
        let scheduler_interval = duration("scheduler_interval", "5s")?;
        let idle_refresh_interval = duration("idle_refresh_interval", "24h")?;
        let cache_ttl = match non_empty("cache_ttl")?.as_deref() {
            None => std::time::Duration::from_secs(1),
            Some("0" | "0s" | "off") => std::time::Duration::ZERO,
            Some(text) => parse_duration(text)
                .filter(|d| *d <= chrono::Duration::seconds(60))
                .and_then(|d| d.to_std().ok())
                .ok_or_else(|| {
                    src.error(
                        "cache_ttl",
                        format!(
                            "{text:?} is not a duration from 0 to 60s (e.g. 1s, 500ms; 0 turns the cache off)"
                        ),
                    )
                })?,
        };
        let refresh_max_failures = match non_empty("refresh_max_failures")? {
            None => 5,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    src.error(
                        "refresh_max_failures",
                        format!("{text:?} is not a whole number from 1 to 1000"),
                    )
                })?,
        };
        let webhook_url = match non_empty("webhook_url")? {
            None => None,
            Some(text) => {
                let url = Url::parse(&text).map_err(|e| {
                    src.error("webhook_url", format!("{text:?} is not a URL ({e})"))
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(src.error("webhook_url", "must start with https:// or http://"));
                }
                Some(url)
            }
        };
        let webhook_secret = non_empty("webhook_secret")?.map(crate::secret::SecretString::new);
        if webhook_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < MIN_WEBHOOK_SECRET_BYTES)
        {
            return Err(src.error(
                "webhook_secret",
                format!(
                    "must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes: a shorter HMAC key can be guessed offline from one signed delivery (make one with `openssl rand -hex 32`)"
                ),
            ));
        }
        if webhook_url.is_some() && webhook_secret.is_none() {
            return Err(src.error(
                "webhook_url",
                "is set without QUIVER_WEBHOOK_SECRET; webhook bodies are always signed, set a secret",
            ));
        }

        let import_max_bytes = match non_empty("import_max_bytes")? {
            None => crate::transfer::reader::DEFAULT_MAX_BYTES,
            Some(text) => parse_size(&text)
                .filter(|n| (1024..=MAX_IMPORT_BYTES).contains(n))
                .ok_or_else(|| {
                    src.error(
                        "import_max_bytes",
                        format!(
                            "{text:?} is not a size from 1KiB to 1GiB (a number of bytes, or with KiB, MiB or GiB, e.g. 50MiB)"
                        ),
                    )
                })?,
        };

        let trusted_proxies = match non_empty("trusted_proxies")? {
            None => crate::http::client_addr::TrustedProxies::default(),
            Some(text) => crate::http::client_addr::TrustedProxies::parse(&text)
                .map_err(|problem| src.error("trusted_proxies", problem))?,
        };

        let outbound_proxy = match non_empty("outbound_proxy")? {
            None => None,
            Some(text) => Some(
                crate::oauth::outbound::OutboundProxy::parse(&text)
                    .map_err(|problem| src.error("outbound_proxy", problem))?,
            ),
        };

        Ok(Self {
            outbound_proxy,
            trusted_proxies,
            import_max_bytes,
            cache_ttl,
            allow_insecure_loopback,
            scheduler,
            scheduler_interval,
            idle_refresh_interval,
            refresh_max_failures,
            webhook_url,
            webhook_secret,
            session_idle_timeout,
            session_max_age,
            data_dir,
            database_url,
            listen,
            public_url,
            master_key,
            site_dir,
            log_filter,
            log_format,
        })
    }

    /// Whether the instance is reachable over HTTPS, which OAuth tokens need
    /// to work reliably (providers refuse plain-HTTP redirect URIs).
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The OAuth redirect URI registered at providers.
    pub fn redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.public_url_text())
    }

    /// The public URL as text, without a trailing slash.
    pub fn public_url_text(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }
}

/// Shortest `QUIVER_WEBHOOK_SECRET` accepted: the HMAC-SHA256 key of
/// every delivery.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// Largest `QUIVER_IMPORT_MAX_BYTES` accepted: the bundle is held in memory.
const MAX_IMPORT_BYTES: usize = 1024 * 1024 * 1024;

/// Parses a size: a number of bytes, or a number with `KiB`, `MiB` or `GiB`
/// (also `K`, `M`, `G`, `KB`, `MB`, `GB`, read as powers of 1024).
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number.parse().ok()?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Parses `500ms`, `30s`, `15m`, `12h` or `7d` (a positive whole number and a unit).
pub fn parse_duration(text: &str) -> Option<chrono::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok().filter(|n| *n > 0 && *n < 1_000_000)?;
    match unit.trim() {
        "ms" => Some(chrono::Duration::milliseconds(n)),
        "s" => Some(chrono::Duration::seconds(n)),
        "m" => Some(chrono::Duration::minutes(n)),
        "h" => Some(chrono::Duration::hours(n)),
        "d" => Some(chrono::Duration::days(n)),
        _ => None,
    }
}

fn parse_public_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must start with https:// or http://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} must not contain credentials"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(None, env(pairs)).map(|(c, _)| c)
    }

    #[test]
    fn defaults() {
        let c = load(&[]).unwrap();
        assert!(c.data_dir.is_absolute() && c.data_dir.ends_with("data"));
        assert_eq!(c.database_url.kind(), DatabaseKind::Sqlite);
        assert_eq!(
            c.database_url.sqlite_path().unwrap(),
            c.data_dir.join("quiver.db")
        );
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.redirect_uri(), "http://127.0.0.1:3000/oauth/callback");
        assert!(!c.is_https());
        assert!(
            matches!(c.master_key, MasterKeySource::DataDirDefault(ref p) if p.ends_with("master.key"))
        );
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.scheduler);
        assert_eq!(c.scheduler_interval, chrono::Duration::seconds(5));
        assert_eq!(c.idle_refresh_interval, chrono::Duration::hours(24));
        assert_eq!(c.refresh_max_failures, 5);
        assert!(c.webhook_url.is_none());
        assert_eq!(c.import_max_bytes, 50 * 1024 * 1024);
    }

    #[test]
    fn import_size_limit_takes_units_and_names_the_setting() {
        let c = load(&[("QUIVER_IMPORT_MAX_BYTES", "2MiB")]).unwrap();
        assert_eq!(c.import_max_bytes, 2 * 1024 * 1024);
        let c = load(&[("QUIVER_IMPORT_MAX_BYTES", "4096")]).unwrap();
        assert_eq!(c.import_max_bytes, 4096);
        for bad in ["lots", "10", "2TiB", "-5", "5 parsecs"] {
            let err = load(&[("QUIVER_IMPORT_MAX_BYTES", bad)]).unwrap_err();
            assert_eq!(err.setting, "QUIVER_IMPORT_MAX_BYTES", "{bad}");
            assert!(err.to_string().contains("1KiB to 1GiB"), "{err}");
        }
    }

    #[test]
    fn bad_settings_name_the_setting() {
        for (pairs, setting, needle) in [
            (
                vec![("QUIVER_LISTEN", "nope")],
                "QUIVER_LISTEN",
                "address and port",
            ),
            (
                vec![("QUIVER_PUBLIC_URL", "ftp://x")],
                "QUIVER_PUBLIC_URL",
                "https://",
            ),
            (
                vec![("QUIVER_PUBLIC_URL", "https://x/?a=1")],
                "QUIVER_PUBLIC_URL",
                "query",
            ),
            (
                vec![("QUIVER_DATABASE_URL", "mysql://x")],
                "QUIVER_DATABASE_URL",
                "sqlite:",
            ),
            (
                vec![("QUIVER_MASTER_KEY", "AAAA")],
                "QUIVER_MASTER_KEY",
                "32 bytes",
            ),
            (
                vec![("QUIVER_MASTER_KEY", "%%%")],
                "QUIVER_MASTER_KEY",
                "base64",
            ),
            (
                vec![("QUIVER_LOG_FORMAT", "xml")],
                "QUIVER_LOG_FORMAT",
                "text or json",
            ),
            (vec![("QUIVER_DATA_DIR", " ")], "QUIVER_DATA_DIR", "empty"),
            (
                vec![
                    (
                        "QUIVER_MASTER_KEY",
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    ),
                    ("QUIVER_MASTER_KEY_FILE", "/k"),
                ],
                "QUIVER_MASTER_KEY",
                "only one",
            ),
        ] {
            let err = load(&pairs).unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn session_durations() {
        let c = load(&[]).unwrap();
        assert_eq!(c.session_idle_timeout, chrono::Duration::hours(12));
        assert_eq!(c.session_max_age, chrono::Duration::days(7));
        let c = load(&[
            ("QUIVER_SESSION_IDLE_TIMEOUT", "30m"),
            ("QUIVER_SESSION_MAX_AGE", "1d"),
        ])
        .unwrap();
        assert_eq!(c.session_idle_timeout, chrono::Duration::minutes(30));
        let err = load(&[("QUIVER_SESSION_MAX_AGE", "forever")]).unwrap_err();
        assert_eq!(err.setting, "QUIVER_SESSION_MAX_AGE");
        let err = load(&[("QUIVER_SESSION_IDLE_TIMEOUT", "8d")]).unwrap_err();
        assert_eq!(err.setting, "QUIVER_SESSION_IDLE_TIMEOUT");
        assert!(parse_duration("0s").is_none());
        assert!(parse_duration("5 h").is_some());
        assert!(parse_duration("h").is_none());
    }

    #[test]
    fn public_url_keeps_a_path_and_drops_the_trailing_slash() {
        let c = load(&[("QUIVER_PUBLIC_URL", "https://example.com/quiver/")]).unwrap();
        assert!(c.is_https());
        assert_eq!(
            c.redirect_uri(),
            "https://example.com/quiver/oauth/callback"
        );
    }

    #[test]
    fn environment_overrides_the_file_and_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quiver.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:8080\"\nlog_format = \"json\"\n").unwrap();
        let (c, _) = Config::load(Some(&path), env(&[("QUIVER_LISTEN", "127.0.0.1:9")])).unwrap();
        assert_eq!(c.listen.port(), 9);
        assert_eq!(c.log_format, LogFormat::Json);

        std::fs::write(&path, "listen = \"bad\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.setting.starts_with("listen (in "), "{err}");

        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn unknown_variables_warn_and_test_variables_are_quiet() {
        let (_, warnings) = Config::load(
            None,
            env(&[
                ("QUIVER_LISTNE", "x"),
                ("QUIVER_TEST_POSTGRES_URL", "y"),
                ("QUIVER_EXPORT_PASSPHRASE", "z"),
            ]),
        )
        .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("QUIVER_LISTNE"));
    }

    #[test]
    fn outbound_proxy_is_a_proxy_url_whose_password_is_hidden() {
        assert!(load(&[]).unwrap().outbound_proxy.is_none());
        let c = load(&[(
            "QUIVER_OUTBOUND_PROXY",
            "http://quiver:s3cret@proxy.internal:3128",
        )])
        .unwrap();
        let proxy = c.outbound_proxy.unwrap();
        assert!(proxy.to_string().contains("proxy.internal:3128"));
        assert!(!format!("{proxy:?}").contains("s3cret"));
        assert!(!format!("{proxy}").contains("s3cret"));
        for bad in [
            "proxy.internal:3128",
            "ftp://proxy/",
            "http://proxy/path",
            "http://",
        ] {
            let err = load(&[("QUIVER_OUTBOUND_PROXY", bad)]).unwrap_err();
            assert_eq!(err.setting, "QUIVER_OUTBOUND_PROXY", "{bad}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quiver.toml");
        std::fs::write(&path, "outbound_proxy = \"http://127.0.0.1:3128\"\n").unwrap();
        let (c, warnings) = Config::load(Some(&path), env(&[])).unwrap();
        assert!(c.outbound_proxy.is_some());
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_webhook_secret_shorter_than_32_bytes_is_refused_naming_the_setting() {
        let short = "s".repeat(31);
        let err = load(&[
            ("QUIVER_WEBHOOK_URL", "https://hooks.example/quiver"),
            ("QUIVER_WEBHOOK_SECRET", &short),
        ])
        .unwrap_err();
        assert_eq!(err.setting, "QUIVER_WEBHOOK_SECRET", "{err}");
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        assert!(!err.to_string().contains(&short), "{err}");
        // Without a URL too: the secret is refused wherever it is set.
        let err = load(&[("QUIVER_WEBHOOK_SECRET", "whsec-test")]).unwrap_err();
        assert_eq!(err.setting, "QUIVER_WEBHOOK_SECRET", "{err}");
        let long = "s".repeat(32);
        let c = load(&[
            ("QUIVER_WEBHOOK_URL", "https://hooks.example/quiver"),
            ("QUIVER_WEBHOOK_SECRET", &long),
        ])
        .unwrap();
        assert_eq!(c.webhook_secret.unwrap().expose(), long);
    }

    #[test]
    fn database_url_hides_its_password() {
        let url = DatabaseUrl::parse("postgres://quiver:pa55word@db:5432/q").unwrap();
        assert_eq!(url.kind(), DatabaseKind::Postgres);
        assert!(!format!("{url:?}").contains("pa55word"));
        assert!(!format!("{url}").contains("pa55word"));
        assert!(url.expose().contains("pa55word"));
    }
}
