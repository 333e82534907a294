//! Scheduled jobs and notifications: wire types, server functions, and the
//! service trait the server provides through Leptos context.

use serde::{Deserialize, Serialize};

use crate::names::{WireName, wire_name_impls};

/// What a job does to each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
#[cfg_attr(feature = "ssr", sea_orm(value_type = "String"))]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    /// Refresh the access token.
    Refresh,
    /// Reset Client Credentials: revoke, then request a new token.
    ResetClientCredentials,
}

impl WireName for JobAction {
    const ALL: &'static [Self] = &[Self::Refresh, Self::ResetClientCredentials];
    const FIELD: &'static str = "action";

    fn as_str(self) -> &'static str {
        match self {
            Self::Refresh => "refresh",
            Self::ResetClientCredentials => "reset_client_credentials",
        }
    }
}
wire_name_impls!(JobAction);

/// Which tokens a job works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sea_orm::DeriveValueType))]
#[cfg_attr(feature = "ssr", sea_orm(value_type = "String"))]
#[serde(rename_all = "snake_case")]
pub enum JobTarget {
    /// One token (`target_id`).
    Token,
    /// Every token of a provider (`target_id`).
    Provider,
    /// Every Client Credentials token, of one provider when `target_id` is
    /// given.
    ClientCredentials,
}

impl WireName for JobTarget {
    const ALL: &'static [Self] = &[Self::Token, Self::Provider, Self::ClientCredentials];
    const FIELD: &'static str = "target";

    fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Provider => "provider",
            Self::ClientCredentials => "client_credentials",
        }
    }
}
wire_name_impls!(JobTarget);

/// A job to create or change (absent fields keep their value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    pub name: Option<String>,
    /// `refresh` or `reset_client_credentials`.
    pub action: Option<String>,
    /// `token` (one token), `provider` (all tokens of a provider) or
    /// `client_credentials` (all Client Credentials tokens, of one provider
    /// when `target_id` is given).
    pub target: Option<String>,
    /// The token or provider.
    pub target_id: Option<String>,
    /// Run every N minutes (1 to 525600); or
    pub every_minutes: Option<i64>,
    /// a cron expression (five fields, UTC), e.g. `0 3 * * *`.
    pub cron: Option<String>,
    /// Paused jobs do not run on schedule.
    pub paused: Option<bool>,
}

/// One token's outcome in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRunResult {
    pub token_id: String,
    pub token_name: String,
    /// `success`, `failure` or `skipped`.
    pub outcome: String,
    pub error: Option<String>,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRunView {
    pub id: String,
    pub job_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `success`, `partial`, `failure` or `interrupted`.
    pub status: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub results: Vec<JobRunResult>,
}

/// A job as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub name: String,
    pub action: JobAction,
    pub target: JobTarget,
    pub target_id: Option<String>,
    /// The target's name, for people.
    pub target_label: String,
    pub every_minutes: Option<i64>,
    pub cron: Option<String>,
    pub paused: bool,
    pub next_run_at: Option<String>,
    pub last_run_at: Option<String>,
    /// The latest run, if any.
    pub last_run: Option<JobRunView>,
    pub created_at: String,
}

/// A job with its recent runs (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetail {
    pub job: JobView,
    pub runs: Vec<JobRunView>,
}

/// A notification (an event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub kind: String,
    pub token_id: Option<String>,
    pub job_id: Option<String>,
    pub message: String,
    pub created_at: String,
    pub webhook_status: String,
}

/// A page of notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub total: u64,
}

/// The server side of the jobs and notifications screens.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait JobsService: Send + Sync + 'static {
    /// Admin: every job.
    async fn list(&self, parts: &Parts) -> Result<Vec<JobView>, AppError>;
    /// Admin: one job and its recent runs.
    async fn get(&self, parts: &Parts, id: String) -> Result<JobDetail, AppError>;
    /// Admin: creates a job.
    async fn create(&self, parts: &Parts, input: JobInput) -> Result<JobView, AppError>;
    /// Admin: changes a job (pause, resume, schedule, target).
    async fn update(&self, parts: &Parts, id: String, input: JobInput)
    -> Result<JobView, AppError>;
    /// Admin: deletes a job and its runs.
    async fn delete(&self, parts: &Parts, id: String) -> Result<(), AppError>;
    /// Admin: runs a job now and answers the run.
    async fn run(&self, parts: &Parts, id: String) -> Result<JobRunView, AppError>;
    /// The caller's notifications, newest first.
    async fn notifications(&self, parts: &Parts, offset: u64)
    -> Result<NotificationPage, AppError>;
}

#[cfg(feature = "ssr")]
use crate::error::AppError;
#[cfg(feature = "ssr")]
use leptos::server_fn::http_export::request::Parts;

mod server_fns {
    use leptos::prelude::*;

    use super::*;
    use crate::error::AppError;

    /// Admin: every job.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn list_jobs() -> Result<Vec<JobView>, AppError> {
        let (s, p) = crate::service::<dyn JobsService>()?;
        crate::error::respond(s.list(&p).await)
    }

    /// Admin: one job and its runs.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn get_job(id: String) -> Result<JobDetail, AppError> {
        let (s, p) = crate::service::<dyn JobsService>()?;
        crate::error::respond(s.get(&p, id).await)
    }

    /// Admin: creates a job.
    #[server(prefix = "/rpc", output = crate::wire::JsonText, input = leptos::server_fn::codec::Json)]
    pub async fn create_job(input: JobInput) -> Result<JobView, AppError> {
        let (s, p) = crate::service::<dyn JobsService>()?;
        crate::error::respond(s.create(&p, input).await)
    }

    /// Admin: changes a job.
    #[server(prefix = "/rpc", output = crate::wire::JsonText, input = leptos::server_fn::codec::Json)]
    pub async fn update_job(id: String, input: JobInput) -> Result<JobView, AppError> {
        let (s, p) = crate::service::<dyn JobsService>()?;
        crate::error::respond(s.update(&p, id, input).await)
    }

    /// Admin: deletes a job.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn delete_job(id: String) -> Result<(), AppError> {
        let (s, p) = crate::service::<dyn JobsService>()?;
        crate::error::respond(s.delete(&p, id).await)
    }

    /// Admin: runs a job now.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn run_job(id: String) -> Result<JobRunView, AppError> {
        let (s, p) = crate::service::<dyn JobsService>()?;
        crate::error::respond(s.run(&p, id).await)
    }

    /// The caller's notifications.
    #[server(prefix = "/rpc", output = crate::wire::JsonText)]
    pub async fn list_notifications(offset: u64) -> Result<NotificationPage, AppError> {
        let (s, p) = crate::service::<dyn JobsService>()?;
        crate::error::respond(s.notifications(&p, offset).await)
    }
}

pub use server_fns::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::tests::round_trips;

    #[test]
    fn job_actions_and_targets_keep_their_wire_names() {
        round_trips::<JobAction>("refresh or reset_client_credentials");
        round_trips::<JobTarget>("token, provider or client_credentials");
    }
}
