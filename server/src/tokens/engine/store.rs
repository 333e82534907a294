//! Storing what a provider answered: its words on a failure, a code
//! exchange's tokens on success.

use app::error::AppError;
use app::tokens::TokenError;
use sea_orm::ActiveModelTrait;

use super::TokenEngine;
use crate::db::entity::token;
use crate::oauth::grant::GrantError;
use crate::oauth::token_response::{ProviderFault, TokenSet};
use crate::providers::OpenedProvider;
use crate::tokens::db_error;

/// The provider's words, as stored on the token and shown.
pub fn token_error(e: &GrantError) -> TokenError {
    match e {
        GrantError::RetryAfter {
            fault,
            retry_after_secs,
        } => TokenError {
            retry_after_seconds: Some(*retry_after_secs),
            ..token_error(&GrantError::Provider(fault.clone()))
        },
        GrantError::Provider(ProviderFault::Refused {
            error,
            description,
            http_status,
        }) => TokenError {
            error: error.clone(),
            error_description: description.clone(),
            http_status: Some(*http_status),
            retry_after_seconds: None,
        },
        GrantError::Provider(fault @ ProviderFault::Malformed { http_status, .. }) => TokenError {
            error: fault.code().to_owned(),
            error_description: Some(fault.to_string()),
            http_status: Some(*http_status),
            retry_after_seconds: None,
        },
        GrantError::Outbound(o) => TokenError {
            error: "unreachable".into(),
            error_description: Some(o.to_string()),
            http_status: None,
            retry_after_seconds: None,
        },
        GrantError::ClientAuth(c) => TokenError {
            error: "invalid_configuration".into(),
            error_description: Some(c.to_string()),
            http_status: None,
            retry_after_seconds: None,
        },
    }
}

impl TokenEngine {
    /// Stores the result of a code exchange. A new authorization replaces
    /// whatever was there, and supersedes a renewal in flight: the lease is
    /// cleared, so that renewal's store (guarded by its claim) keeps this.
    /// The code is kept (sealed) only for a provider that wants it again at
    /// each refresh.
    pub(crate) async fn store_exchanged(
        &self,
        t: &token::Model,
        provider: &OpenedProvider,
        set: TokenSet,
        code: &str,
    ) -> Result<token::Model, AppError> {
        let mut active = self.success_row(
            t,
            provider,
            set,
            &Self::values(t),
            crate::tokens::lifetimes::Issued::Granted,
        );
        active.authorization_code = sea_orm::ActiveValue::Set(
            (!provider.model.omit_code_on_refresh)
                .then(|| self.seal(&t.id, "authorization_code", code)),
        );
        active.update(&self.tokens.db).await.map_err(db_error)
    }
}
