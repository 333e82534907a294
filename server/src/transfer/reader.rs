//! Reading a bundle from untrusted bytes.
//!
//! The steps go from cheap to thorough, and each error says what and where:
//! the size; the nesting depth, scanned without recursion so absurd nesting
//! cannot exhaust the stack; the syntax, `format` and `version` (read before
//! the fields, so a bundle of another version gets "unsupported version",
//! not "unknown field"); the fields with their JSON path; then every
//! semantic problem at once (duplicates, dangling references, bad names), so
//! a preview can list them all.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::error::Category;
use serde_path_to_error::Segment;

use super::bundle::{Bundle, CIPHER, FORMAT, ProviderEntry, SUPPORTED_VERSIONS};
use super::mac::{self, MAC_LEN};
use super::passphrase::{KdfParams, TransferError, decode_sealed};
use crate::oauth::client_auth::ClientAuthMethod;
use crate::oauth::signing_key::SigningAlg;
use crate::oauth::{params, url_policy};
use crate::tokens::Flow;

/// Default largest bundle: 50 MiB.
pub const DEFAULT_MAX_BYTES: usize = 50 * 1024 * 1024;
/// Default deepest nesting; a real bundle nests four levels.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Depth used when a larger one is configured: serde_json stops at 128 on
/// its own, and its message would be less clear than ours.
pub const MAX_DEPTH_CEILING: usize = 100;
/// Default number of problems listed before the rest are only counted.
pub const DEFAULT_MAX_PROBLEMS: usize = 1000;

/// What the reader accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest input in bytes. Callers should also stop reading an upload
    /// at this size rather than buffer it whole first.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects (at most [`MAX_DEPTH_CEILING`]).
    pub max_depth: usize,
    /// Problems listed in full; more are counted in one last problem.
    pub max_problems: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_problems: DEFAULT_MAX_PROBLEMS,
        }
    }
}

/// One problem, at a JSON path such as `$.tokens[12].provider_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where.
    pub path: String,
    /// What.
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a bundle was refused; nothing of it may be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Over [`Limits::max_bytes`].
    #[error("the bundle is {}, over the limit of {}", size_text(*.size), size_text(*.limit))]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// No content at all.
    #[error("the bundle is empty")]
    Empty,
    /// A JSON syntax error.
    #[error("not valid JSON at line {line}, column {column}: {detail}")]
    NotJson {
        /// 1-based line.
        line: usize,
        /// 1-based column, in bytes.
        column: usize,
        /// The parser's words.
        detail: String,
    },
    /// The JSON stops in the middle.
    #[error("the JSON ends early at line {line}, column {column}: the file looks truncated")]
    Truncated {
        /// Line of the end.
        line: usize,
        /// Column of the end.
        column: usize,
    },
    /// Arrays and objects nest deeper than the limit.
    #[error(
        "arrays and objects nest deeper than {limit} levels at line {line}, column {column}; a bundle nests only a few"
    )]
    TooDeep {
        /// The limit.
        limit: usize,
        /// Where the limit was crossed.
        line: usize,
        /// Column there.
        column: usize,
    },
    /// Valid JSON that is not a bundle at all.
    #[error("not a Quiver export bundle: {0}")]
    NotABundle(String),
    /// `format` is not `quiver-export`.
    #[error("unsupported format {found} at $.format: expected \"{FORMAT}\"")]
    WrongFormat {
        /// The value found, as JSON.
        found: String,
    },
    /// `version` is missing or not one this code reads.
    #[error(
        "unsupported bundle version {found} at $.version: this Quiver reads version {supported}"
    )]
    UnsupportedVersion {
        /// The value found, as JSON.
        found: String,
        /// The versions this code reads.
        supported: String,
    },
    /// A field is missing, unknown or of the wrong type.
    #[error("{path} (line {line}, column {column}): {message}")]
    Structure {
        /// The JSON path.
        path: String,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Every semantic problem found.
    #[error("{}", summarize(.0))]
    Invalid(Vec<Problem>),
}

impl BundleError {
    /// The error as a list of problems with paths, for an import report.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Self::Invalid(problems) => problems.clone(),
            Self::Structure {
                path,
                line,
                column,
                message,
            } => vec![Problem::new(
                path.clone(),
                format!("{message} (line {line}, column {column})"),
            )],
            Self::WrongFormat { .. } => vec![Problem::new("$.format", self.to_string())],
            Self::UnsupportedVersion { .. } => vec![Problem::new("$.version", self.to_string())],
            _ => vec![Problem::new("$", self.to_string())],
        }
    }
}

/// Reads and checks a bundle; on success every reference inside it
/// resolves and every field is of a known kind. Sealed values are checked
/// for shape only: opening them needs the passphrase.
pub fn read_bundle(bytes: &[u8], limits: &Limits) -> Result<Bundle, BundleError> {
    if bytes.len() > limits.max_bytes {
        return Err(BundleError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    // A byte-order mark from a Windows editor is no reason to refuse a file.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BundleError::Empty);
    }
    let max_depth = limits.max_depth.min(MAX_DEPTH_CEILING);
    check_depth(bytes, max_depth)?;
    let header: Header = serde_json::from_slice(bytes).map_err(|e| json_error(e, max_depth))?;
    header.check()?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let bundle: Bundle = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| structure_error(e, max_depth))?;
    let problems = validate(&bundle, limits.max_problems);
    if problems.is_empty() {
        Ok(bundle)
    } else {
        Err(BundleError::Invalid(problems))
    }
}

