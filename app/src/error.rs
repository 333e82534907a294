//! The error every server function returns, as it travels to the browser.

use serde::{Deserialize, Serialize};

use crate::transfer::ImportProblem;
use server_fn_error::{FromServerFnError, ServerFnErrorErr};

mod server_fn_error {
    pub(crate) use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
}

/// What went wrong, in terms the person at the screen can act on. Internal
/// failures carry no detail: the server logs them once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(into = "ErrorWire", from = "ErrorWire")]
pub enum AppError {
    /// Input that the server refused; `field` names the form field.
    #[error("{message}")]
    Validation {
        /// The field the message is about, when there is one.
        field: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The object does not exist (or is not visible to the caller).
    #[error("{0} was not found")]
    NotFound(String),
    /// The object conflicts with an existing one.
    #[error("{0}")]
    Conflict(String),
    /// Nobody is signed in, or the credentials were refused.
    #[error("sign in to continue")]
    Unauthenticated,
    /// Signed in, but not allowed to do this.
    #[error("you are not allowed to do this")]
    Forbidden,
    /// Too many attempts; try again later.
    #[error("too many attempts; try again in {retry_after_seconds} seconds")]
    RateLimited {
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// The token can only be renewed by a person authorizing it again.
    #[error("this token needs to be authorized again by a person; get a link from {auth_link}")]
    NeedsReauthorization {
        /// The REST endpoint that makes the link.
        auth_link: String,
    },
    /// The provider did not answer usably; try again later.
    #[error("the provider is unavailable: {message}")]
    ProviderUnavailable {
        /// What happened.
        message: String,
        /// Seconds to wait before trying again.
        retry_after_seconds: u64,
    },
    /// The provider refused to renew the token.
    #[error("the provider refused the token: {message}")]
    ProviderRefused {
        /// The provider's words.
        message: String,
    },
    /// The request came from another site.
    #[error("cross-site request refused")]
    CrossSite,
    /// A dependency (database, provider) is unavailable right now.
    #[error("{0}")]
    Unavailable(String),
    /// The request is larger than this server takes; nothing was done.
    #[error("{message}")]
    TooLarge {
        /// The form field that was too large, when there is one.
        field: Option<String>,
        /// Which limit, and the setting that raises it when there is one.
        message: String,
        /// The limit in bytes, when the answer names it.
        limit_bytes: Option<u64>,
    },
    /// The body is not of a kind this endpoint takes (JSON, or a file
    /// upload for the import).
    #[error("{message}")]
    UnsupportedMediaType {
        /// The form field that should have carried it, when there is one.
        field: Option<String>,
        /// What to send instead.
        message: String,
    },
    /// The body is not valid JSON.
    #[error("{0}")]
    InvalidJson(String),
    /// The request could not be read at all.
    #[error("{0}")]
    BadRequest(String),
    /// An export or import refused; nothing was exported or imported.
    #[error("{message}")]
    Transfer {
        /// Why.
        fault: TransferFault,
        /// What is wrong and how to fix it.
        message: String,
        /// Every problem with its place (a JSON path), when the refusal
        /// lists them.
        problems: Option<Vec<ImportProblem>>,
        /// The whole import report, when the bundle was read far enough
        /// to make one.
        report: Option<Box<serde_json::Value>>,
    },
    /// A server fault; details are in the server log.
    #[error("something went wrong on the server; the details are in its log")]
    Internal,
    /// The call did not reach the server or its answer did not come back.
    #[error("{}", crate::components::failed_call_message(.0))]
    Transport(ServerFnErrorErr),
}

/// Why an export or import was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferFault {
    /// Export: ids that name nothing, or too many ids.
    Selection,
    /// The bundle is over the import limit.
    TooLarge {
        /// The limit in bytes.
        limit_bytes: u64,
    },
    /// The bundle is not JSON, ends early, or is empty.
    NotJson,
    /// The bundle nests deeper than any bundle does.
    TooDeep,
    /// The bundle cannot go into this instance as it is (wrong format or
    /// version, wrong fields, bad references, unusable secrets).
    Invalid,
    /// The content does not match the bundle's authentication code.
    Altered,
    /// Sealed secrets without an authentication code.
    Unauthenticated,
    /// Sealed secrets and no passphrase.
    PassphraseRequired,
    /// The passphrase does not open the bundle's secrets.
    WrongPassphrase,
    /// The import id is in use by a running import.
    ImportRunning,
    /// The database failed; the import was rolled back.
    RolledBack,
}

/// An error's HTTP status and its stable machine-readable code (REST
/// `error.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind {
    /// The HTTP status.
    pub status: u16,
    /// The code.
    pub code: &'static str,
}

impl ErrorKind {
    const fn new(status: u16, code: &'static str) -> Self {
        Self { status, code }
    }
}

