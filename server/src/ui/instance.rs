//! The server side of the app's instance information.

use std::time::Instant;

use app::error::AppError;
use app::instance::{DatabaseCheck, InstanceInfo, InstanceService};

use leptos::server_fn::http_export::request::Parts;

use crate::db;
use crate::http::caller::Authenticated;
use crate::startup::Instance;

/// Answers the Settings page from the opened instance.
pub struct InstanceFacts {
    instance: Instance,
}

impl InstanceFacts {
    /// Wraps an opened instance.
    pub fn new(instance: Instance) -> Self {
        Self { instance }
    }
}

#[async_trait::async_trait]
impl InstanceService for InstanceFacts {
    fn info(&self, parts: &Parts) -> Result<InstanceInfo, AppError> {
        Authenticated::from_parts(parts)?;
        let config = &self.instance.config;
        Ok(InstanceInfo {
            version: crate::VERSION.to_owned(),
            database_kind: config.database_url.kind().label().to_owned(),
            public_url: config.public_url_text(),
            redirect_uri: config.redirect_uri(),
            https: config.is_https(),
        })
    }

    async fn check_database(&self, parts: &Parts) -> Result<DatabaseCheck, AppError> {
        Authenticated::from_parts(parts)?;
        let started = Instant::now();
        let unavailable = |e: sea_orm::DbErr| {
            tracing::error!(error = %e, "database check failed");
            AppError::Unavailable(
                "The database did not answer; the details are in the server log.".into(),
            )
        };
        db::ping(&self.instance.db).await.map_err(unavailable)?;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let migrations = db::applied_migrations(&self.instance.db)
            .await
            .map_err(unavailable)?
            .len();
        Ok(DatabaseCheck {
            reachable: true,
            latency_ms,
            migrations: u32::try_from(migrations).unwrap_or(u32::MAX),
        })
    }
}
