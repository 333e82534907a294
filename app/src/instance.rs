//! Instance information: version, database, public URL and whether the
//! instance is reachable over HTTPS.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What the Settings page shows about this instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// Quiver's version.
    pub version: String,
    /// "SQLite" or "PostgreSQL".
    pub database_kind: String,
    /// The externally visible base URL.
    pub public_url: String,
    /// The OAuth redirect URI to register at providers.
    pub redirect_uri: String,
    /// Whether `public_url` is https.
    pub https: bool,
}

/// The outcome of a database round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseCheck {
    /// Whether the database answered.
    pub reachable: bool,
    /// How long the round trip took, in milliseconds.
    pub latency_ms: u64,
    /// Applied schema migrations.
    pub migrations: u32,
}

/// The server side of this module, provided through Leptos context.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait InstanceService: Send + Sync + 'static {
    /// Facts about the instance, for a signed-in caller.
    fn info(&self, parts: &Parts) -> Result<InstanceInfo, AppError>;
    /// Round-trips the database, for a signed-in caller.
    async fn check_database(&self, parts: &Parts) -> Result<DatabaseCheck, AppError>;
}

#[cfg(feature = "ssr")]
use leptos::server_fn::http_export::request::Parts;

/// Facts about this instance.
#[server(prefix = "/rpc", output = crate::wire::JsonText)]
pub async fn get_instance_info() -> Result<InstanceInfo, AppError> {
    let (service, parts) = crate::service::<dyn InstanceService>()?;
    crate::error::respond(service.info(&parts))
}

/// Checks that the database answers, and how fast.
#[server(prefix = "/rpc", output = crate::wire::JsonText)]
pub async fn check_database() -> Result<DatabaseCheck, AppError> {
    let (service, parts) = crate::service::<dyn InstanceService>()?;
    crate::error::respond(service.check_database(&parts).await)
}