/// Which [`AppError`] an [`ErrorWire`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
enum ErrorVariant {
    Validation,
    NotFound,
    Conflict,
    Unauthenticated,
    Forbidden,
    RateLimited,
    NeedsReauthorization,
    ProviderUnavailable,
    ProviderRefused,
    CrossSite,
    Unavailable,
    TooLarge,
    UnsupportedMediaType,
    InvalidJson,
    BadRequest,
    Transfer,
    #[default]
    Internal,
    Transport,
}

/// An [`AppError`] as it travels between the server and the browser (the
/// error of a server function, the results a page is sent with): one flat
/// record with the variant's name, so that the browser decodes one struct
/// instead of a struct per variant, in the first load of every page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct ErrorWire {
    kind: ErrorVariant,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// The message, or the variant's one text.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<TransferFault>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<Vec<ImportProblem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<Box<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<ServerFnErrorErr>,
}

impl From<AppError> for ErrorWire {
    fn from(error: AppError) -> Self {
        use ErrorVariant as V;
        let with = |kind, message: String| Self {
            kind,
            message: Some(message),
            ..Self::default()
        };
        match error {
            AppError::Validation { field, message } => Self {
                field,
                ..with(V::Validation, message)
            },
            AppError::NotFound(what) => with(V::NotFound, what),
            AppError::Conflict(what) => with(V::Conflict, what),
            AppError::Unauthenticated => Self {
                kind: V::Unauthenticated,
                ..Self::default()
            },
            AppError::Forbidden => Self {
                kind: V::Forbidden,
                ..Self::default()
            },
            AppError::RateLimited {
                retry_after_seconds,
            } => Self {
                kind: V::RateLimited,
                retry_after_seconds: Some(retry_after_seconds),
                ..Self::default()
            },
            AppError::NeedsReauthorization { auth_link } => Self {
                kind: V::NeedsReauthorization,
                auth_link: Some(auth_link),
                ..Self::default()
            },
            AppError::ProviderUnavailable {
                message,
                retry_after_seconds,
            } => Self {
                retry_after_seconds: Some(retry_after_seconds),
                ..with(V::ProviderUnavailable, message)
            },
            AppError::ProviderRefused { message } => with(V::ProviderRefused, message),
            AppError::CrossSite => Self {
                kind: V::CrossSite,
                ..Self::default()
            },
            AppError::Unavailable(what) => with(V::Unavailable, what),
            AppError::TooLarge {
                field,
                message,
                limit_bytes,
            } => Self {
                field,
                limit_bytes,
                ..with(V::TooLarge, message)
            },
            AppError::UnsupportedMediaType { field, message } => Self {
                field,
                ..with(V::UnsupportedMediaType, message)
            },
            AppError::InvalidJson(what) => with(V::InvalidJson, what),
            AppError::BadRequest(what) => with(V::BadRequest, what),
            AppError::Transfer {
                fault,
                message,
                problems,
                report,
            } => Self {
                fault: Some(fault),
                problems,
                report,
                ..with(V::Transfer, message)
            },
            AppError::Internal => Self::default(),
            AppError::Transport(error) => Self {
                kind: V::Transport,
                transport: Some(error),
                ..Self::default()
            },
        }
    }
}

impl From<ErrorWire> for AppError {
    /// A record that lacks what its variant needs reads as that variant
    /// with empty values; one whose transfer fault or transport error is
    /// missing reads as a server fault.
    fn from(wire: ErrorWire) -> Self {
        use ErrorVariant as V;
        let message = wire.message.unwrap_or_default();
        match wire.kind {
            V::Validation => Self::Validation {
                field: wire.field,
                message,
            },
            V::NotFound => Self::NotFound(message),
            V::Conflict => Self::Conflict(message),
            V::Unauthenticated => Self::Unauthenticated,
            V::Forbidden => Self::Forbidden,
            V::RateLimited => Self::RateLimited {
                retry_after_seconds: wire.retry_after_seconds.unwrap_or_default(),
            },
            V::NeedsReauthorization => Self::NeedsReauthorization {
                auth_link: wire.auth_link.unwrap_or_default(),
            },
            V::ProviderUnavailable => Self::ProviderUnavailable {
                message,
                retry_after_seconds: wire.retry_after_seconds.unwrap_or_default(),
            },
            V::ProviderRefused => Self::ProviderRefused { message },
            V::CrossSite => Self::CrossSite,
            V::Unavailable => Self::Unavailable(message),
            V::TooLarge => Self::TooLarge {
                field: wire.field,
                message,
                limit_bytes: wire.limit_bytes,
            },
            V::UnsupportedMediaType => Self::UnsupportedMediaType {
                field: wire.field,
                message,
            },
            V::InvalidJson => Self::InvalidJson(message),
            V::BadRequest => Self::BadRequest(message),
            V::Transfer => match wire.fault {
                Some(fault) => Self::Transfer {
                    fault,
                    message,
                    problems: wire.problems,
                    report: wire.report,
                },
                None => Self::Internal,
            },
            V::Internal => Self::Internal,
            V::Transport => wire.transport.map_or(Self::Internal, Self::Transport),
        }
    }
}

