//! The overview: how many tokens are in each state, the ones that need a
//! person, and how renewals went over the last day and month.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::names::{WireName, wire_name_impls};

/// Why a token needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionReason {
    /// Its last renewal failed.
    Failed,
    /// A person has not authorized it yet.
    PendingAuthorization,
    /// Imported without its secrets.
    NeedsCredentials,
    /// A person must authorize it again within the notice (14 days).
    ReauthorizationDue,
    /// The client secret it uses expires within 30 days.
    SecretExpiring,
    /// Its provider's certificate expires within 30 days.
    CertificateExpiring,
    /// Not handed out for 30 days.
    Unused,
}

impl WireName for AttentionReason {
    const ALL: &'static [Self] = &[
        Self::Failed,
        Self::PendingAuthorization,
        Self::NeedsCredentials,
        Self::ReauthorizationDue,
        Self::SecretExpiring,
        Self::CertificateExpiring,
        Self::Unused,
    ];
    const FIELD: &'static str = "reason";

    fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::PendingAuthorization => "pending_authorization",
            Self::NeedsCredentials => "needs_credentials",
            Self::ReauthorizationDue => "reauthorization_due",
            Self::SecretExpiring => "secret_expiring",
            Self::CertificateExpiring => "certificate_expiring",
            Self::Unused => "unused",
        }
    }
}
wire_name_impls!(AttentionReason);

impl AttentionReason {
    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Failed => "Failed",
            Self::PendingAuthorization => "Waiting for authorization",
            Self::NeedsCredentials => "Needs credentials",
            Self::ReauthorizationDue => "Re-authorization due",
            Self::SecretExpiring => "Client secret expiring",
            Self::CertificateExpiring => "Certificate expiring",
            Self::Unused => "Unused",
        }
    }
}

/// A token that needs attention: why, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionItem {
    pub token_id: String,
    pub token_name: String,
    pub provider_name: String,
    pub reason: AttentionReason,
    pub why: String,
    pub what_to_do: String,
    /// When it breaks or broke (RFC 3339), where that is known.
    pub due_at: Option<String>,
}

/// Renewals in one hour or on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalBucket {
    /// The hour's start (RFC 3339) or the day (`YYYY-MM-DD`).
    pub starts_at: String,
    pub renewals: u64,
    pub failures: u64,
}

/// What `GET /api/v1/overview` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// Tokens by displayed status (`expiring_soon` is within `active`).
    pub counts: BTreeMap<String, u64>,
    pub total: u64,
    /// Tokens needing attention per reason (a token may have several).
    pub attention_counts: BTreeMap<String, u64>,
    /// The first of them, most urgent reason first.
    pub attention: Vec<AttentionItem>,
    /// Renewals per hour over the last 24 hours, current hour last.
    pub renewals_hourly: Vec<RenewalBucket>,
    /// Renewals per day over the last 30 days, today last.
    pub renewals_daily: Vec<RenewalBucket>,
}

/// The overview screen: the overview and its charts drawn by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverviewScreen {
    pub overview: Overview,
    pub hourly_chart: String,
    pub daily_chart: String,
}

/// The server side, provided through Leptos context.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait OverviewService: Send + Sync + 'static {
    /// The caller's overview (an admin's covers every token).
    async fn overview(&self, parts: &Parts) -> Result<OverviewScreen, AppError>;
}

#[cfg(feature = "ssr")]
use leptos::server_fn::http_export::request::Parts;

/// The caller's overview with its charts.
#[server(prefix = "/rpc", output = crate::wire::JsonText)]
pub async fn get_overview() -> Result<OverviewScreen, AppError> {
    let (service, parts) = crate::service::<dyn OverviewService>()?;
    crate::error::respond(service.overview(&parts).await)
}

#[cfg(test)]
mod tests {
    use super::AttentionReason;
    use crate::names::tests::round_trips;

    #[test]
    fn attention_reasons_round_trip() {
        round_trips::<AttentionReason>(
            "failed, pending_authorization, needs_credentials, reauthorization_due, secret_expiring, certificate_expiring or unused",
        );
    }
}