/// Counts nesting outside strings in one pass, with no recursion: the
/// parser after it then never meets more than `max_depth` levels.
fn check_depth(bytes: &[u8], max_depth: usize) -> Result<(), BundleError> {
    let (mut depth, mut line, mut line_start) = (0usize, 1usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max_depth {
                        return Err(BundleError::TooDeep {
                            limit: max_depth,
                            line,
                            column: i - line_start + 1,
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    Ok(())
}

/// `format` and `version`, read first; every other field is skipped.
struct Header {
    format: Option<Value>,
    version: Option<Value>,
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;

        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = Header;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
                let mut header = Header {
                    format: None,
                    version: None,
                };
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "format" => &mut header.format,
                        "version" => &mut header.version,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format_args!(
                            "the field `{key}` appears twice"
                        )));
                    }
                    *slot = Some(map.next_value()?);
                }
                Ok(header)
            }
        }

        deserializer.deserialize_map(HeaderVisitor)
    }
}

impl Header {
    fn check(self) -> Result<(), BundleError> {
        match self.format {
            None => {
                return Err(BundleError::NotABundle(format!(
                    "it has no \"format\" field (expected \"{FORMAT}\")"
                )));
            }
            Some(Value::String(s)) if s == FORMAT => {}
            Some(other) => {
                return Err(BundleError::WrongFormat {
                    found: json_text(&other),
                });
            }
        }
        let supported = SUPPORTED_VERSIONS
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let found = match self.version {
            None => "(none: the field is missing)".to_owned(),
            Some(v) => {
                let known = v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .is_some_and(|n| SUPPORTED_VERSIONS.contains(&n));
                if known {
                    return Ok(());
                }
                json_text(&v)
            }
        };
        Err(BundleError::UnsupportedVersion { found, supported })
    }
}

/// Sorts a parser error into syntax, truncation, nesting or shape.
fn json_error(error: serde_json::Error, max_depth: usize) -> BundleError {
    // serde_json says column 0 when it fails before consuming a byte.
    let (line, column) = (error.line(), error.column().max(1));
    let detail = without_position(&error.to_string());
    match error.classify() {
        Category::Eof => BundleError::Truncated { line, column },
        Category::Syntax if detail.contains("recursion limit") => BundleError::TooDeep {
            limit: max_depth,
            line,
            column,
        },
        Category::Syntax | Category::Io => BundleError::NotJson {
            line,
            column,
            detail,
        },
        Category::Data => {
            BundleError::NotABundle(format!("{detail} (line {line}, column {column})"))
        }
    }
}

fn structure_error(
    error: serde_path_to_error::Error<serde_json::Error>,
    max_depth: usize,
) -> BundleError {
    let path = json_path(error.path());
    let inner = error.into_inner();
    if inner.classify() != Category::Data {
        return json_error(inner, max_depth);
    }
    let message = clip(&without_position(&inner.to_string()), 600);
    BundleError::Structure {
        path,
        line: inner.line(),
        column: inner.column(),
        message,
    }
}

/// `$.tokens[12].provider_id`; keys that are not plain words are quoted.
fn json_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::from("$");
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Map { key } | Segment::Enum { variant: key } => push_key(&mut out, key),
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

fn push_key(out: &mut String, key: &str) {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.push('.');
        out.push_str(key);
    } else {
        let quoted = serde_json::to_string(&clip(key, 64)).unwrap_or_default();
        let _ = write!(out, "[{quoted}]");
    }
}

/// Collects problems up to a cap, then only counts them.
struct Problems {
    list: Vec<Problem>,
    max: usize,
    dropped: usize,
}

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < self.max {
            self.list.push(Problem::new(path, message));
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<Problem> {
        if self.dropped > 0 {
            let message = format!("{} more problems are not listed", self.dropped);
            self.list.push(Problem::new("$", message));
        }
        self.list
    }
}

/// Every semantic problem of a well-typed bundle.
fn validate(bundle: &Bundle, max_problems: usize) -> Vec<Problem> {
    let mut p = Problems {
        list: Vec::new(),
        max: max_problems,
        dropped: 0,
    };
    check_secrets(bundle, &mut p);
    let provider_ids = check_providers(&bundle.providers, &mut p);
    check_tokens(bundle, &provider_ids, &mut p);
    p.finish()
}

