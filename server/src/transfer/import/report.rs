//! The import report: what an import did or would do, entry by entry,
//! with the hosts the bundle's endpoints name and every warning and
//! problem at its JSON path.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::{Action, Kind};
use super::{ImportOptions, Mode, OnConflict};
use crate::tokens::TokenStatus;
use crate::transfer::bundle::{Bundle, ProviderEntry};
use crate::transfer::reader::Problem;

/// One entry of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The entry in the bundle, e.g. `$.tokens[3]`.
    pub path: String,
    /// The bundle's id for it.
    pub bundle_id: String,
    /// Its name in the bundle.
    pub name: String,
    /// The name it gets here, when it is renamed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Tokens: the email of the account that owns it here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tokens: the status it arrives with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TokenStatus>,
    /// Its id here: the existing row (updated, skipped) or, after apply,
    /// the new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Items of one outcome, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Items {
    /// Providers.
    pub providers: Vec<Item>,
    /// Tokens.
    pub tokens: Vec<Item>,
}

/// Counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// New rows.
    pub created: u64,
    /// Rows whose settings are replaced.
    pub updated: u64,
    /// Entries left out.
    pub skipped: u64,
}

/// The counts of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Providers.
    pub providers: Counts,
    /// Tokens.
    pub tokens: Counts,
    /// Tokens that arrive without an access token (status
    /// `needs_credentials`).
    pub needs_credentials: u64,
}

/// A host named by the bundle's provider endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointHost {
    /// The host, with its port when the URL names one (`as.example`,
    /// `127.0.0.1:4011`).
    pub host: String,
    /// Where it is named, e.g. `$.providers[0].token_endpoint`.
    pub paths: Vec<String>,
}

/// The provider fields that hold a URL Quiver talks to (or, for
/// `assertion_audience`, a URL its client assertions are made for).
const ENDPOINT_FIELDS: [&str; 7] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "refresh_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "assertion_audience",
];

fn endpoint_value<'p>(p: &'p ProviderEntry, field: &str) -> Option<&'p str> {
    match field {
        "issuer" => p.issuer.as_deref(),
        "authorization_endpoint" => p.authorization_endpoint.as_deref(),
        "token_endpoint" => Some(&p.token_endpoint),
        "refresh_endpoint" => p.refresh_endpoint.as_deref(),
        "revocation_endpoint" => p.revocation_endpoint.as_deref(),
        "jwks_uri" => p.jwks_uri.as_deref(),
        "assertion_audience" => p.assertion_audience.as_deref(),
        _ => None,
    }
}

/// Every endpoint host of a bundle, by host name.
pub fn endpoint_hosts(bundle: &Bundle) -> Vec<EndpointHost> {
    let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, p) in bundle.providers.iter().enumerate() {
        for field in ENDPOINT_FIELDS {
            let Some(url) = endpoint_value(p, field).and_then(|v| url::Url::parse(v).ok()) else {
                continue;
            };
            let Some(host) = url.host_str() else { continue };
            let host = match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            hosts
                .entry(host)
                .or_default()
                .push(format!("$.providers[{i}].{field}"));
        }
    }
    hosts
        .into_iter()
        .map(|(host, paths)| EndpointHost { host, paths })
        .collect()
}

pub(super) fn hosts_text(hosts: &[EndpointHost]) -> String {
    const SHOWN: usize = 10;
    let mut text = hosts
        .iter()
        .take(SHOWN)
        .map(|h| h.host.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if hosts.len() > SHOWN {
        text.push_str(&format!(" and {} more", hosts.len() - SHOWN));
    }
    if text.is_empty() {
        text.push_str("none");
    }
    text
}

/// What an import did, or (preview) would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// `preview` or `apply`.
    pub mode: Mode,
    /// The conflict policy used.
    pub on_conflict: OnConflict,
    /// Whether anything was written (apply, and it succeeded).
    pub applied: bool,
    /// Whether the bundle's secrets were opened (and, on apply, stored).
    pub secrets: bool,
    /// Whether the bundle's content was checked against its
    /// authentication code (only a bundle with secrets, previewed or
    /// applied with its passphrase, can be).
    pub authenticated: bool,
    /// Every host the bundle's provider endpoints would make Quiver talk
    /// to, with where each is named: what to check before applying a
    /// bundle that is not authenticated.
    pub endpoint_hosts: Vec<EndpointHost>,
    /// Counts.
    pub summary: Summary,
    /// New rows.
    pub created: Items,
    /// Rows replaced (overwrite).
    pub updated: Items,
    /// Entries left out (skip).
    pub skipped: Items,
    /// Things to know that do not stop the import (an unknown owner, a
    /// rename forced by a name taken within the bundle, a missing secret).
    pub warnings: Vec<Problem>,
    /// What stops the import; with any, nothing is written.
    pub problems: Vec<Problem>,
}

impl ImportReport {
    pub(super) fn new(options: &ImportOptions) -> Self {
        Self {
            mode: options.mode,
            on_conflict: options.on_conflict,
            applied: false,
            secrets: false,
            authenticated: false,
            endpoint_hosts: Vec::new(),
            summary: Summary::default(),
            created: Items::default(),
            updated: Items::default(),
            skipped: Items::default(),
            warnings: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Counts and lists one entry under what becomes of it; an entry
    /// that is not created names the row here.
    pub(super) fn add(&mut self, kind: Kind, action: Action, id: &str, mut it: Item) {
        let counts = match kind {
            Kind::Provider => &mut self.summary.providers,
            Kind::Token => &mut self.summary.tokens,
        };
        let items = match action {
            Action::Create => {
                counts.created += 1;
                &mut self.created
            }
            Action::Update => {
                counts.updated += 1;
                &mut self.updated
            }
            Action::Skip => {
                counts.skipped += 1;
                &mut self.skipped
            }
        };
        if action != Action::Create {
            it.id = Some(id.to_owned());
        }
        match kind {
            Kind::Provider => items.providers.push(it),
            Kind::Token => items.tokens.push(it),
        }
    }

    pub(super) fn audit_detail(&self) -> String {
        let p = self.summary.providers;
        let t = self.summary.tokens;
        format!(
            "imported with on_conflict={}: providers {} created, {} updated, {} skipped; tokens {} created, {} updated, {} skipped ({} need credentials); secrets {}",
            self.on_conflict.as_str(),
            p.created,
            p.updated,
            p.skipped,
            t.created,
            t.updated,
            t.skipped,
            self.summary.needs_credentials,
            if self.secrets {
                "imported"
            } else {
                "not included"
            }
        )
    }
}

pub(super) fn item(path: String, bundle_id: &str, name: &str) -> Item {
    Item {
        path,
        bundle_id: bundle_id.to_owned(),
        name: name.to_owned(),
        new_name: None,
        owner: None,
        status: None,
        id: None,
        reason: None,
    }
}

pub(super) fn warn(report: &mut ImportReport, path: impl Into<String>, message: impl Into<String>) {
    report.warnings.push(Problem {
        path: path.into(),
        message: message.into(),
    });
}

pub(super) fn problem(
    report: &mut ImportReport,
    path: impl Into<String>,
    message: impl Into<String>,
) {
    report.problems.push(Problem {
        path: path.into(),
        message: message.into(),
    });
}