impl FromServerFnError for AppError {
    // Read as text, like the answers and the values a page is sent with: one
    // decoder for the error in the WASM.
    type Encoder = crate::wire::JsonTextEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        crate::components::note_failed_call(&value);
        Self::Transport(value)
    }
}

impl AppError {
    /// The HTTP status and code of this error: the one place both are
    /// decided, for the REST API, server functions and the command line.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation { .. } => ErrorKind::new(422, "validation_failed"),
            Self::NotFound(_) => ErrorKind::new(404, "not_found"),
            Self::Conflict(_) => ErrorKind::new(409, "conflict"),
            Self::Unauthenticated => ErrorKind::new(401, "unauthenticated"),
            Self::Forbidden => ErrorKind::new(403, "forbidden"),
            Self::RateLimited { .. } => ErrorKind::new(429, "rate_limited"),
            Self::CrossSite => ErrorKind::new(403, "cross_site_request"),
            Self::NeedsReauthorization { .. } => ErrorKind::new(409, "needs_reauthorization"),
            Self::ProviderUnavailable { .. } => ErrorKind::new(503, "provider_unavailable"),
            Self::ProviderRefused { .. } => ErrorKind::new(502, "provider_refused"),
            Self::Unavailable(_) => ErrorKind::new(503, "unavailable"),
            Self::TooLarge { .. } => ErrorKind::new(413, "payload_too_large"),
            Self::UnsupportedMediaType { .. } => ErrorKind::new(415, "unsupported_media_type"),
            Self::InvalidJson(_) => ErrorKind::new(400, "invalid_json"),
            Self::BadRequest(_) | Self::Transport(_) => ErrorKind::new(400, "bad_request"),
            Self::Transfer { fault, .. } => match fault {
                TransferFault::Selection => ErrorKind::new(422, "validation_failed"),
                TransferFault::TooLarge { .. } => ErrorKind::new(413, "payload_too_large"),
                TransferFault::NotJson => ErrorKind::new(400, "invalid_json"),
                TransferFault::TooDeep => ErrorKind::new(400, "invalid_bundle"),
                TransferFault::Invalid => ErrorKind::new(422, "invalid_bundle"),
                TransferFault::Altered => ErrorKind::new(422, "bundle_altered"),
                TransferFault::Unauthenticated => ErrorKind::new(422, "bundle_unauthenticated"),
                TransferFault::PassphraseRequired => ErrorKind::new(422, "passphrase_required"),
                TransferFault::WrongPassphrase => ErrorKind::new(422, "wrong_passphrase"),
                TransferFault::ImportRunning => ErrorKind::new(409, "conflict"),
                TransferFault::RolledBack => ErrorKind::new(500, "internal"),
            },
            Self::Internal => ErrorKind::new(500, "internal"),
        }
    }

    /// The stable machine-readable code (REST `error.code`).
    pub fn code(&self) -> &'static str {
        self.kind().code
    }

    /// The HTTP status this error answers with.
    pub fn status_code(&self) -> u16 {
        self.kind().status
    }

    /// The form field (or request field) the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Validation { field, .. }
            | Self::TooLarge { field, .. }
            | Self::UnsupportedMediaType { field, .. } => field.as_deref(),
            Self::Transfer { fault, .. } => match fault {
                TransferFault::PassphraseRequired | TransferFault::WrongPassphrase => {
                    Some("passphrase")
                }
                TransferFault::ImportRunning => Some("import_id"),
                _ => None,
            },
            _ => None,
        }
    }

    /// The size limit the request went over, when the answer names it.
    pub fn limit_bytes(&self) -> Option<u64> {
        match self {
            Self::TooLarge { limit_bytes, .. } => *limit_bytes,
            Self::Transfer {
                fault: TransferFault::TooLarge { limit_bytes },
                ..
            } => Some(*limit_bytes),
            _ => None,
        }
    }

    /// Seconds to wait before trying again, when waiting helps.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after_seconds,
            }
            | Self::ProviderUnavailable {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// A validation error about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// The message for the field `name`, when the error concerns it or a
    /// part of it (`additional_values.client_id` is about the
    /// `additional_values` field).
    pub fn message_for(&self, name: &str) -> Option<String> {
        let field = self.field()?;
        (field == name
            || field
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('.')))
        .then(|| self.to_string())
    }
}

