//! Reading a bundle from untrusted bytes.
//!
//! The steps go from cheap to thorough, and each error says what and where:
//! the size; the nesting depth, scanned without recursion so absurd nesting
//! cannot exhaust the stack; the syntax, `format` and `version` (read before
//! the fields, so a bundle of another version gets "unsupported version",
//! not "unknown field"); the fields with their JSON path; then every
//! semantic problem at once (duplicates, dangling references, bad names), so
//! a preview can list them all.

#[cfg(test)]
mod check_tests;
mod checks;
#[cfg(test)]
mod tests;

use std::fmt::{self, Write as _};

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::error::Category;
use serde_path_to_error::Segment;

use super::bundle::{Bundle, FORMAT, SUPPORTED_VERSIONS};
use super::text::clip;
use checks::validate;

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
