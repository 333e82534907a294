//! The token engine: the services every token action needs, and what the
//! actions share. The lifecycle (create, request, refresh, reset, delete
//! with revocation, rename and edit) is in `lifecycle`, the provider call
//! in `provider_call`, storing results in `store`; a token's settings
//! are checked in `tokens::validation`. Results are stored in one update; a
//! provider failure records the provider's words and never loses the last
//! good access and refresh tokens.

mod connection_test;
mod lifecycle;
mod provider_call;
mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use app::error::AppError;
use app::tokens::TokenView;

use super::Tokens;
use crate::audit::{Actor, Audit, AuditEvent, Outcome};
use crate::events::Events;
use crate::oauth::outbound;
use crate::providers::Providers;
use crate::seal::SealSlot;

pub use connection_test::test_request;
pub use store::token_error;

/// Everything the token actions need.
#[derive(Clone)]
pub struct TokenEngine {
    /// Token storage and views.
    pub tokens: Tokens,
    /// Providers.
    pub providers: Providers,
    /// The audit log.
    pub audit: Audit,
    /// What the engine reads of the settings.
    pub settings: Arc<TokenSettings>,
    /// In-process single-flight locks for refreshes.
    pub flights: Arc<super::renewal::Flights>,
    /// This process's name in job leases and job runs (renewal claims
    /// name a random claim id instead).
    pub replica: String,
    /// Notifications and webhooks.
    pub events: Events,
    /// Counters for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// HTTP clients for providers, reused between calls.
    pub http: Arc<outbound::Clients>,
    /// Tokens served fresh moments ago.
    pub fresh: Arc<super::access::FreshTokens>,
}

/// What the token engine reads of the instance's settings.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Where a provider sends a person back after authorizing.
    pub redirect_uri: String,
    /// How often the refresh token of a token without an expiry is used.
    pub idle_refresh_interval: chrono::Duration,
    /// Background failures in a row before a token is marked failed.
    pub refresh_max_failures: u32,
    /// How far ahead a due re-authorization is announced.
    pub reauthorization_notice: chrono::Duration,
}

/// Default lead time of background renewals.
pub const DEFAULT_LEAD_SECS: i32 = 300;

pub(super) fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid(field, message)
}

pub(super) fn clean(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Who asked for a renewal, which decides how a failure is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A person or a program: a failure marks the token failed at once.
    Asked,
    /// The scheduler: failures back off and mark the token failed only
    /// after several in a row.
    Background,
}

/// What to send besides the grant: scope, resource, additional values.
pub(crate) struct RequestValues {
    pub(crate) scope: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) additional: BTreeMap<String, String>,
}

/// What Refresh, Request again and Reset answer: the token as stored
/// afterwards and, when the provider refused or did not answer, the error
/// to report (the UI shows the token's stored error instead).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The token.
    pub view: TokenView,
    /// Why it was not renewed, when it was not.
    pub refusal: Option<AppError>,
}

impl TokenEngine {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.tokens.clock.now()
    }

    pub(super) fn seal(&self, id: &str, column: &str, value: &str) -> String {
        self.tokens
            .sealer
            .seal(SealSlot::new("tokens", id, column), value.as_bytes())
    }

    pub(super) async fn audited<T>(
        &self,
        actor: Actor,
        addr: &Option<String>,
        action: &'static str,
        id: Option<String>,
        result: Result<T, AppError>,
        detail: Option<String>,
    ) -> Result<T, AppError> {
        // A call that ran but whose grant failed reports `failed …`.
        let outcome = if detail.as_deref().is_some_and(|d| d.starts_with("failed")) {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        let mut event = AuditEvent::new(actor, action, "token", outcome)
            .from_addr(addr.clone())
            .maybe_object(id);
        event.detail = detail;
        self.audit.record_result(event, result).await
    }
}
