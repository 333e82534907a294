//! Quiver's settings: `QUIVER_*` environment variables over an optional TOML
//! file, validated once at start with messages that name the setting.
//!
//! Every setting is declared once, in [`SETTINGS`] (`settings.rs`): its key,
//! the kind of value it holds, its default and its meaning. The environment
//! and settings file readers (`sources.rs`), the warning for unknown
//! variables and the README's settings table all come from that table; this
//! module turns the text read into the typed [`Config`] and refuses what is
//! wrong.

mod settings;
mod sources;
#[cfg(test)]
mod tests;
mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use url::Url;

use crate::db::DatabaseUrl;
use crate::master_key::{MasterKey, MasterKeyError, MasterKeySource};

pub use settings::{
    Kind, PASSPHRASE_VARIABLES, SETTINGS, Setting, Unset, env_name, markdown_table,
};
use sources::Sources;
use values::parse_public_url;
pub use values::{parse_duration, parse_size};

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

/// Validated settings; each field is the setting of the same key in
/// [`SETTINGS`] (`log_filter` is `log`; `master_key` is read from
/// `master_key` and `master_key_file`).
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
    /// How far ahead a due re-authorization is announced.
    pub reauthorization_notice: chrono::Duration,
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
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// The proxy every provider call goes through; none: direct, whatever
    /// the proxy environment variables say.
    pub outbound_proxy: Option<crate::oauth::outbound::OutboundProxy>,
    /// Extra certificate authorities provider calls trust (checked readable).
    pub outbound_ca_file: Option<PathBuf>,
}

/// Shortest `QUIVER_WEBHOOK_SECRET` accepted: the HMAC-SHA256 key of
/// every delivery.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

/// Largest `QUIVER_IMPORT_MAX_BYTES` accepted: the bundle is held in memory.
const MAX_IMPORT_BYTES: usize = 1024 * 1024 * 1024;

impl Config {
    /// Loads settings from `env` (the process environment in production)
    /// over the optional TOML file. Reads no other file.
    pub fn load(
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let (sources, warnings) = Sources::read(config_file, env)?;
        Self::validate(&sources).map(|config| (config, warnings))
    }

    fn validate(src: &Sources) -> Result<Self, ConfigError> {
        let data_dir = PathBuf::from(src.required("data_dir")?);
        let data_dir = std::path::absolute(&data_dir)
            .map_err(|e| src.error("data_dir", format!("cannot be made absolute: {e}")))?;

        let database_url = match src.text("database_url")? {
            Some(url) => {
                DatabaseUrl::parse(&url).map_err(|problem| src.error("database_url", problem))?
            }
            None => DatabaseUrl::sqlite_file(&data_dir.join("quiver.db")),
        };

        let listen = src.required("listen")?;
        let listen = SocketAddr::from_str(&listen).map_err(|_| {
            src.error(
                "listen",
                format!("{listen:?} is not an address and port (expected e.g. 127.0.0.1:3000)"),
            )
        })?;

        let public_url = parse_public_url(&src.required("public_url")?)
            .map_err(|problem| src.error("public_url", problem))?;

        let master_key = match (src.text("master_key")?, src.text("master_key_file")?) {
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

        let site_dir = src.text("site_dir")?.map(PathBuf::from);

        let log_filter = src.required("log")?;
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| src.error("log", format!("is not a valid log filter: {e}")))?;

        let log_format = match src.required("log_format")?.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(src.error(
                    "log_format",
                    format!("{other:?} is not a log format (expected text or json)"),
                ));
            }
        };

        let session_idle_timeout = src.duration("session_idle_timeout")?;
        let session_max_age = src.duration("session_max_age")?;
        if session_idle_timeout > session_max_age {
            return Err(src.error(
                "session_idle_timeout",
                "is longer than QUIVER_SESSION_MAX_AGE; it must not be",
            ));
        }

        let allow_insecure_loopback = src.flag("allow_insecure_loopback")?;
        let scheduler = src.flag("scheduler")?;
        let scheduler_interval = src.duration("scheduler_interval")?;
        let idle_refresh_interval = src.duration("idle_refresh_interval")?;
        let reauthorization_notice = src.duration("reauthorization_notice")?;
        let cache_ttl = match src.required("cache_ttl")?.as_str() {
            "0" | "0s" | "off" => std::time::Duration::ZERO,
            text => parse_duration(text)
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
        let refresh_max_failures = src.required("refresh_max_failures")?;
        let refresh_max_failures = refresh_max_failures
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                src.error(
                    "refresh_max_failures",
                    format!("{refresh_max_failures:?} is not a whole number from 1 to 1000"),
                )
            })?;
        let webhook_url = match src.text("webhook_url")? {
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
        let webhook_secret = src
            .text("webhook_secret")?
            .map(crate::secret::SecretString::new);
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

        let import_max_bytes = src.required("import_max_bytes")?;
        let import_max_bytes = parse_size(&import_max_bytes)
            .filter(|n| (1024..=MAX_IMPORT_BYTES).contains(n))
            .ok_or_else(|| {
                src.error(
                    "import_max_bytes",
                    format!(
                        "{import_max_bytes:?} is not a size from 1KiB to 1GiB (a number of bytes, or with KiB, MiB or GiB, e.g. 50MiB)"
                    ),
                )
            })?;

        let trusted_proxies = match src.text("trusted_proxies")? {
            None => crate::client_addr::TrustedProxies::default(),
            Some(text) => crate::client_addr::TrustedProxies::parse(&text)
                .map_err(|problem| src.error("trusted_proxies", problem))?,
        };

        let outbound_proxy = match src.text("outbound_proxy")? {
            None => None,
            Some(text) => Some(
                crate::oauth::outbound::OutboundProxy::parse(&text)
                    .map_err(|problem| src.error("outbound_proxy", problem))?,
            ),
        };

        let outbound_ca_file = match src.text("outbound_ca_file")? {
            None => None,
            Some(text) => {
                let path = PathBuf::from(text);
                crate::oauth::outbound::Outbound::read_roots(&path)
                    .map_err(|problem| src.error("outbound_ca_file", problem))?;
                Some(path)
            }
        };

        Ok(Self {
            outbound_proxy,
            outbound_ca_file,
            trusted_proxies,
            import_max_bytes,
            cache_ttl,
            allow_insecure_loopback,
            scheduler,
            scheduler_interval,
            idle_refresh_interval,
            reauthorization_notice,
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
