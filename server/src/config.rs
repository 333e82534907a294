//! Quiver's settings: `QUIVER_*` environment variables over an optional TOML
//! file, validated once at start with messages that name the setting.
//!
//! Every setting is declared once, in [`SETTINGS`]: its key, the kind of
//! value it holds, its default and its meaning. The environment reader, the
//! settings file reader, the warning for unknown variables and the README's
//! settings table all come from that table.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use url::Url;

use crate::db::DatabaseUrl;
use crate::master_key::{MasterKey, MasterKeyError, MasterKeySource};

/// The kind of value a setting holds, which decides how its text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file or folder path.
    Path,
    /// A URL.
    Url,
    /// An IP address and port.
    Address,
    /// Text with a syntax of its own (a log filter, a format name, address blocks).
    Text,
    /// A secret: never repeated in a message.
    Secret,
    /// `true` or `false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
    Flag,
    /// A whole number and a unit: `ms`, `s`, `m`, `h` or `d`.
    Duration,
    /// A whole number.
    Count,
    /// A number of bytes, or a number with `KiB`, `MiB` or `GiB`.
    Size,
}

/// What an unset setting means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// This value, read exactly like a value that was set.
    Value(&'static str),
    /// No value, or one derived from other settings, said in words.
    Described(&'static str),
}

/// One setting, as the reader and the documentation see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The key in the settings file; the environment variable is
    /// `QUIVER_` and the key in capitals.
    pub key: &'static str,
    /// How its text is read.
    pub kind: Kind,
    /// What applies when it is not set.
    pub default: Unset,
    /// What it does, in Markdown: the README's "Meaning" column.
    pub meaning: &'static str,
}

impl Setting {
    /// The environment variable: `QUIVER_LISTEN` for `listen`.
    pub fn env_name(&self) -> String {
        env_name(self.key)
    }
}

