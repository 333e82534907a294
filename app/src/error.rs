//! The error every server function returns, as it travels to the browser.

use serde::{Deserialize, Serialize};
use server_fn_error::{FromServerFnError, JsonEncoding, ServerFnErrorErr};

mod server_fn_error {
    pub(crate) use leptos::server_fn::codec::JsonEncoding;
    pub(crate) use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
}

/// What went wrong, in terms the person at the screen can act on. Internal
/// failures carry no detail: the server logs them once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
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
        /// The limit in bytes.
        limit_bytes: u64,
    },
    /// A server fault; details are in the server log.
    #[error("something went wrong on the server; the details are in its log")]
    Internal,
    /// The call did not reach the server or its answer did not come back.
    #[error("{}", crate::components::failed_call_message(.0))]
    Transport(ServerFnErrorErr),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        crate::components::note_failed_call(&value);
        Self::Transport(value)
    }
}

impl AppError {
    /// The stable machine-readable code (REST `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "validation_failed",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::RateLimited { .. } => "rate_limited",
            Self::CrossSite => "cross_site_request",
            Self::NeedsReauthorization { .. } => "needs_reauthorization",
            Self::ProviderUnavailable { .. } => "provider_unavailable",
            Self::ProviderRefused { .. } => "provider_refused",
            Self::Unavailable(_) => "unavailable",
            Self::TooLarge { .. } => "payload_too_large",
            Self::Internal => "internal",
            Self::Transport(_) => "bad_request",
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
        match self {
            Self::Validation {
                field: Some(field),
                message,
            }
            | Self::TooLarge {
                field: Some(field),
                message,
                ..
            } if field == name
                || field
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('.')) =>
            {
                Some(message.clone())
            }
            _ => None,
        }
    }
}

impl AppError {
    /// The HTTP status a server function answers with for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Validation { .. } => 422,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::Unauthenticated => 401,
            Self::Forbidden | Self::CrossSite => 403,
            Self::NeedsReauthorization { .. } => 409,
            Self::ProviderUnavailable { .. } => 503,
            Self::ProviderRefused { .. } => 502,
            Self::RateLimited { .. } => 429,
            Self::Unavailable(_) => 503,
            Self::TooLarge { .. } => 413,
            Self::Internal => 500,
            Self::Transport(_) => 400,
        }
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
    use super::AppError;

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
