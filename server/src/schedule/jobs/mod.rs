//! Scheduled jobs: an admin names an action (refresh, or reset client
//! credentials), its targets (one token, every token of a provider, every
//! Client Credentials token) and when (every N minutes, or a cron
//! expression in UTC). Due jobs are claimed with a lease, so each
//! occurrence runs on one replica; a replica that dies mid-run leaves a
//! lapsed lease, and another replica runs the job again (the dead run is
//! marked `interrupted`). Each run keeps the outcome per token.
//!
//! When a job runs is read in `when`, the definitions are kept in
//! `definitions`, and the runs made in `runs`.

mod definitions;
mod runs;
mod when;

pub use when::When;

use crate::db::db_error;

use app::error::AppError;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, EntityTrait};

use crate::audit::{Actor, AuditEvent, Outcome};
use crate::auth::Caller;
use crate::db::entity::job;
use crate::tokens::engine::TokenEngine;

/// Scheduled jobs: their definitions, runs and the runner.
#[derive(Clone)]
pub struct Jobs {
    db: DatabaseConnection,
    engine: TokenEngine,
}

impl Jobs {
    /// The service over the engine's database.
    pub fn new(engine: TokenEngine) -> Self {
        Self {
            db: engine.tokens.db.clone(),
            engine,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.engine.tokens.clock.now()
    }

    async fn audited<T>(
        &self,
        actor: Actor,
        addr: Option<String>,
        action: &'static str,
        id: Option<String>,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let event = AuditEvent::new(actor, action, "job", Outcome::Success)
            .from_addr(addr)
            .maybe_object(id);
        self.engine.audit.record_result(event, result).await
    }

    fn admin(caller: &Caller) -> Result<(), AppError> {
        if caller.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    async fn find(&self, id: &str) -> Result<job::Model, AppError> {
        job::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::NotFound("the job".into()))
    }
}