/// Every setting Quiver reads, in the order the README lists them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "data_dir",
        kind: Kind::Path,
        default: Unset::Value("./data"),
        meaning: "Folder for Quiver's files (SQLite database, generated master key); created if absent, mode 0700.",
    },
    Setting {
        key: "database_url",
        kind: Kind::Url,
        default: Unset::Described("`sqlite://<data dir>/quiver.db`"),
        meaning: "`sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`. The password is never logged.",
    },
    Setting {
        key: "listen",
        kind: Kind::Address,
        default: Unset::Value("127.0.0.1:3000"),
        meaning: "Address and port the HTTP server binds.",
    },
    Setting {
        key: "public_url",
        kind: Kind::Url,
        default: Unset::Value("http://127.0.0.1:3000"),
        meaning: "The externally visible base URL. The OAuth redirect URI is `<PUBLIC_URL>/oauth/callback`. When it is not `https`, the app warns that tokens may not work correctly. When it is `https`, every response carries `Strict-Transport-Security: max-age=31536000` and the session cookie is `__Host-quiver_session` (see [Files and headers](#files-and-headers)).",
    },
    Setting {
        key: "master_key",
        kind: Kind::Secret,
        default: Unset::Described("—"),
        meaning: "Base64 of 32 random bytes (`openssl rand -base64 32`). Seals every secret.",
    },
    Setting {
        key: "master_key_file",
        kind: Kind::Path,
        default: Unset::Described("`<data dir>/master.key`"),
        meaning: "A file holding that base64 key, instead of the variable. It must be private to its owner (`chmod 600`, or 400): a key file that group or others can open stops the start with a message naming it. When neither this nor `QUIVER_MASTER_KEY` is set, the key file in the data folder is used, generated on first start with mode 0600, with a warning saying where it is: back it up, losing it loses every secret.",
    },
    Setting {
        key: "site_dir",
        kind: Kind::Path,
        default: Unset::Described("found"),
        meaning: "The built site folder (`hash.txt` and `pkg/quiver.<hash>.js`, `.wasm`, `.css` with their `.br` and `.gz` forms). When unset, Quiver looks in `<binary dir>/site`, `<binary dir>/../site`, `./target/site` and `./site`.",
    },
    Setting {
        key: "log",
        kind: Kind::Text,
        default: Unset::Value("info"),
        meaning: "Log filter (`tracing` directives, e.g. `info,server=debug`).",
    },
    Setting {
        key: "log_format",
        kind: Kind::Text,
        default: Unset::Value("text"),
        meaning: "`text`, or `json` for one JSON object per line. Logs go to standard error.",
    },
    Setting {
        key: "session_idle_timeout",
        kind: Kind::Duration,
        default: Unset::Value("12h"),
        meaning: "A session unused this long ends (`45m`, `12h`, `2d`; units s, m, h, d).",
    },
    Setting {
        key: "session_max_age",
        kind: Kind::Duration,
        default: Unset::Value("7d"),
        meaning: "A session ends this long after sign-in, used or not.",
    },
    Setting {
        key: "allow_insecure_loopback",
        kind: Kind::Flag,
        default: Unset::Value("false"),
        meaning: "Accept plain `http://` provider URLs on loopback hosts (127.0.0.0/8, ::1, localhost). For tests and local development; every other provider URL must be https.",
    },
    Setting {
        key: "scheduler",
        kind: Kind::Flag,
        default: Unset::Value("true"),
        meaning: "Run the background work in this process: renewing tokens before they expire, delivering webhooks. Any number of replicas may run it; leases in the database split the work.",
    },
    Setting {
        key: "scheduler_interval",
        kind: Kind::Duration,
        default: Unset::Value("5s"),
        meaning: "How often the scheduler looks for due work (units ms, s, m, h, d).",
    },
    Setting {
        key: "idle_refresh_interval",
        kind: Kind::Duration,
        default: Unset::Value("24h"),
        meaning: "A token that holds a refresh token but reports no expiry is renewed at least this often, so that unused refresh tokens do not lapse at the provider.",
    },
    Setting {
        key: "refresh_max_failures",
        kind: Kind::Count,
        default: Unset::Value("5"),
        meaning: "Failed background renewals in a row before a token is marked `failed` and an event is raised (1 to 1000).",
    },
    Setting {
        key: "webhook_url",
        kind: Kind::Url,
        default: Unset::Described("—"),
        meaning: "Where events (token failed, re-authorization needed, recovered, job failed) are POSTed as JSON.",
    },
    Setting {
        key: "webhook_secret",
        kind: Kind::Secret,
        default: Unset::Described("—"),
        meaning: "Required with the URL: the key of the `X-Quiver-Signature` HMAC-SHA256 (see [docs/API.md](docs/API.md#events)), at least 32 bytes (e.g. `openssl rand -hex 32`); a shorter one stops the start with a message naming the setting.",
    },
    Setting {
        key: "cache_ttl",
        kind: Kind::Duration,
        default: Unset::Value("1s"),
        meaning: "Longest a replica reuses an API key it verified or an access token it served fresh without reading the database again (0 to 60 s; `0` turns it off). Changes drop both at once (see [Several replicas](#several-replicas-behind-a-load-balancer)).",
    },
    Setting {
        key: "import_max_bytes",
        kind: Kind::Size,
        default: Unset::Value("50MiB"),
        meaning: "Largest import bundle (`POST /api/v1/import` body, the Import/Export page's upload, `quiver import` file): bytes, or with `KiB`, `MiB`, `GiB` (1 KiB to 1 GiB). A larger one is refused with 413 naming the limit.",
    },
    Setting {
        key: "trusted_proxies",
        kind: Kind::Text,
        default: Unset::Described("none"),
        meaning: "Comma-separated address blocks (`10.0.0.0/8, 2001:db8::/32`, a bare address is a block of one) of the load balancers or proxies in front of Quiver. Only from those peers is `X-Forwarded-For` believed (or, without it, `Forwarded`): the right-most hop that is not itself a trusted proxy is the client's address, for the audit log and the sign-in limits. Configure the proxy to append to `X-Forwarded-For`.",
    },
    Setting {
        key: "outbound_proxy",
        kind: Kind::Url,
        default: Unset::Described("none"),
        meaning: "An `http://` or `https://` proxy URL (`http://user:password@proxy.internal:3128`; the password is never logged) that every call to a provider goes through: discovery, token, revocation and JWKS requests. Unset, Quiver connects directly and ignores `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` (and their lowercase forms), because a proxy resolves names itself. With a proxy, Quiver still checks provider URLs (https, no link-local or metadata address written in a URL), follows no redirects and refuses answers over 1 MiB, but the proxy resolves the names: refusing names that lead to metadata addresses is then the proxy's job. Webhooks are not provider calls and do not use it.",
    },
];

/// The declaration of `key`. Every key the reader asks for is declared;
/// the unit tests read every one of them.
fn declared(key: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|setting| setting.key == key)
        .unwrap_or_else(|| panic!("the setting {key} is not declared in SETTINGS"))
}

/// The README's settings table, generated from [`SETTINGS`].
pub fn markdown_table() -> String {
    let mut table = String::from("| Variable | Default | Meaning |\n|---|---|---|\n");
    for setting in SETTINGS {
        let default = match setting.default {
            Unset::Value(value) => format!("`{value}`"),
            Unset::Described(words) => words.to_owned(),
        };
        table.push_str(&format!(
            "| `{}` | {default} | {} |\n",
            setting.env_name(),
            setting.meaning
        ));
    }
    table
}

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

/// One raw value with the place it came from, for messages.
struct Raw {
    value: String,
    origin: String,
}