fn check_secrets(bundle: &Bundle, p: &mut Problems) {
    match &bundle.secrets {
        Some(header) => {
            if let Err(e) = KdfParams::from_header(&header.kdf) {
                let path = match &e {
                    TransferError::KdfParameter { name, .. } => format!("$.secrets.kdf.{name}"),
                    TransferError::Salt(_) => "$.secrets.kdf.salt".to_owned(),
                    TransferError::UnsupportedKdf(_) => "$.secrets.kdf.algorithm".to_owned(),
                    _ => "$.secrets.kdf".to_owned(),
                };
                p.push(path, e.to_string());
            }
            if header.cipher != CIPHER {
                p.push(
                    "$.secrets.cipher",
                    format!("must be \"{CIPHER}\", not {}", quoted(&header.cipher)),
                );
            }
            if let Err(reason) = decode_sealed(&header.check) {
                p.push("$.secrets.check.sealed", reason);
            }
        }
        None => {
            let mut sealed = bundle.sealed_values();
            if let Some((first, _)) = sealed.next() {
                let others = match sealed.count() {
                    0 => String::new(),
                    n => format!(" (and {n} more)"),
                };
                p.push(
                    "$.secrets",
                    format!(
                        "is missing, but {first}{others} holds a sealed value: without the key parameters no secret can be opened"
                    ),
                );
            }
        }
    }
    for (path, value) in bundle.sealed_values() {
        if let Err(reason) = decode_sealed(value) {
            p.push(format!("{path}.sealed"), reason);
        }
    }
    // The code itself is checked on import, with the passphrase's key.
    if let Some(text) = &bundle.mac {
        if bundle.secrets.is_none() {
            p.push(
                "$.mac",
                "only a bundle with secrets carries an authentication code: without $.secrets there is no key to check it",
            );
        } else if mac::decode(text).is_err() {
            p.push(
                "$.mac",
                format!("must be standard base64 of {MAC_LEN} bytes (HMAC-SHA256)"),
            );
        }
    }
}

