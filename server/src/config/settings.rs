//! The declared settings: every `QUIVER_*` setting once, with the kind of
//! value it holds, its default and its meaning. The readers, the warning
//! for unknown variables and the README's settings table all come from
//! [`SETTINGS`].

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
        key: "reauthorization_notice",
        kind: Kind::Duration,
        default: Unset::Value("14d"),
        meaning: "How long before a token a person authorizes must be authorized again (its refresh token expires) the `token.reauthorization_due` event is raised.",
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
        meaning: "Where events (token failed, re-authorization needed or due, recovered, refresh token dropped, scope narrowed, no expiry given, connection test failed, job failed, provider certificate expiring) are POSTed as JSON.",
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
    Setting {
        key: "outbound_ca_file",
        kind: Kind::Path,
        default: Unset::Described("none"),
        meaning: "A PEM file of certificate authorities that provider calls trust besides the usual web ones: an internal identity provider whose certificate a private CA issued. A file that cannot be read, or holds no certificate, stops the start with a message naming it.",
    },
];

/// The declaration of `key`. Every key the reader asks for is declared;
/// the unit tests read every one of them.
pub(super) fn declared(key: &str) -> &'static Setting {
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

/// The environment variable for a setting key.
pub fn env_name(key: &str) -> String {
    format!("QUIVER_{}", key.to_ascii_uppercase())
}