/// The raw values of the declared settings: the environment wins over the file.
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

    /// The trimmed text set for `key`, if any; set but empty is an error.
    fn text(&self, key: &str) -> Result<Option<String>, ConfigError> {
        declared(key);
        match self.get(key).map(|raw| raw.value.trim().to_owned()) {
            Some(value) if value.is_empty() => Err(self.error(key, "is empty")),
            other => Ok(other),
        }
    }

    /// The text set for `key`, else its declared default value.
    fn text_or_default(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.text(key)?.or(match declared(key).default {
            Unset::Value(value) => Some(value.to_owned()),
            Unset::Described(_) => None,
        }))
    }

    /// A setting with a default value: its text, set or default.
    fn required(&self, key: &str) -> Result<String, ConfigError> {
        Ok(self
            .text_or_default(key)?
            .unwrap_or_else(|| panic!("the setting {key} is declared without a default value")))
    }

    fn duration(&self, key: &str) -> Result<chrono::Duration, ConfigError> {
        debug_assert_eq!(declared(key).kind, Kind::Duration, "{key}");
        let text = self.required(key)?;
        parse_duration(&text).ok_or_else(|| {
            self.error(
                key,
                format!(
                    "{text:?} is not a duration (expected a number and s, m, h or d, e.g. 12h)"
                ),
            )
        })
    }

    fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        debug_assert_eq!(declared(key).kind, Kind::Flag, "{key}");
        match self.required(key)?.as_str() {
            "false" | "0" | "no" | "off" => Ok(false),
            "true" | "1" | "yes" | "on" => Ok(true),
            other => Err(self.error(
                key,
                format!("{other:?} is not a yes/no value (expected true or false)"),
            )),
        }
    }
}

/// The environment variable for a setting key.
pub fn env_name(key: &str) -> String {
    format!("QUIVER_{}", key.to_ascii_uppercase())
}

/// The settings file's values: every key declared, each value text, a
/// number or true/false.
fn read_file(path: &Path) -> Result<BTreeMap<&'static str, Raw>, ConfigError> {
    let whole_file = |problem: String| ConfigError {
        setting: format!("--config {}", path.display()),
        problem,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| whole_file(format!("cannot read the file: {e}")))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        whole_file(format!(
            "is not a valid Quiver settings file: {}",
            e.message()
        ))
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let Some(setting) = SETTINGS.iter().find(|setting| setting.key == key) else {
            return Err(whole_file(format!(
                "is not a valid Quiver settings file: unknown setting `{key}` (known: {})",
                SETTINGS
                    .iter()
                    .map(|setting| setting.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let origin = format!("{key} (in {})", path.display());
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => {
                return Err(ConfigError {
                    setting: origin,
                    problem: format!(
                        "is {}; expected text, a whole number or true/false",
                        other.type_str()
                    ),
                });
            }
        };
        values.insert(setting.key, Raw { value, origin });
    }
    Ok(values)
}

impl Config {
    /// Loads settings from `env` (the process environment in production)
    /// over the optional TOML file. Reads no other file.
    pub fn load(
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut values = match config_file {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        let mut warnings = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("QUIVER_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            match SETTINGS.iter().find(|setting| setting.key == lower) {
                Some(setting) => {
                    values.insert(
                        setting.key,
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
                        .map(Setting::env_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        let sources = Sources { values };
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
            None => crate::http::client_addr::TrustedProxies::default(),
            Some(text) => crate::http::client_addr::TrustedProxies::parse(&text)
                .map_err(|problem| src.error("trusted_proxies", problem))?,
        };

        let outbound_proxy = match src.text("outbound_proxy")? {
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
        assert_eq!(c.database_url.kind(), crate::db::DatabaseKind::Sqlite);
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

    /// The README's settings table, between its two markers, is the one
    /// [`markdown_table`] makes from [`SETTINGS`].
    #[test]
    fn the_readme_lists_every_setting_as_declared() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = "<!-- settings: generated from SETTINGS in server/src/config.rs -->\n";
        let end = "<!-- end of settings -->";
        let from = readme.find(start).expect("the README has the start marker") + start.len();
        let to = from
            + readme[from..]
                .find(end)
                .expect("the README has the end marker");
        let expected = markdown_table();
        assert!(
            readme[from..to] == expected,
            "the README's settings table differs from SETTINGS; replace it with:\n{expected}"
        );
    }

    #[test]
    fn every_setting_is_declared_once_and_every_default_value_is_valid() {
        let mut keys: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SETTINGS.len(), "a key is declared twice");
        // Setting each default value explicitly changes nothing.
        let defaults: Vec<_> = SETTINGS
            .iter()
            .filter_map(|s| match s.default {
                Unset::Value(value) => Some((s.env_name(), value.to_owned())),
                Unset::Described(_) => None,
            })
            .collect();
        let (explicit, warnings) = Config::load(None, defaults).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let implicit = load(&[]).unwrap();
        assert_eq!(format!("{explicit:?}"), format!("{implicit:?}"));
    }

    #[test]
    fn the_file_takes_numbers_and_flags_and_names_an_unknown_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quiver.toml");
        std::fs::write(&path, "scheduler = false\nrefresh_max_failures = 7\n").unwrap();
        let (c, _) = Config::load(Some(&path), env(&[])).unwrap();
        assert!(!c.scheduler);
        assert_eq!(c.refresh_max_failures, 7);

        std::fs::write(&path, "listen = [\"a\"]\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.setting.starts_with("listen (in "), "{err}");
        assert!(err.to_string().contains("array"), "{err}");

        std::fs::write(&path, "listen = 3000\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.setting.starts_with("listen (in "), "{err}");
        assert!(err.to_string().contains("address and port"), "{err}");
    }
}