/// Checks the providers; returns each id with the index of its first entry.
fn check_providers<'b>(
    providers: &'b [ProviderEntry],
    p: &mut Problems,
) -> HashMap<&'b str, usize> {
    let mut ids = HashMap::with_capacity(providers.len());
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(providers.len());
    for (i, pr) in providers.iter().enumerate() {
        let at = |field: &str| format!("$.providers[{i}].{field}");
        if check_id(&pr.id, &at("id"), p) {
            match ids.entry(pr.id.as_str()) {
                Entry::Occupied(first) => p.push(
                    at("id"),
                    format!(
                        "duplicate provider id {}: $.providers[{}] has it already",
                        quoted(&pr.id),
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        if check_name(&pr.name, &at("name"), p) {
            match names.entry(pr.name.trim()) {
                Entry::Occupied(first) => p.push(
                    at("name"),
                    format!(
                        "duplicate provider name {}: $.providers[{}] has it already, and provider names are unique",
                        quoted(pr.name.trim()),
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        check_url(Some(&pr.token_endpoint), &at("token_endpoint"), p);
        for (field, value) in [
            ("issuer", &pr.issuer),
            ("authorization_endpoint", &pr.authorization_endpoint),
            ("refresh_endpoint", &pr.refresh_endpoint),
            ("revocation_endpoint", &pr.revocation_endpoint),
            ("jwks_uri", &pr.jwks_uri),
        ] {
            check_url(value.as_deref(), &at(field), p);
        }
        if let Err(e) = pr.client_auth_method.parse::<ClientAuthMethod>() {
            p.push(
                at("client_auth_method"),
                format!("{}, not {}", e.must_be(), quoted(&pr.client_auth_method)),
            );
        }
        if let Some(alg) = &pr.signing_alg
            && SigningAlg::parse(alg).is_none()
        {
            p.push(
                at("signing_alg"),
                format!("must be RS256, PS256 or ES256, not {}", quoted(alg)),
            );
        }
        if !(1..=3).contains(&pr.scope_separator.chars().count()) {
            p.push(at("scope_separator"), "must be 1 to 3 characters");
        }
        if pr.default_lifetime_secs.is_some_and(|s| s <= 0) {
            p.push(
                at("default_lifetime_secs"),
                "must be a positive number of seconds",
            );
        }
        if !(100..=60_000).contains(&pr.connect_timeout_ms) {
            p.push(at("connect_timeout_ms"), "must be between 100 and 60000");
        }
        if !(500..=300_000).contains(&pr.timeout_ms) {
            p.push(at("timeout_ms"), "must be between 500 and 300000");
        }
        if !(1..=64).contains(&pr.refresh_concurrency) {
            p.push(at("refresh_concurrency"), "must be between 1 and 64");
        }
        if pr.refresh_rate_per_minute > 100_000 {
            p.push(
                at("refresh_rate_per_minute"),
                "must be between 0 (no limit) and 100000",
            );
        }
        for (field, map) in [
            ("authorize_params", &pr.authorize_params),
            ("token_params", &pr.token_params),
        ] {
            check_params(map, &at(field), p);
        }
    }
    ids
}

fn check_tokens(bundle: &Bundle, provider_ids: &HashMap<&str, usize>, p: &mut Problems) {
    let tokens = &bundle.tokens;
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    // Import matches tokens by owner and name; two alike in one bundle
    // would make the conflict policy ambiguous.
    let mut names: HashMap<(Option<String>, &str), usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let at = |field: &str| format!("$.tokens[{i}].{field}");
        if check_id(&t.id, &at("id"), p) {
            match ids.entry(t.id.as_str()) {
                Entry::Occupied(first) => p.push(
                    at("id"),
                    format!(
                        "duplicate token id {}: $.tokens[{}] has it already",
                        quoted(&t.id),
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        if check_name(&t.name, &at("name"), p) {
            let owner = t.owner_email.as_deref().map(str::to_lowercase);
            match names.entry((owner, t.name.trim())) {
                Entry::Occupied(first) => p.push(
                    at("name"),
                    format!(
                        "duplicate token name {} for the same owner: $.tokens[{}] has it already",
                        quoted(t.name.trim()),
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        if let Some(email) = &t.owner_email
            && !email.contains('@')
        {
            p.push(at("owner_email"), "must be an email address");
        }
        let provider = match provider_ids.get(t.provider_id.as_str()) {
            Some(&j) => Some(&bundle.providers[j]),
            None => {
                p.push(
                    at("provider_id"),
                    format!(
                        "no provider in this bundle has the id {}",
                        quoted(&t.provider_id)
                    ),
                );
                None
            }
        };
        let flow = match t.flow.parse::<Flow>() {
            Ok(flow) => Some(flow),
            Err(e) => {
                p.push(
                    at("flow"),
                    format!("{}, not {}", e.must_be(), quoted(&t.flow)),
                );
                None
            }
        };
        if let (Some(flow), Some(provider)) = (flow, provider) {
            check_flow_fits(flow, provider, &at("flow"), p);
        }
        if !t.use_default_keys
            && provider.is_some_and(|pr| {
                pr.client_auth_method.parse() == Ok(ClientAuthMethod::PrivateKeyJwt)
            })
        {
            p.push(
                at("use_default_keys"),
                "must be true: the provider uses private_key_jwt, whose key signs for the provider's client only",
            );
        }
        if flow == Some(Flow::Password) && t.username.as_deref().is_none_or(|u| u.trim().is_empty())
        {
            p.push(at("username"), "is required for the password flow");
        }
        if !t.use_default_keys && t.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
            p.push(
                at("client_id"),
                "is required when use_default_keys is false",
            );
        }
        if !(0..=86_400).contains(&t.refresh_margin_secs) {
            p.push(at("refresh_margin_secs"), "must be between 0 and 86400");
        }
        if !(0..=604_800).contains(&t.refresh_lead_secs) {
            p.push(at("refresh_lead_secs"), "must be between 0 and 604800");
        }
        if let Some(resource) = &t.resource
            && url::Url::parse(resource).is_err()
        {
            p.push(at("resource"), "must be an absolute URI (RFC 8707)");
        }
        check_params(&t.additional_values, &at("additional_values"), p);
    }
}

/// Extra parameters follow the services' rule ([`params::check`]); the
/// path names the key, e.g. `$.tokens[3].additional_values.client_id`.
fn check_params(map: &BTreeMap<String, String>, path: &str, p: &mut Problems) {
    match params::check(map) {
        Ok(()) => {}
        Err(problem) => {
            let mut at = path.to_owned();
            if let Some(key) = problem.key() {
                push_key(&mut at, key);
            }
            p.push(at, problem.message());
        }
    }
}

/// The same rules the token service applies, so the preview shows them.
fn check_flow_fits(flow: Flow, provider: &ProviderEntry, path: &str, p: &mut Problems) {
    let method = provider.client_auth_method.parse().ok();
    if method == Some(ClientAuthMethod::PrivateKeyJwt) && flow != Flow::ClientCredentials {
        p.push(
            path,
            "the provider uses private_key_jwt, which works only with client_credentials",
        );
    }
    if flow.is_interactive() && provider.authorization_endpoint.is_none() {
        p.push(
            path,
            "this flow needs a browser, but the provider has no authorization_endpoint",
        );
    }
    if flow == Flow::OidcHybrid && provider.jwks_uri.is_none() {
        p.push(
            path,
            "oidc_hybrid needs the provider's jwks_uri to check id_tokens",
        );
    }
}

/// Whether the id is usable (a problem is recorded when not).
fn check_id(id: &str, path: &str, p: &mut Problems) -> bool {
    if id.trim().is_empty() {
        p.push(path, "must not be empty");
        false
    } else if id.chars().count() > 200 {
        p.push(path, "must be at most 200 characters");
        false
    } else {
        true
    }
}

/// Whether the name is usable; the limits are the services'.
fn check_name(name: &str, path: &str, p: &mut Problems) -> bool {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        p.push(path, "must be 1 to 100 characters");
        false
    } else {
        true
    }
}

/// The most permissive form of the providers' URL policy (plain http only
/// on loopback); the import applies the instance's own setting.
fn check_url(value: Option<&str>, path: &str, p: &mut Problems) {
    if let Some(value) = value
        && let Err(message) = url_policy::check_url(value, true)
    {
        p.push(path, clip(&message, 300));
    }
}

fn summarize(problems: &[Problem]) -> String {
    const SHOWN: usize = 3;
    let n = problems.len();
    let noun = if n == 1 { "problem" } else { "problems" };
    let head = problems
        .iter()
        .take(SHOWN)
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if n > SHOWN {
        format!("the bundle has {n} {noun}: {head}; and {} more", n - SHOWN)
    } else {
        format!("the bundle has {n} {noun}: {head}")
    }
}

fn size_text(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB {
        format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// serde_json appends " at line L column C"; the position is reported apart.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// A value from the bundle as short JSON text, for a message.
fn json_text(value: &Value) -> String {
    clip(&value.to_string(), 64)
}

fn quoted(text: &str) -> String {
    // Clipped before quoting: an id may be megabytes long.
    serde_json::to_string(&clip(text, 64)).unwrap_or_default()
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::transfer::passphrase::tests::shared_key;
    use crate::transfer::samples;

    fn read(bytes: &[u8]) -> Result<Bundle, BundleError> {
        read_bundle(bytes, &Limits::default())
    }

    fn read_value(value: &Value) -> Result<Bundle, BundleError> {
        read(&serde_json::to_vec_pretty(value).unwrap())
    }

    /// The problems of a bundle that must be semantically invalid.
    fn problems(value: &Value) -> Vec<Problem> {
        match read_value(value) {
            Err(BundleError::Invalid(problems)) => problems,
            other => panic!("expected semantic problems, got {other:?}"),
        }
    }

    fn has_problem(problems: &[Problem], path: &str, words: &str) -> bool {
        problems
            .iter()
            .any(|p| p.path == path && p.message.contains(words))
    }

    #[test]
    fn valid_bundle_reads_back_unchanged() {
        assert_eq!(read(&samples::json()).unwrap(), samples::bundle());
        // Compact JSON and a byte-order mark are fine too.
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(serde_json::to_vec(&samples::bundle()).unwrap());
        assert_eq!(read(&bom).unwrap(), samples::bundle());
    }

    #[test]
    fn over_the_size_limit_says_size_and_limit() {
        let bytes = samples::json();
        let limits = Limits {
            max_bytes: 100,
            ..Limits::default()
        };
        let err = read_bundle(&bytes, &limits).unwrap_err();
        assert_eq!(
            err,
            BundleError::TooLarge {
                size: bytes.len(),
                limit: 100
            }
        );
        let text = err.to_string();
        assert!(text.contains(&format!("{} bytes", bytes.len())), "{text}");
        assert!(text.contains("limit of 100 bytes"), "{text}");
        let big = BundleError::TooLarge {
            size: 60 * 1024 * 1024,
            limit: DEFAULT_MAX_BYTES,
        };
        assert!(
            big.to_string().contains("over the limit of 50.0 MiB"),
            "{big}"
        );
    }

    #[test]
    fn empty_input_is_named_empty() {
        assert_eq!(read(b"").unwrap_err(), BundleError::Empty);
        assert_eq!(read(b" \n\t ").unwrap_err(), BundleError::Empty);
    }

    #[test]
    fn not_json_gives_line_and_column() {
        let err = read(b"{\n  \"format\": quiver-export\n}").unwrap_err();
        assert!(
            matches!(err, BundleError::NotJson { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(matches!(
            read(b"hello").unwrap_err(),
            BundleError::NotJson { line: 1, .. }
        ));
        assert!(matches!(
            read(&[0xff, 0xfe, 0x00]).unwrap_err(),
            BundleError::NotJson { .. }
        ));
    }

    #[test]
    fn truncated_json_is_named_truncated() {
        let bytes = samples::json();
        let err = read(&bytes[..bytes.len() / 2]).unwrap_err();
        let BundleError::Truncated { line, .. } = err else {
            panic!("{err:?}");
        };
        assert!(line > 1);
        assert!(err.to_string().contains("truncated"));
    }

    #[test]
    fn trailing_text_after_the_bundle_is_refused() {
        let mut bytes = samples::json();
        bytes.extend_from_slice(b"\n{}");
        let err = read(&bytes).unwrap_err();
        assert!(matches!(err, BundleError::NotJson { .. }), "{err:?}");
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn json_that_is_not_an_object_is_not_a_bundle() {
        for text in ["[]", "42", "\"quiver-export\"", "null"] {
            let err = read(text.as_bytes()).unwrap_err();
            assert!(matches!(err, BundleError::NotABundle(_)), "{text}: {err:?}");
        }
        let err = read(b"{\"providers\": []}").unwrap_err();
        assert!(err.to_string().contains("no \"format\" field"), "{err}");
    }

    #[test]
    fn another_format_is_named() {
        let mut v = samples::value();
        v["format"] = json!("other-export");
        let err = read_value(&v).unwrap_err();
        assert!(matches!(err, BundleError::WrongFormat { .. }), "{err:?}");
        assert!(err.to_string().contains("\"other-export\""), "{err}");
        assert!(err.to_string().contains("$.format"), "{err}");
    }

    #[test]
    fn another_version_says_which_versions_are_read() {
        let mut v = samples::value();
        v["version"] = json!(2);
        // A newer version's fields must not be reported as unknown fields.
        v["tokens"][0]["new_in_v2"] = json!(true);
        let err = read_value(&v).unwrap_err();
        assert_eq!(
            err,
            BundleError::UnsupportedVersion {
                found: "2".into(),
                supported: "1".into()
            }
        );
        assert!(err.to_string().contains("reads version 1"), "{err}");
        for bad in [json!("1"), json!(1.5), json!(-1), json!(null)] {
            v["version"] = bad.clone();
            assert!(
                matches!(
                    read_value(&v).unwrap_err(),
                    BundleError::UnsupportedVersion { .. }
                ),
                "{bad}"
            );
        }
        v.as_object_mut().unwrap().remove("version");
        assert!(read_value(&v).unwrap_err().to_string().contains("missing"));
    }

    #[test]
    fn wrong_type_names_the_path_and_position() {
        let mut v = samples::value();
        v["tokens"][1]["refresh_margin_secs"] = json!("soon");
        let err = read_value(&v).unwrap_err();
        let BundleError::Structure {
            path,
            line,
            message,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(path, "$.tokens[1].refresh_margin_secs");
        assert!(*line > 1);
        assert!(message.contains("invalid type"), "{message}");
        assert_eq!(err.problems()[0].path, "$.tokens[1].refresh_margin_secs");
    }

    #[test]
    fn missing_field_names_its_object() {
        let mut v = samples::value();
        v["providers"][1]
            .as_object_mut()
            .unwrap()
            .remove("token_endpoint");
        let err = read_value(&v).unwrap_err();
        assert!(
            matches!(&err, BundleError::Structure { path, message, .. }
                if path == "$.providers[1]" && message.contains("token_endpoint")),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_field_is_an_error_at_its_path() {
        let mut v = samples::value();
        v["tokens"][0]["scopes"] = json!("openid");
        let err = read_value(&v).unwrap_err();
        assert!(
            matches!(&err, BundleError::Structure { path, message, .. }
                if path == "$.tokens[0].scopes" && message.contains("unknown field `scopes`")),
            "{err:?}"
        );
        let mut v = samples::value();
        v["extra"] = json!(1);
        assert!(matches!(
            read_value(&v).unwrap_err(),
            BundleError::Structure { path, .. } if path == "$.extra"
        ));
    }

    #[test]
    fn odd_keys_are_quoted_in_paths() {
        let mut v = samples::value();
        v["providers"][0]["authorize_params"]["a b"] = json!(7);
        let err = read_value(&v).unwrap_err();
        assert!(
            matches!(&err, BundleError::Structure { path, .. }
                if path == r#"$.providers[0].authorize_params["a b"]"#),
            "{err:?}"
        );
    }

    #[test]
    fn plain_string_secret_is_refused_without_echo() {
        let mut v = samples::value();
        v["tokens"][2]["password"] = json!("hunter2-in-clear");
        let err = read_value(&v).unwrap_err();
        assert!(
            matches!(&err, BundleError::Structure { path, .. } if path == "$.tokens[2].password"),
            "{err:?}"
        );
        assert!(err.to_string().contains("must be sealed"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn duplicate_ids_point_at_the_second_occurrence() {
        let mut v = samples::value();
        v["providers"][1]["id"] = json!("p1");
        v["tokens"][2]["id"] = json!("t1");
        let found = problems(&v);
        assert!(
            has_problem(&found, "$.providers[1].id", "$.providers[0]"),
            "{found:?}"
        );
        assert!(
            has_problem(&found, "$.tokens[2].id", "$.tokens[0]"),
            "{found:?}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut v = samples::value();
        v["providers"][1]["name"] = json!(" Example AS ");
        v["tokens"][2]["name"] = json!("Machine token");
        let found = problems(&v);
        assert!(
            has_problem(&found, "$.providers[1].name", "duplicate provider name"),
            "{found:?}"
        );
        assert!(
            has_problem(&found, "$.tokens[2].name", "duplicate token name"),
            "{found:?}"
        );
        // The same token name under another owner is fine.
        let mut v = samples::value();
        v["tokens"][2]["name"] = json!("Machine token");
        v["tokens"][2]["owner_email"] = json!("bob@example.com");
        read_value(&v).unwrap();
    }

    #[test]
    fn token_pointing_to_a_missing_provider_is_refused() {
        let mut v = samples::value();
        v["tokens"][1]["provider_id"] = json!("p9");
        let found = problems(&v);
        assert_eq!(
            found,
            vec![Problem::new(
                "$.tokens[1].provider_id",
                "no provider in this bundle has the id \"p9\""
            )]
        );
    }

    #[test]
    fn invalid_names_of_flows_methods_and_algorithms() {
        let mut v = samples::value();
        v["tokens"][0]["flow"] = json!("implicit");
        v["providers"][0]["client_auth_method"] = json!("client_secret_jwt");
        v["providers"][1]["signing_alg"] = json!("HS256");
        let found = problems(&v);
        assert!(
            has_problem(&found, "$.tokens[0].flow", "\"implicit\""),
            "{found:?}"
        );
        assert!(
            has_problem(
                &found,
                "$.providers[0].client_auth_method",
                "\"client_secret_jwt\""
            ),
            "{found:?}"
        );
        assert!(
            has_problem(&found, "$.providers[1].signing_alg", "\"HS256\""),
            "{found:?}"
        );
    }

    #[test]
    fn flow_that_the_provider_cannot_serve_is_refused() {
        let mut v = samples::value();
        // p2 uses private_key_jwt, which only client_credentials can use.
        v["tokens"][1]["flow"] = json!("password");
        v["tokens"][1]["username"] = json!("ada");
        let found = problems(&v);
        assert!(
            has_problem(&found, "$.tokens[1].flow", "private_key_jwt"),
            "{found:?}"
        );
    }

    #[test]
    fn field_values_out_of_range_are_listed() {
        let mut v = samples::value();
        v["providers"][0]["timeout_ms"] = json!(5);
        v["providers"][0]["token_endpoint"] = json!("http://as.example/token");
        v["providers"][0]["jwks_uri"] = json!("https://169.254.169.254/jwks");
        v["tokens"][0]["refresh_margin_secs"] = json!(-1);
        v["tokens"][1]["refresh_lead_secs"] = json!(700_000);
        v["providers"][1]["refresh_concurrency"] = json!(0);
        v["tokens"][2]["username"] = json!(null);
        v["tokens"][0]["name"] = json!("  ");
        let found = problems(&v);
        for (path, words) in [
            ("$.providers[0].timeout_ms", "between 500"),
            ("$.providers[0].token_endpoint", "https"),
            ("$.providers[0].jwks_uri", "metadata"),
            ("$.tokens[0].refresh_margin_secs", "between 0"),
            ("$.tokens[1].refresh_lead_secs", "between 0"),
            ("$.providers[1].refresh_concurrency", "between 1"),
            ("$.tokens[2].username", "required"),
            ("$.tokens[0].name", "1 to 100"),
        ] {
            assert!(has_problem(&found, path, words), "{path}: {found:?}");
        }
    }

    #[test]
    fn parameters_quiver_sets_itself_are_refused_at_their_key() {
        let mut v = samples::value();
        v["tokens"][0]["additional_values"]["client_id"] = json!("someone-else");
        v["providers"][1]["authorize_params"]["State"] = json!("x");
        v["providers"][0]["token_params"]["grant_type"] = json!("password");
        let found = problems(&v);
        for path in [
            "$.tokens[0].additional_values.client_id",
            "$.providers[1].authorize_params.State",
            "$.providers[0].token_params.grant_type",
        ] {
            assert!(
                has_problem(&found, path, "Quiver sets itself"),
                "{path}: {found:?}"
            );
        }
        // The sample's `audience` is a real extra value and stays.
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn a_private_key_jwt_token_uses_the_providers_client() {
        let mut v = samples::value();
        // t2 uses p2, a private_key_jwt provider.
        v["tokens"][1]["use_default_keys"] = json!(false);
        v["tokens"][1]["client_id"] = json!("someone-else");
        let found = problems(&v);
        assert!(
            has_problem(&found, "$.tokens[1].use_default_keys", "private_key_jwt"),
            "{found:?}"
        );
    }

    #[test]
    fn an_authentication_code_needs_secrets_and_the_right_shape() {
        let mut v = samples::value();
        v["mac"] = json!(STANDARD.encode([0u8; 32]));
        let found = problems(&v);
        assert!(has_problem(&found, "$.mac", "$.secrets"), "{found:?}");
        let (key, header) = shared_key();
        let mut v = serde_json::to_value(samples::sealed_bundle(key, header)).unwrap();
        v["mac"] = json!("not a code");
        let found = problems(&v);
        assert!(has_problem(&found, "$.mac", "32 bytes"), "{found:?}");
        v["mac"] = json!(STANDARD.encode([0u8; 32]));
        read_value(&v).unwrap();
    }

    #[test]
    fn every_semantic_problem_is_reported_not_just_the_first() {
        let mut v = samples::value();
        v["providers"][1]["id"] = json!("p1");
        v["tokens"][0]["flow"] = json!("implicit");
        v["tokens"][1]["provider_id"] = json!("nope");
        let err = read_value(&v).unwrap_err();
        assert_eq!(err.problems().len(), 3, "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("the bundle has 3 problems: "), "{text}");
        assert!(text.contains("$.tokens[1].provider_id"), "{text}");
    }

    #[test]
    fn problem_count_is_capped() {
        let mut v = samples::value();
        let token = v["tokens"][1].clone();
        v["tokens"] = Value::Array(
            (0..50)
                .map(|i| {
                    let mut t = token.clone();
                    t["id"] = json!(format!("t{i}"));
                    t["name"] = json!(format!("n{i}"));
                    t["provider_id"] = json!("missing");
                    t
                })
                .collect(),
        );
        let limits = Limits {
            max_problems: 10,
            ..Limits::default()
        };
        let err = read_bundle(&serde_json::to_vec(&v).unwrap(), &limits).unwrap_err();
        let found = err.problems();
        assert_eq!(found.len(), 11);
        assert_eq!(found[10].message, "40 more problems are not listed");
    }

    #[test]
    fn sealed_values_without_a_secrets_header_are_refused() {
        let (key, header) = shared_key();
        let mut sealed = samples::sealed_bundle(key, header);
        read(&serde_json::to_vec(&sealed).unwrap()).unwrap();
        sealed.secrets = None;
        let v = serde_json::to_value(&sealed).unwrap();
        let found = problems(&v);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "$.secrets");
        assert!(
            found[0]
                .message
                .contains("$.providers[0].client_secret (and 15 more)"),
            "{found:?}"
        );
    }

    #[test]
    fn malformed_secrets_header_and_values_are_listed() {
        let (key, header) = shared_key();
        let mut v = serde_json::to_value(samples::sealed_bundle(key, header)).unwrap();
        v["secrets"]["kdf"]["m_cost"] = json!(4_000_000);
        v["secrets"]["cipher"] = json!("rot13");
        v["tokens"][1]["access_token"]["sealed"] = json!("not*base64");
        let found = problems(&v);
        assert!(
            has_problem(&found, "$.secrets.kdf.m_cost", "4000000"),
            "{found:?}"
        );
        assert!(
            has_problem(&found, "$.secrets.cipher", "rot13"),
            "{found:?}"
        );
        assert!(
            has_problem(&found, "$.tokens[1].access_token.sealed", "base64"),
            "{found:?}"
        );
    }

    #[test]
    fn absurd_nesting_is_refused_without_recursion() {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let mut text = String::from("{\"format\":\"quiver-export\",\"version\":1,\"x\":");
            text.push_str(&open.repeat(100_000));
            text.push_str(&close.repeat(100_000));
            text.push('}');
            let err = read(text.as_bytes()).unwrap_err();
            assert!(
                matches!(
                    err,
                    BundleError::TooDeep {
                        limit: 64,
                        line: 1,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("deeper than 64 levels"), "{err}");
            // Unclosed, and with a configured limit above serde_json's own.
            let limits = Limits {
                max_depth: 1_000_000,
                ..Limits::default()
            };
            let err = read_bundle(open.repeat(100_000).as_bytes(), &limits).unwrap_err();
            assert!(
                matches!(
                    err,
                    BundleError::TooDeep {
                        limit: MAX_DEPTH_CEILING,
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        let mut v = samples::value();
        v["tokens"][0]["scope"] = json!("[[[[\\\"{{{{".repeat(100));
        read_value(&v).unwrap();
    }

    #[test]
    fn depth_just_within_the_limit_reaches_the_type_check() {
        let limits = Limits {
            max_depth: 6,
            ..Limits::default()
        };
        let mut v = samples::value();
        v["tokens"][0]["additional_values"]["x"] = json!([[[1]]]);
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            read_bundle(&bytes, &limits).unwrap_err(),
            BundleError::TooDeep { limit: 6, .. }
        ));
        assert!(matches!(
            read(&bytes).unwrap_err(),
            BundleError::Structure { path, .. } if path == "$.tokens[0].additional_values.x"
        ));
    }

    /// Every path of scalars and containers in a JSON value.
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    pointers(v, format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    pointers(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,20}".prop_map(Value::from),
            Just(json!("p1")),
            Just(json!("t1")),
            Just(json!({"sealed": "AAAA"})),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A result is fine when it is a bundle that reads back the same, or an
    /// error with a message.
    fn assert_clean(result: Result<Bundle, BundleError>) -> Result<(), TestCaseError> {
        match result {
            Ok(bundle) => {
                let again = read(&serde_json::to_vec(&bundle).unwrap());
                prop_assert_eq!(again.as_ref().ok(), Some(&bundle));
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert!(!e.problems().is_empty());
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            // PROPTEST_CASES raises this for a longer fuzzing run.
            cases: ProptestConfig::default().cases.max(512),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            assert_clean(read(&bytes))?;
        }

        #[test]
        fn json_like_text_never_panics(text in r#"[\[\]{}":,0-9a-z \\.-]{0,512}"#) {
            assert_clean(read(text.as_bytes()))?;
        }

        /// Byte edits of a valid bundle: flips, deletions, insertions,
        /// truncation and duplicated ranges.
        #[test]
        fn mutated_bundle_bytes_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..5, any::<u8>()), 1..8)
        ) {
            let mut bytes = samples::json();
            for (at, op, byte) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] ^= byte | 1,
                    1 => { bytes.remove(i); }
                    2 => bytes.insert(i, b"{}[]\",:0\\ a"[usize::from(byte) % 11]),
                    3 => bytes.truncate(i),
                    _ => {
                        let end = (i + usize::from(byte)).min(bytes.len());
                        let copy = bytes[i..end].to_vec();
                        bytes.splice(i..i, copy);
                    }
                }
            }
            assert_clean(read(&bytes))?;
        }

        /// Structural edits of a valid bundle: any value, anywhere,
        /// replaced by any JSON.
        #[test]
        fn mutated_bundle_values_never_panic(
            target in any::<prop::sample::Index>(),
            replacement in any_json(),
        ) {
            let mut v = samples::value();
            let mut all = Vec::new();
            pointers(&v, String::new(), &mut all);
            let pointer = &all[target.index(all.len())];
            if pointer.is_empty() {
                v = replacement;
            } else if let Some(slot) = v.pointer_mut(pointer) {
                *slot = replacement;
            }
            assert_clean(read_value(&v))?;
        }
    }
}