/// Gives a server function's failure its HTTP status (instead of 500), so
/// that logs and proxies tell a refused input from a server fault.
#[cfg(feature = "ssr")]
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result
        && let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = leptos::server_fn::http_export::StatusCode::from_u16(e.status_code())
    {
        response.set_status(status);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::{AppError, ErrorKind, ImportProblem, ServerFnErrorErr, TransferFault};

    #[test]
    fn each_error_has_one_status_and_code() {
        let cases = [
            (
                AppError::invalid("name", "is empty"),
                422,
                "validation_failed",
            ),
            (AppError::NotFound("the token".into()), 404, "not_found"),
            (AppError::Conflict("taken".into()), 409, "conflict"),
            (AppError::Unauthenticated, 401, "unauthenticated"),
            (AppError::Forbidden, 403, "forbidden"),
            (AppError::CrossSite, 403, "cross_site_request"),
            (
                AppError::RateLimited {
                    retry_after_seconds: 5,
                },
                429,
                "rate_limited",
            ),
            (
                AppError::NeedsReauthorization {
                    auth_link: "/x".into(),
                },
                409,
                "needs_reauthorization",
            ),
            (
                AppError::ProviderRefused {
                    message: "invalid_grant".into(),
                },
                502,
                "provider_refused",
            ),
            (AppError::Unavailable("busy".into()), 503, "unavailable"),
            (AppError::InvalidJson("eof".into()), 400, "invalid_json"),
            (AppError::BadRequest("eof".into()), 400, "bad_request"),
            (AppError::Internal, 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.kind(), ErrorKind { status, code }, "{error:?}");
            assert_eq!(error.status_code(), status);
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn every_error_reads_back_as_it_was_sent() {
        let errors = [
            AppError::invalid("name", "too long"),
            AppError::Validation {
                field: None,
                message: "no".into(),
            },
            AppError::NotFound("token x".into()),
            AppError::Conflict("taken".into()),
            AppError::Unauthenticated,
            AppError::Forbidden,
            AppError::RateLimited {
                retry_after_seconds: 7,
            },
            AppError::NeedsReauthorization {
                auth_link: "/api/v1/tokens/x/auth-link".into(),
            },
            AppError::ProviderUnavailable {
                message: "timeout".into(),
                retry_after_seconds: 30,
            },
            AppError::ProviderRefused {
                message: "invalid_grant".into(),
            },
            AppError::CrossSite,
            AppError::Unavailable("busy".into()),
            AppError::TooLarge {
                field: Some("bundle".into()),
                message: "over 1 MiB".into(),
                limit_bytes: Some(1 << 20),
            },
            AppError::UnsupportedMediaType {
                field: None,
                message: "send JSON".into(),
            },
            AppError::InvalidJson("eof".into()),
            AppError::BadRequest("eof".into()),
            AppError::Transfer {
                fault: TransferFault::TooLarge { limit_bytes: 9 },
                message: "too large".into(),
                problems: Some(vec![ImportProblem {
                    path: "$.tokens[0]".into(),
                    message: "bad".into(),
                }]),
                report: Some(Box::new(serde_json::json!({"tokens": {"created": []}}))),
            },
            AppError::Internal,
            AppError::Transport(ServerFnErrorErr::Request("offline".into())),
        ];
        for error in errors {
            let text = serde_json::to_string(&error).unwrap();
            let back: AppError = serde_json::from_str(&text).unwrap();
            assert_eq!(back, error, "{text}");
        }
        // A record without what its variant needs is still an error.
        let bare: AppError = serde_json::from_str(r#"{"kind":"Transfer"}"#).unwrap();
        assert_eq!(bare, AppError::Internal);
        assert!(serde_json::from_str::<AppError>(r#"{"kind":"Nonsense"}"#).is_err());
    }

    #[test]
    fn a_refused_passphrase_is_shown_at_the_passphrase_field() {
        let e = AppError::Transfer {
            fault: TransferFault::WrongPassphrase,
            message: "wrong passphrase".into(),
            problems: None,
            report: None,
        };
        assert_eq!(e.kind(), ErrorKind::new(422, "wrong_passphrase"));
        assert_eq!(
            e.message_for("passphrase").as_deref(),
            Some("wrong passphrase")
        );
        let running = AppError::Transfer {
            fault: TransferFault::ImportRunning,
            message: "running".into(),
            problems: None,
            report: None,
        };
        assert_eq!(running.kind(), ErrorKind::new(409, "conflict"));
        assert_eq!(running.field(), Some("import_id"));
    }

    #[test]
    fn a_message_about_part_of_a_field_is_shown_at_that_field() {
        let e = AppError::invalid("additional_values.client_id", "set by Quiver");
        assert_eq!(
            e.message_for("additional_values").as_deref(),
            Some("set by Quiver")
        );
        assert_eq!(
            e.message_for("additional_values.client_id").as_deref(),
            Some("set by Quiver")
        );
        assert_eq!(e.message_for("additional"), None);
        assert_eq!(e.message_for("client_id"), None);
    }
}
